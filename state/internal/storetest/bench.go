package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/state"
)

// WindowBytes is the serialized size assumed for one open window: key,
// start, watermark-relative end and a few aggregates.
const WindowBytes = 64

// BenchCommit measures Commit of one window stage's state holding open
// windows (WindowBytes each) and 8 source positions: the commit latency
// (ns/op) and the bytes written per checkpoint (B/op of payload as MB/s
// via SetBytes, and bytes/checkpoint).
func BenchCommit(b *testing.B, be Backend) {
	for _, open := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("windows=%d", open), func(b *testing.B) {
			s, err := be.Open(b, be.Target, ID(b)).OpenStore()
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			own, err := s.Load(b.Context(), "bench")
			if err != nil {
				b.Fatal(err)
			}
			cp := state.Checkpoint{Epoch: own.Epoch,
				Stages:    map[string][]byte{"window": make([]byte, open*WindowBytes)},
				Positions: map[string][]byte{}}
			for i := range 8 {
				cp.Positions[fmt.Sprintf("orders/%d", i)] = []byte(fmt.Sprintf("%020d", i*1_000_000))
			}
			b.SetBytes(int64(cp.Bytes()))
			for b.Loop() {
				if _, err := s.Commit(b.Context(), "bench", cp); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cp.Bytes()), "bytes/checkpoint")
		})
	}
}

// BenchClaim measures one dedupe claim of a fresh key (the cost a message
// pays with scope: global), one call at a time.
func BenchClaim(b *testing.B, be Backend) {
	sh, err := be.Open(b, be.Target, ID(b)).OpenShared()
	if err != nil {
		b.Fatal(err)
	}
	defer sh.Close()
	i := 0
	for b.Loop() {
		i++
		key := fmt.Sprintf("bench:%d", i)
		if ok, err := sh.Claim(b.Context(), key, "t", time.Minute); err != nil || !ok {
			b.Fatalf("Claim(%s) = %v, %v", key, ok, err)
		}
	}
}
