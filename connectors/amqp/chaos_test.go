package amqp

import (
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/pipeline"
)

// The broker itself closes the source's connection mid-stream (rabbitmqctl
// close_connection, as an operator or a node shutdown would): the source
// reconnects and nothing is lost. Opt-in with PIPE_CHAOS=1, since it needs
// rabbitmqctl on the broker's machine.
func TestSourceSurvivesBrokerClosingTheConnection(t *testing.T) {
	if os.Getenv("PIPE_CHAOS") != "1" {
		t.Skip("set PIPE_CHAOS=1 to let the test close its connection with rabbitmqctl")
	}
	if _, err := exec.LookPath("rabbitmqctl"); err != nil {
		t.Skip("rabbitmqctl not found")
	}
	b := needBroker(t)
	q := b.queue("chaos")
	want := bodies("c", 500)
	b.publish(q, want, nil)
	s, err := newSource(&sourceConfig{URL: DefaultURL, Queue: q, Prefetch: 16, Reconnect: time.Second}, component.Env{Pipeline: q, Node: "in"})
	if err != nil {
		t.Fatal(err)
	}
	src := s.(*source)
	var dials int
	var mu sync.Mutex
	src.onDial = func(_ net.Conn) { mu.Lock(); dials++; mu.Unlock() }
	sink := newCollector(len(want))
	var once sync.Once
	sink.Fail = func(*pipeline.Message, int) error {
		if len(sink.Metas) == 100 {
			once.Do(func() { closeConnection(t, src.name) })
		}
		return nil
	}
	stop := run(t, src, sink, nil)
	waitFor(t, sink.Full, "every message at the sink")
	stop()
	if dials < 2 {
		t.Fatalf("dialled %d times, want a reconnection", dials)
	}
	if got := sink.Delivered(); !slices.Equal(got, sorted(want)) {
		t.Fatalf("delivered %d distinct messages, want %d", len(got), len(want))
	}
	if n := b.depth(q); n != 0 {
		t.Fatalf("queue holds %d messages, want 0", n)
	}
}

// closeConnection makes the broker close the connection named name.
func closeConnection(t *testing.T, name string) {
	out, err := exec.Command("rabbitmqctl", "-s", "list_connections", "pid", "client_properties").Output()
	if err != nil {
		t.Errorf("rabbitmqctl list_connections: %v", err)
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		// client_properties holds {"connection_name","<name>"}.
		pid, props, ok := strings.Cut(line, "\t")
		if ok && strings.Contains(props, `{"connection_name","`+name+`"}`) {
			if out, err := exec.Command("rabbitmqctl", "close_connection", pid, "pipe chaos test").CombinedOutput(); err != nil {
				t.Errorf("rabbitmqctl close_connection: %v\n%s", err, out)
			}
			return
		}
	}
	t.Errorf("no connection named %q in:\n%s", name, out)
}
