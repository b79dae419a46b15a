package watermark

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMarkAdvancesOnlyOverContiguousAcks(t *testing.T) {
	var tr Tracker[int]
	tk := make([]uint64, 6)
	for i := 1; i <= 5; i++ {
		tk[i] = tr.Add(i * 10)
	}
	check := func(step string, want int, wantOK bool) {
		t.Helper()
		got, ok, _ := tr.Mark()
		if got != want || ok != wantOK {
			t.Fatalf("%s: Mark() = %d, %v, want %d, %v", step, got, ok, want, wantOK)
		}
	}
	check("nothing acked", 0, false)
	tr.Ack(tk[2])
	tr.Ack(tk[4])
	check("2 and 4 acked", 0, false)
	tr.Ack(tk[1])
	check("1 acked", 20, true)
	tr.Ack(tk[3])
	check("3 acked", 40, true)
	if n := tr.Unresolved(); n != 1 {
		t.Fatalf("Unresolved() = %d, want 1", n)
	}
	tr.Ack(tk[5])
	check("all acked", 50, true)
}

func TestNackHoldsMarkUntilRewind(t *testing.T) {
	var tr Tracker[int]
	a, b, c := tr.Add(1), tr.Add(2), tr.Add(3)
	tr.Ack(a)
	tr.Nack(b)
	tr.Ack(c)
	if p, _, _ := tr.Mark(); p != 1 {
		t.Fatalf("Mark() after nack of 2 = %d, want 1", p)
	}
	if !tr.Failed() || tr.Unresolved() != 0 {
		t.Fatalf("Failed() = %v, Unresolved() = %d, want true, 0", tr.Failed(), tr.Unresolved())
	}
	if p, ok := tr.Head(); p != 2 || !ok {
		t.Fatalf("Head() = %d, %v, want 2, true", p, ok)
	}
	if p, ok := tr.Rewind(); p != 1 || !ok {
		t.Fatalf("Rewind() = %d, %v, want 1, true", p, ok)
	}
	tr.Ack(b) // stale ticket
	d := tr.Add(2)
	if tr.Failed() {
		t.Fatal("Failed() after Rewind = true")
	}
	tr.Ack(d)
	if p, _, changed := tr.Mark(); p != 2 || !changed {
		t.Fatalf("Mark() after redelivery = %d, changed %v, want 2, true", p, changed)
	}
}

func TestMarkReportsChangeOnce(t *testing.T) {
	var tr Tracker[string]
	tr.Ack(tr.Add("a"))
	if _, _, changed := tr.Mark(); !changed {
		t.Fatal("first Mark() changed = false")
	}
	if _, _, changed := tr.Mark(); changed {
		t.Fatal("second Mark() changed = true")
	}
}
