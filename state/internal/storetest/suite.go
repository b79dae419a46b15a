// Package storetest holds the conformance suite every state.Store must
// pass, run by each backend's tests against its real server. Only tests
// import it.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/internal/tcpproxy"
	"github.com/pipe-dsl/pipe/state"
)

// Backend describes a backend to the suites.
type Backend struct {
	// Target is the real server's host:port.
	Target string
	// Open returns a backend that reaches the server at addr (a proxy's or
	// Target), with its table or key names made from id (the same id, the
	// same names), removed when t ends.
	Open func(t testing.TB, addr, id string) state.Backend
	// Lose erases everything stored under id's names, as a server
	// restarted without persistence would.
	Lose func(t testing.TB, id string)
	// CommitWord is what the client sends to make a commit take effect
	// ("exec" for Redis MULTI/EXEC, "commit" for PostgreSQL).
	CommitWord string
}

func cp(epoch int64, tag string, n int) state.Checkpoint {
	c := state.Checkpoint{Epoch: epoch, Stages: map[string][]byte{}, Positions: map[string][]byte{}}
	for i := range n {
		c.Stages[fmt.Sprintf("win%d", i)] = []byte(tag + "-state")
		c.Positions[fmt.Sprintf("src/%d", i)] = []byte(tag + "-pos")
	}
	return c
}

// ID returns a name unique to this run of t.
func ID(t testing.TB) string {
	return fmt.Sprintf("t%d_%d", time.Now().UnixNano(), len(t.Name()))
}

func open(t *testing.T, b Backend, addr, id string) state.Store {
	t.Helper()
	s, err := b.Open(t, addr, id).OpenStore()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// reloaded loads scope afresh (a new process) and checks it holds want at
// seq.
func reloaded(t *testing.T, b Backend, id, scope string, seq int64, want state.Checkpoint) {
	t.Helper()
	got, err := open(t, b, b.Target, id).Load(t.Context(), scope)
	if err != nil || got.Seq != seq {
		t.Fatalf("Load(%s) = seq %d, %v; want seq %d", scope, got.Seq, err, seq)
	}
	same(t, got, want)
}

func same(t *testing.T, got, want state.Checkpoint) {
	t.Helper()
	eq := func(a, b map[string][]byte) bool {
		return maps.EqualFunc(a, b, func(x, y []byte) bool { return string(x) == string(y) })
	}
	if !eq(got.Stages, want.Stages) || !eq(got.Positions, want.Positions) {
		t.Fatalf("Load = stages %q positions %q, want stages %q positions %q", got.Stages, got.Positions, want.Stages, want.Positions)
	}
}

// RunStore runs the checkpoint store suite.
func RunStore(t *testing.T, b Backend) {
	ctx := t.Context()
	t.Run("a scope never committed loads empty with epoch 1", func(t *testing.T) {
		id := ID(t)
		s := open(t, b, b.Target, id)
		got, err := s.Load(ctx, "fresh")
		if err != nil || got.Epoch != 1 || got.Seq != 0 || len(got.Stages)+len(got.Positions) != 0 {
			t.Fatalf("Load = %+v, %v; want empty at epoch 1", got, err)
		}
	})
	t.Run("a commit replaces the whole checkpoint and the next owner loads it", func(t *testing.T) {
		id := ID(t)
		s := open(t, b, b.Target, id)
		first, _ := s.Load(ctx, "rt")
		if _, err := s.Commit(ctx, "rt", cp(first.Epoch, "a", 3)); err != nil {
			t.Fatal(err)
		}
		seq, err := s.Commit(ctx, "rt", cp(first.Epoch, "b", 2))
		if err != nil || seq != 2 {
			t.Fatalf("Commit = %d, %v; want seq 2", seq, err)
		}
		got, err := s.Load(ctx, "rt")
		if err != nil || got.Seq != 2 || got.Epoch != first.Epoch+1 {
			t.Fatalf("Load = seq %d epoch %d, %v; want seq 2 epoch %d", got.Seq, got.Epoch, err, first.Epoch+1)
		}
		same(t, got, cp(0, "b", 2)) // win2 and src/2 of "a" are gone
	})
	t.Run("a zombie owner's commit is fenced and writes nothing", func(t *testing.T) {
		id := ID(t)
		s := open(t, b, b.Target, id)
		zombie, _ := s.Load(ctx, "fence")
		if _, err := s.Commit(ctx, "fence", cp(zombie.Epoch, "old", 1)); err != nil {
			t.Fatal(err)
		}
		owner, _ := s.Load(ctx, "fence")
		_, err := s.Commit(ctx, "fence", cp(zombie.Epoch, "zombie", 1))
		if !errors.Is(err, state.ErrFenced) {
			t.Fatalf("zombie Commit = %v, want ErrFenced", err)
		}
		if _, err := s.Commit(ctx, "fence", cp(owner.Epoch, "new", 1)); err != nil {
			t.Fatalf("owner Commit = %v", err)
		}
		got, _ := s.Load(ctx, "fence")
		same(t, got, cp(0, "new", 1))
	})
	t.Run("a commit after the store lost the scope fails with ErrLost and writes nothing", func(t *testing.T) {
		id := ID(t)
		s := open(t, b, b.Target, id)
		own, _ := s.Load(ctx, "lost")
		own, _ = s.Load(ctx, "lost") // epoch 2: a restarted store's would be lower
		if _, err := s.Commit(ctx, "lost", cp(own.Epoch, "a", 2)); err != nil {
			t.Fatal(err)
		}
		b.Lose(t, id)
		_, err := s.Commit(ctx, "lost", cp(own.Epoch, "b", 2))
		if !errors.Is(err, state.ErrLost) || errors.Is(err, state.ErrFenced) {
			t.Fatalf("Commit after the store lost the scope = %v, want ErrLost", err)
		}
		got, err := s.Load(ctx, "lost")
		if err != nil || got.Seq != 0 || len(got.Stages)+len(got.Positions) != 0 {
			t.Fatalf("Load after the refused commit = %+v, %v; want the empty scope", got, err)
		}
	})
	t.Run("a crash just before the commit reaches the store keeps the previous checkpoint", func(t *testing.T) {
		id := ID(t)
		p := tcpproxy.New(t, b.Target)
		s := open(t, b, p.Addr(), id)
		own, err := s.Load(ctx, "crash")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Commit(ctx, "crash", cp(own.Epoch, "before", 4)); err != nil {
			t.Fatal(err)
		}
		cut := p.CutBefore(b.CommitWord)
		if _, err := s.Commit(ctx, "crash", cp(own.Epoch, "torn", 2)); err == nil {
			t.Fatal("Commit through a cut connection succeeded")
		}
		select {
		case <-cut:
		default:
			t.Fatalf("the connection was not cut before %q", b.CommitWord)
		}
		reloaded(t, b, id, "crash", 1, cp(0, "before", 4))
	})
	t.Run("a crash just after the commit keeps the new checkpoint", func(t *testing.T) {
		id := ID(t)
		p := tcpproxy.New(t, b.Target)
		s := open(t, b, p.Addr(), id)
		own, _ := s.Load(ctx, "after")
		if _, err := s.Commit(ctx, "after", cp(own.Epoch, "done", 2)); err != nil {
			t.Fatal(err)
		}
		p.Cut(true)
		reloaded(t, b, id, "after", 1, cp(0, "done", 2))
	})
	t.Run("a commit during connection loss is retried by the guard and lands once", func(t *testing.T) {
		id := ID(t)
		p := tcpproxy.New(t, b.Target)
		s := open(t, b, p.Addr(), id)
		own, _ := s.Load(ctx, "loss")
		g, err := state.NewGuard("state", nil, nil, 50*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		p.Cut(true)
		failed := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			var once bool
			done <- g.Do(ctx, func(ctx context.Context) error {
				_, err := s.Commit(ctx, "loss", cp(own.Epoch, "x", 2))
				if err != nil && !once {
					once = true
					close(failed)
				}
				return err
			})
		}()
		<-failed
		p.Restore()
		if err := <-done; err != nil {
			t.Fatalf("guarded Commit = %v", err)
		}
		st := g.Stats()
		if st.Failures < 1 {
			t.Fatalf("guard stats %+v: want failures >= 1", st)
		}
		reloaded(t, b, id, "loss", 1, cp(0, "x", 2))
	})
	t.Run("a replica that takes a scope over fences the previous owner's next commit", func(t *testing.T) {
		id := ID(t)
		s := open(t, b, b.Target, id)
		g, err := state.NewGuard("state", nil, nil, 50*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		old, _, err := state.Acquire(ctx, s, g, "own")
		if err != nil {
			t.Fatal(err)
		}
		a := cp(0, "old", 2)
		if err := old.Commit(ctx, a.Stages, a.Positions); err != nil || old.Seq() != 1 {
			t.Fatalf("first owner's Commit = %v, seq %d; want nil, 1", err, old.Seq())
		}
		owner, got, err := state.Acquire(ctx, open(t, b, b.Target, id), g, "own")
		if err != nil || got.Seq != 1 || owner.Seq() != 1 {
			t.Fatalf("second Acquire = seq %d, %v; want seq 1", got.Seq, err)
		}
		same(t, got, a)
		z := cp(0, "zombie", 1)
		if err := old.Commit(ctx, z.Stages, z.Positions); !errors.Is(err, state.ErrFenced) {
			t.Fatalf("the old owner's Commit = %v, want ErrFenced", err)
		}
		n := cp(0, "new", 3)
		if err := owner.Commit(ctx, n.Stages, n.Positions); err != nil || owner.Seq() != 2 {
			t.Fatalf("the new owner's Commit = %v, seq %d; want nil, 2", err, owner.Seq())
		}
		got, _ = s.Load(ctx, "own")
		same(t, got, n)
	})
}
