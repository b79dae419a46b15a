package inflight_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pipe-dsl/pipe/connectors/internal/inflight"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestTheConnectionClosesAfterTheReaderAndTheLastMessage(t *testing.T) {
	var closed atomic.Int32
	tr := inflight.New(func() { closed.Add(1) })
	tr.Add()
	tr.Add()
	tr.Done() // one message resolved
	tr.Done() // the reader returned
	if closed.Load() != 0 {
		t.Fatal("closed while a message was unresolved")
	}
	if tr.Len() != 1 {
		t.Errorf("Len = %d, want 1", tr.Len())
	}
	tr.Done() // the last message
	if closed.Load() != 1 {
		t.Errorf("close ran %d times, want 1", closed.Load())
	}
}

func TestConcurrentAcksCloseOnce(t *testing.T) {
	var closed atomic.Int32
	tr := inflight.New(func() { closed.Add(1) })
	const n = 1000
	for range n {
		tr.Add()
	}
	var wg sync.WaitGroup
	for range n {
		wg.Go(tr.Done)
	}
	tr.Done()
	wg.Wait()
	if closed.Load() != 1 {
		t.Errorf("close ran %d times, want 1", closed.Load())
	}
}

func TestTheHardStopClosesWithMessagesUnresolved(t *testing.T) {
	done := make(chan struct{})
	tr := inflight.New(func() { close(done) })
	tr.Add()
	tr.Done()
	ctx, cancel := context.WithCancel(context.Background())
	tr.CloseAfter(ctx, time.Millisecond)
	cancel()
	<-done
	tr.Done() // a late ack finds it closed; close does not run again
}
