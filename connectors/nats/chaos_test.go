package nats_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pipe-dsl/pipe/pipeline"
)

// privateServer is a nats-server of the test's own, so that killing it
// disturbs no other test.
type privateServer struct {
	t        *testing.T
	bin, dir string
	port     int
	cmd      *exec.Cmd
}

// start runs the server and waits until it is ready.
func (s *privateServer) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "-a", "127.0.0.1", "-p", fmt.Sprint(s.port), "-js", "-sd", s.dir)
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Server is ready") {
				close(ready)
				break
			}
		}
		for sc.Scan() {
		}
	}()
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		s.t.Fatal("nats-server did not start")
	}
}

func (s *privateServer) kill() {
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}

// Restarting a server is disruptive, so this runs only with PIPE_CHAOS=1,
// against a private nats-server on a free port.
func TestTheSourceSurvivesAServerKilledAndRestarted(t *testing.T) {
	if os.Getenv("PIPE_CHAOS") != "1" {
		t.Skip("restarts a nats-server; set PIPE_CHAOS=1 to run")
	}
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Skip("nats-server not on PATH")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &privateServer{t: t, bin: bin, dir: t.TempDir(), port: l.Addr().(*net.TCPAddr).Port}
	l.Close()
	srv.start()
	t.Cleanup(srv.kill)
	url := fmt.Sprintf("nats://127.0.0.1:%d", srv.port)

	nc, err := natsgo.Connect(url, natsgo.MaxReconnects(-1), natsgo.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	want := bodies("id", n)
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "CHAOS", Subjects: []string{"chaos.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	publish(t, js, "chaos.a", want)

	rec := newRecorder()
	p := compile(t, fmt.Sprintf(`
name: chaos
source:
  nats_jetstream: {url: %q, stream: CHAOS, durable: pipe, create: true, ack_wait: 2s}
sink:
  drop: {}
`, url), map[string]pipeline.Sink{"sink": rec})
	stop := start(t, p)
	got := map[string]int{}
	for _, m := range collect(t, rec.C, n/3, 20*time.Second) {
		got[string(m.Body)]++
	}
	// When the server is killed and restarted mid-stream,
	srv.kill()
	srv.start()
	// then every message still arrives, and all are acked.
	deadline := time.After(60 * time.Second)
	for len(got) < n {
		select {
		case m := <-rec.C:
			got[string(m.Body)]++
		case <-deadline:
			t.Fatalf("delivered %d of %d messages after the restart", len(got), n)
		}
	}
	settledAt(t, js, "CHAOS", "pipe")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	dups := len(rec.C)
	for _, c := range got {
		dups += c - 1
	}
	t.Logf("server killed after %d messages; all %d delivered, %d duplicates", n/3, n, dups)
}

// settledAt is settled for a client whose requests may fail while the
// server restarts.
func settledAt(t *testing.T, js jetstream.JetStream, stream, durable string) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for {
		if c, err := js.Consumer(t.Context(), stream, durable); err == nil {
			if info, err := c.Info(t.Context()); err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
				return
			}
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal("consumer did not settle after the restart")
		}
	}
}
