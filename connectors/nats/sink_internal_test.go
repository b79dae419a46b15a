package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pipe-dsl/pipe/connectors/internal/conntest"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/pipeline"
)

func jetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	nc, err := natsgo.Connect(DefaultURL, natsgo.Timeout(time.Second))
	if err != nil {
		conntest.Unavailable(t, "NATS on "+DefaultURL, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// memStream creates an in-memory stream whose name is also its subject,
// deleted when the test ends.
func memStream(t *testing.T, js jetstream.JetStream, prefix string) string {
	t.Helper()
	name := fmt.Sprintf("%s_%d", prefix, time.Now().UnixNano())
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: name, Subjects: []string{name}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { js.DeleteStream(context.Background(), name) })
	return name
}

// stored is the number of messages stream name holds.
func stored(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	st, err := js.Stream(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestABatchIsStoredWholeBeforeTheWriteReturns(t *testing.T) {
	js := jetStream(t)
	name := memStream(t, js, "BATCH")
	s := &sink{cfg: sinkConfig{URL: DefaultURL, Subject: name, Headers: true, Timeout: 5 * time.Second}, logger: slog.Default()}
	defer s.Close(context.Background())
	var members []*pipeline.Message
	for i := range 100 {
		members = append(members, pipeline.NewMessage(fmt.Appendf(nil, "m%d", i), nil))
	}
	if err := s.Write(t.Context(), pipeline.NewBatch(members)); err != nil {
		t.Fatal(err)
	}
	if n := stored(t, js, name); n != 100 {
		t.Errorf("stream holds %d messages after the write, want 100", n)
	}
}

func TestAWriteToASubjectNoStreamCapturesFails(t *testing.T) {
	jetStream(t)
	s := &sink{cfg: sinkConfig{URL: DefaultURL, Subject: fmt.Sprintf("nowhere.%d", time.Now().UnixNano()), Timeout: 5 * time.Second}, logger: slog.Default()}
	defer s.Close(context.Background())
	if err := s.Write(t.Context(), pipeline.NewMessage([]byte("a"), nil)); err == nil {
		t.Error("Write = nil, want an error: no stream stores the subject")
	}
}

func TestRedactHidesCredentials(t *testing.T) {
	got := redact("nats://u:secret@a:4222,tls://tok@b:4222,c:4222")
	if want := "nats://***@a:4222,tls://***@b:4222,c:4222"; got != want {
		t.Errorf("redact = %q, want %q", got, want)
	}
}

func TestClosingASinkWhoseServerIsDownDoesNotWaitForAFlush(t *testing.T) {
	// Nothing listens on port 1: the connection keeps retrying in the
	// background, as it does when a server goes away mid-run.
	s := &sink{cfg: sinkConfig{URL: "nats://127.0.0.1:1", Subject: "x", Timeout: time.Minute}, logger: slog.Default()}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the hard stop came during the write
	if err := s.Write(ctx, pipeline.NewMessage([]byte("x"), nil)); err == nil {
		t.Fatal("Write to an unreachable server succeeded")
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close(context.Background()) }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close() = %v, want nil: every write already waited for its acks", err)
		}
	case <-time.After(3 * time.Second): // the flush it must not wait for took 5 s
		t.Fatal("Close waited for a flush to an unreachable server")
	}
}

func TestABatchIsStoredButForTheMembersRefusedForGood(t *testing.T) {
	js := jetStream(t)
	name := memStream(t, js, "PARTIAL")
	id, err := expr.Compile("string(msg.id)")
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{cfg: sinkConfig{URL: DefaultURL, Subject: name, MsgID: id, Timeout: 5 * time.Second}, logger: slog.Default()}
	defer s.Close(context.Background())
	huge := fmt.Appendf(nil, `{"id": 3, "pad": "%s"}`, strings.Repeat("x", 2<<20)) // over the server's 1 MB max_payload
	var members []*pipeline.Message
	for _, b := range [][]byte{[]byte(`{"id": 1}`), []byte(`{"no_id": 2}`), huge, []byte(`{"id": 4}`)} {
		members = append(members, pipeline.NewMessage(b, nil))
	}
	err = s.Write(t.Context(), pipeline.NewBatch(members))
	var be *pipeline.BatchError
	if !errors.As(err, &be) || len(be.Errs) != 4 || be.Errs[0] != nil || be.Errs[3] != nil {
		t.Fatalf("Write = %v, want a BatchError refusing members 1 and 2 only", err)
	}
	if pipeline.Reason(be.Errs[1]) != pipeline.ReasonExpression || !errors.Is(be.Errs[2], natsgo.ErrMaxPayload) {
		t.Errorf("refusals = %v, want an expression error and ErrMaxPayload", be.Errs)
	}
	if n := stored(t, js, name); n != 2 {
		t.Errorf("stream holds %d messages, want members 0 and 3", n)
	}
}
