package windowing

import (
	"hash/fnv"
	"math"
	"math/bits"
	"slices"
)

// No maintained Go sketch library is available to this module, so both
// sketches are written here, small and serializable: a HyperLogLog for
// count_distinct and a DDSketch-style log-bucket histogram for quantile.

// DistinctExact is how many distinct values count_distinct counts exactly
// per window; beyond it, a HyperLogLog of 2^14 registers takes over
// (16 KiB per window, standard error 1.04/sqrt(16384) = 0.81%).
const DistinctExact = 10000

const hllP = 14

// Distinct counts distinct values: exactly in Set, then in HLL.
type Distinct struct {
	Set map[string]struct{} `json:"set,omitempty"`
	HLL []uint8             `json:"hll,omitempty"`
}

// Add counts the value whose JSON encoding is v.
func (d *Distinct) Add(v string) {
	if d.HLL != nil {
		d.hllAdd(v)
		return
	}
	if d.Set == nil {
		d.Set = map[string]struct{}{}
	}
	d.Set[v] = struct{}{}
	if len(d.Set) > DistinctExact {
		d.HLL = make([]uint8, 1<<hllP)
		for s := range d.Set {
			d.hllAdd(s)
		}
		d.Set = nil
	}
}

// Merge adds o's values.
func (d *Distinct) Merge(o *Distinct) {
	for s := range o.Set {
		d.Add(s)
	}
	if o.HLL != nil {
		if d.HLL == nil {
			d.HLL = make([]uint8, 1<<hllP)
			for s := range d.Set {
				d.hllAdd(s)
			}
			d.Set = nil
		}
		for i, r := range o.HLL {
			d.HLL[i] = max(d.HLL[i], r)
		}
	}
}

// Count returns the number of distinct values: exact up to DistinctExact.
func (d *Distinct) Count() int64 {
	if d.HLL == nil {
		return int64(len(d.Set))
	}
	m := float64(len(d.HLL))
	sum, zeros := 0.0, 0
	for _, r := range d.HLL {
		sum += math.Ldexp(1, -int(r))
		if r == 0 {
			zeros++
		}
	}
	e := 0.7213 / (1 + 1.079/m) * m * m / sum
	if e <= 2.5*m && zeros > 0 {
		e = m * math.Log(m/float64(zeros)) // linear counting for small counts
	}
	return int64(math.Round(e))
}

func (d *Distinct) hllAdd(v string) {
	h := fnv.New64a()
	h.Write([]byte(v))
	x := mix64(h.Sum64())
	i := x >> (64 - hllP)
	rank := uint8(bits.LeadingZeros64(x<<hllP|1<<(hllP-1)) + 1)
	d.HLL[i] = max(d.HLL[i], rank)
}

// mix64 is splitmix64's finalizer: FNV's low bits are weak.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// QuantileExact is how many values quantile keeps exactly per window;
// beyond it a log-bucket sketch with relative accuracy QuantileAccuracy
// takes over: the returned value is within 1% of the exact one.
const QuantileExact = 1024

// QuantileAccuracy is the sketch's relative accuracy (DDSketch's alpha).
const QuantileAccuracy = 0.01

var (
	gamma    = (1 + QuantileAccuracy) / (1 - QuantileAccuracy)
	logGamma = math.Log(gamma)
)

// Quantiles holds a window's values for quantile: exactly, then as
// counts in logarithmic buckets (positive and negative) and of zeros.
type Quantiles struct {
	Exact []float64       `json:"exact,omitempty"`
	Pos   map[int32]int64 `json:"pos,omitempty"`
	Neg   map[int32]int64 `json:"neg,omitempty"`
	Zeros int64           `json:"zeros,omitempty"`
	N     int64           `json:"n,omitempty"` // values in the buckets
}

// Add records x.
func (q *Quantiles) Add(x float64) {
	if q.N == 0 && len(q.Exact) < QuantileExact {
		q.Exact = append(q.Exact, x)
		return
	}
	if q.N == 0 {
		for _, v := range q.Exact {
			q.bucket(v)
		}
		q.Exact = nil
	}
	q.bucket(x)
}

func (q *Quantiles) bucket(x float64) {
	q.N++
	switch {
	case x > 0:
		if q.Pos == nil {
			q.Pos = map[int32]int64{}
		}
		q.Pos[bucketOf(x)]++
	case x < 0:
		if q.Neg == nil {
			q.Neg = map[int32]int64{}
		}
		q.Neg[bucketOf(-x)]++
	default:
		q.Zeros++
	}
}

func bucketOf(x float64) int32 { return int32(math.Ceil(math.Log(x) / logGamma)) }

// bucketValue is the value whose relative error to every x in bucket i is
// at most QuantileAccuracy.
func bucketValue(i int32) float64 { return 2 * math.Pow(gamma, float64(i)) / (gamma + 1) }

// Merge adds o's values.
func (q *Quantiles) Merge(o *Quantiles) {
	for _, v := range o.Exact {
		q.Add(v)
	}
	if o.N == 0 {
		return
	}
	if q.N == 0 {
		for _, v := range q.Exact {
			q.bucket(v)
		}
		q.Exact = nil
	}
	for i, n := range o.Pos {
		if q.Pos == nil {
			q.Pos = map[int32]int64{}
		}
		q.Pos[i] += n
	}
	for i, n := range o.Neg {
		if q.Neg == nil {
			q.Neg = map[int32]int64{}
		}
		q.Neg[i] += n
	}
	q.Zeros += o.Zeros
	q.N += o.N
}

// Quantile returns the nearest-rank r-quantile: the value at rank
// ceil(r*n) (at least 1) in sorted order; exact while the values are.
func (q *Quantiles) Quantile(r float64) float64 {
	if q.N == 0 {
		s := slices.Clone(q.Exact)
		slices.Sort(s)
		return s[rank(r, int64(len(s)))-1]
	}
	want := rank(r, q.N)
	var seen int64
	neg := sortedKeys(q.Neg)
	for i := len(neg) - 1; i >= 0; i-- { // most negative first
		if seen += q.Neg[neg[i]]; seen >= want {
			return -bucketValue(neg[i])
		}
	}
	if seen += q.Zeros; seen >= want {
		return 0
	}
	for _, k := range sortedKeys(q.Pos) {
		if seen += q.Pos[k]; seen >= want {
			return bucketValue(k)
		}
	}
	return bucketValue(slices.Max(sortedKeys(q.Pos)))
}

func rank(r float64, n int64) int64 {
	k := int64(math.Ceil(r * float64(n)))
	return min(max(k, 1), n)
}

func sortedKeys(m map[int32]int64) []int32 {
	ks := make([]int32, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
