package windowing

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Func is an aggregate function.
type Func string

const (
	Count         Func = "count"          // count(): members
	Sum           Func = "sum"            // sum(x): an int while every x is, else a double
	Min           Func = "min"            // min(x): numbers, or strings (numbers order before strings)
	Max           Func = "max"            // max(x)
	Avg           Func = "avg"            // avg(x): a double
	First         Func = "first"          // first(x): x of the earliest event time (first arrival on ties)
	Last          Func = "last"           // last(x): x of the latest event time (last arrival on ties)
	CountDistinct Func = "count_distinct" // exact up to DistinctExact values, then HyperLogLog
	Quantile      Func = "quantile"       // quantile(x, q): exact up to QuantileExact values, then a sketch
	Collect       Func = "collect"        // collect(x): a list, at most MaxCollect items
)

// Funcs lists the aggregate functions.
var Funcs = []Func{Count, Sum, Min, Max, Avg, First, Last, CountDistinct, Quantile, Collect}

// Agg is one output field: Name = Func(argument).
type Agg struct {
	Name string
	Func Func
	// Q is quantile's rank, in [0, 1].
	Q float64
	// MaxCollect caps collect's list; later items are counted, not kept.
	MaxCollect int
}

func (a *Agg) validate() error {
	if !slices.Contains(Funcs, a.Func) {
		return fmt.Errorf("aggregate %q: unknown function %q", a.Name, a.Func)
	}
	if a.Func == Quantile && (a.Q < 0 || a.Q > 1 || math.IsNaN(a.Q)) {
		return fmt.Errorf("aggregate %q: quantile rank %v is not in [0, 1]", a.Name, a.Q)
	}
	if a.Func == Collect && a.MaxCollect <= 0 {
		return fmt.Errorf("aggregate %q: max_collect must be positive", a.Name)
	}
	return nil
}

// Acc is one aggregate's accumulator in one window. Its fields are a union
// over the functions; every field serializes, so a window's state is
// exactly its accumulators.
type Acc struct {
	N     int64             `json:"n,omitempty"` // count; sum/avg members; collect items dropped
	I     int64             `json:"i,omitempty"` // int sum
	F     float64           `json:"f,omitempty"` // double sum
	Float bool              `json:"float,omitempty"`
	V     *Scalar           `json:"v,omitempty"` // min, max
	R     json.RawMessage   `json:"r,omitempty"` // first, last
	T     int64             `json:"t,omitempty"` // event time of R
	D     *Distinct         `json:"d,omitempty"`
	Q     *Quantiles        `json:"q,omitempty"`
	List  []json.RawMessage `json:"list,omitempty"`
}

// Scalar is a number or a string, as min and max compare them.
type Scalar struct {
	S    string  `json:"s,omitempty"`
	I    int64   `json:"i,omitempty"`
	F    float64 `json:"f,omitempty"`
	Kind uint8   `json:"k"` // 0 int, 1 double, 2 string
}

func scalarOf(v any) (Scalar, bool) {
	switch x := v.(type) {
	case int64:
		return Scalar{I: x, Kind: 0}, true
	case float64:
		return Scalar{F: x, Kind: 1}, true
	case string:
		return Scalar{S: x, Kind: 2}, true
	}
	return Scalar{}, false
}

func (s *Scalar) float() float64 {
	if s.Kind == 0 {
		return float64(s.I)
	}
	return s.F
}

// cmp orders numbers numerically (ints exactly), before strings.
func (s *Scalar) cmp(o *Scalar) int {
	switch {
	case s.Kind == 2 && o.Kind == 2:
		return strings.Compare(s.S, o.S)
	case s.Kind == 2:
		return 1
	case o.Kind == 2:
		return -1
	case s.Kind == 0 && o.Kind == 0:
		switch {
		case s.I < o.I:
			return -1
		case s.I > o.I:
			return 1
		}
		return 0
	}
	a, b := s.float(), o.float()
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *Scalar) value() any {
	switch s.Kind {
	case 0:
		return s.I
	case 1:
		return s.F
	}
	return s.S
}

// checkValues rejects, before anything changes, a value its aggregate
// cannot take.
func checkValues(aggs []Agg, vals []any) error {
	if len(vals) != len(aggs) {
		return fmt.Errorf("got %d aggregate values for %d aggregates", len(vals), len(aggs))
	}
	for i, a := range aggs {
		v := vals[i]
		switch a.Func {
		case Sum, Avg, Quantile:
			switch x := v.(type) {
			case int64:
			case float64:
				if math.IsNaN(x) || math.IsInf(x, 0) {
					return fmt.Errorf("aggregate %q: %s(%v): not a finite number", a.Name, a.Func, x)
				}
			default:
				return fmt.Errorf("aggregate %q: %s takes a number, got %s", a.Name, a.Func, TypeName(v))
			}
		case Min, Max:
			if _, ok := scalarOf(v); !ok {
				return fmt.Errorf("aggregate %q: %s takes a number or a string, got %s", a.Name, a.Func, TypeName(v))
			}
		case First, Last, Collect, CountDistinct:
			if _, err := json.Marshal(v); err != nil {
				return fmt.Errorf("aggregate %q: %w", a.Name, err)
			}
		}
	}
	return nil
}

// TypeName names the JSON type of v, a value as expr's EvalNative returns
// it, for error messages: null, bool, string, map, list, int64, float64.
func TypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "bool"
	case string:
		return "string"
	case map[string]any:
		return "map"
	case []any:
		return "list"
	}
	return fmt.Sprintf("%T", v)
}

// add folds v, of an event at t, into the accumulator; checkValues has
// accepted v.
func (c *Acc) add(a *Agg, v any, t int64) {
	switch a.Func {
	case Count:
		c.N++
	case Sum, Avg:
		c.N++
		c.addNumber(v)
	case Min, Max:
		s, _ := scalarOf(v)
		if c.V == nil || (a.Func == Min && s.cmp(c.V) < 0) || (a.Func == Max && s.cmp(c.V) > 0) {
			c.V = &s
		}
	case First:
		if c.R == nil || t < c.T {
			c.R, c.T = mustJSON(v), t
		}
	case Last:
		if c.R == nil || t >= c.T {
			c.R, c.T = mustJSON(v), t
		}
	case CountDistinct:
		if c.D == nil {
			c.D = &Distinct{}
		}
		c.D.Add(string(mustJSON(v)))
	case Quantile:
		if c.Q == nil {
			c.Q = &Quantiles{}
		}
		switch x := v.(type) {
		case int64:
			c.Q.Add(float64(x))
		case float64:
			c.Q.Add(x)
		}
	case Collect:
		if len(c.List) < a.MaxCollect {
			c.List = append(c.List, mustJSON(v))
		} else {
			c.N++
		}
	}
}

// addNumber adds v to the sum: ints stay ints until a double arrives or
// the int sum would overflow, then the sum is a double.
func (c *Acc) addNumber(v any) {
	switch x := v.(type) {
	case int64:
		if !c.Float {
			if s := c.I + x; (x > 0 && s < c.I) || (x < 0 && s > c.I) {
				c.Float, c.F = true, float64(c.I)
			} else {
				c.I = s
				return
			}
		}
		c.F += float64(x)
	case float64:
		if !c.Float {
			c.Float, c.F = true, float64(c.I)
		}
		c.F += x
	}
}

// merge folds o, the accumulator of a later-merged session, into c.
func (c *Acc) merge(a *Agg, o *Acc) {
	switch a.Func {
	case Count:
		c.N += o.N
	case Sum, Avg:
		c.N += o.N
		if o.Float {
			c.addNumber(o.F)
		} else {
			c.addNumber(o.I)
		}
	case Min, Max:
		if o.V != nil && (c.V == nil || (a.Func == Min && o.V.cmp(c.V) < 0) || (a.Func == Max && o.V.cmp(c.V) > 0)) {
			c.V = o.V
		}
	case First:
		if o.R != nil && (c.R == nil || o.T < c.T) {
			c.R, c.T = o.R, o.T
		}
	case Last:
		if o.R != nil && (c.R == nil || o.T > c.T) {
			c.R, c.T = o.R, o.T
		}
	case CountDistinct:
		if o.D != nil {
			if c.D == nil {
				c.D = &Distinct{}
			}
			c.D.Merge(o.D)
		}
	case Quantile:
		if o.Q != nil {
			if c.Q == nil {
				c.Q = &Quantiles{}
			}
			c.Q.Merge(o.Q)
		}
	case Collect:
		for _, x := range o.List {
			if len(c.List) < a.MaxCollect {
				c.List = append(c.List, x)
			} else {
				c.N++
			}
		}
		c.N += o.N
	}
}

// value is the aggregate's output: int64, float64, string,
// json.RawMessage or []json.RawMessage.
func (c *Acc) value(a *Agg) any {
	switch a.Func {
	case Count:
		return c.N
	case Sum:
		if c.Float {
			return c.F
		}
		return c.I
	case Avg:
		if c.N == 0 {
			return nil
		}
		if c.Float {
			return c.F / float64(c.N)
		}
		return float64(c.I) / float64(c.N)
	case Min, Max:
		if c.V == nil {
			return nil
		}
		return c.V.value()
	case First, Last:
		if c.R == nil {
			return nil
		}
		return c.R
	case CountDistinct:
		if c.D == nil {
			return int64(0)
		}
		return c.D.Count()
	case Quantile:
		if c.Q == nil {
			return nil
		}
		return c.Q.Quantile(a.Q)
	case Collect:
		if c.List == nil {
			return []json.RawMessage{}
		}
		return c.List
	}
	return nil
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil { // checkValues encoded it already
		panic(fmt.Sprintf("windowing: encoding %T: %v", v, err))
	}
	return b
}
