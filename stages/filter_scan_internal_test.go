package stages

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/pipeline"
)

// Given a message whose scan an earlier stage cached (copies of the
// message may share it), when a filter drops it, then the scan stays
// usable: the filter gives back only scans it made itself.
func TestFilterDroppingAMessageKeepsItsCachedScan(t *testing.T) {
	cond, err := expr.Compile(`msg.level == "error"`)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := newFilter(&filterConfig{Condition: cond}, component.Env{})
	f := v.(pipeline.Processor)
	body := []byte(`{"level":"info","b":{"y":1,"x":2},"note":"` + strings.Repeat("n", 300) + `"}`)
	want, _ := expr.PatchObject(body, nil, nil)
	o := expr.ScanObject(body)
	m := pipeline.NewMessage(body, nil)
	m.SetDecoded(o)
	if out, err := f.Process(context.Background(), m); out != nil || err != nil {
		t.Fatalf("Process = %v, %v, want the message dropped", out, err)
	}
	other := []byte(`{"level":"debug","z":0,"note":"` + strings.Repeat("o", 300) + `"}`)
	for range 3 { // a released scan would be reused by these
		if _, err := f.Process(context.Background(), pipeline.NewMessage(other, nil)); err != nil {
			t.Fatal(err)
		}
	}
	if got, ok := o.Patch(nil, nil); !ok || !bytes.Equal(got, want) {
		t.Errorf("cached scan after the drop patches to %q, %v, want %q", got, ok, want)
	}
}

// A filter that keeps a message leaves its scan on it, for the next stage.
func TestFilterKeepingAMessageCachesItsScan(t *testing.T) {
	cond, err := expr.Compile(`msg.level == "error"`)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := newFilter(&filterConfig{Condition: cond}, component.Env{})
	body := []byte(`{"level":"error","note":"` + strings.Repeat("n", 300) + `"}`) // large enough to keep
	m, err := v.(pipeline.Processor).Process(context.Background(), pipeline.NewMessage(body, nil))
	if err != nil || m == nil {
		t.Fatalf("Process = %v, %v, want the message kept", m, err)
	}
	if _, ok := m.Decoded().(*expr.Object); !ok {
		t.Errorf("Decoded() = %T, want the filter's *expr.Object", m.Decoded())
	}
}
