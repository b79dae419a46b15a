package httpserver

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/pipeline/pipelinetest"
)

// postAnswer POSTs body and decodes the JSON answer.
func postAnswer(t *testing.T, url, body string) (int, answer) {
	t.Helper()
	code, b := post(t, url, body)
	var a answer
	if err := json.Unmarshal([]byte(b), &a); err != nil {
		t.Fatalf("answer %d %q is not JSON: %v", code, b, err)
	}
	return code, a
}

func TestAnswerNamesTheLinesNotTaken(t *testing.T) {
	failBad := func(reason string) func(m *pipeline.Message) error {
		return func(m *pipeline.Message) error {
			if strings.Contains(string(m.Body), "bad") {
				return pipeline.WithReason(reason, errors.New("no good"))
			}
			return nil
		}
	}
	for _, tc := range []struct {
		name     string
		fail     func(*pipeline.Message) error
		body     string
		code     int
		accepted int
		rejected [][2]int
		sink     []string
	}{
		{"a line that is not JSON refuses the request", nil,
			"{\"a\":1}\nnot json\n{\"a\":3}\n", http.StatusBadRequest, 0, [][2]int{{1, 3}}, nil},
		{"lines the payload failed are 422", failBad(pipeline.ReasonInvalidPayload),
			"{\"a\":1}\n{\"bad\":2}\n\n{\"bad\":3}\n{\"a\":4}\n{\"bad\":5}", http.StatusUnprocessableEntity, 2, [][2]int{{2, 4}, {6, 6}},
			[]string{`{"a":1}`, `{"a":4}`}},
		{"lines the sink failed are 500", failBad(pipeline.ReasonSinkError),
			"{\"a\":1}\n{\"bad\":2}\n", http.StatusInternalServerError, 1, [][2]int{{2, 2}}, []string{`{"a":1}`}},
		{"all delivered is 200", nil,
			"{\"a\":1}\n{\"a\":2}\n", http.StatusOK, 2, nil, []string{`{"a":1}`, `{"a":2}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := &pipelinetest.Sink{Fail: tc.fail}
			s := start(t, func(c *config) { c.Framing = "ndjson" }, opts{sink: sink})
			code, a := postAnswer(t, s.url, tc.body)
			if code != tc.code || a.Accepted != tc.accepted || !slices.Equal(a.Rejected, tc.rejected) {
				t.Errorf("POST = %d %+v, want %d accepted %d rejected %v", code, a, tc.code, tc.accepted, tc.rejected)
			}
			var got []string
			for _, b := range sink.Bodies() {
				if !strings.Contains(b, "bad") {
					got = append(got, b)
				}
			}
			if !slices.Equal(got, tc.sink) {
				t.Errorf("sink delivered %q, want %q", got, tc.sink)
			}
		})
	}
}

// TestBackpressureRefusesOnlyRequestsWithNothingTaken: Given a pipeline
// with room for one message, when a 3-line request gets its first line in
// and then waits longer than accept_timeout, then it is not answered 429
// (its first line is in the pipeline) but 200 once there is room, while a
// request that cannot get any line in is answered 429 and none of it is
// delivered.
func TestBackpressureRefusesOnlyRequestsWithNothingTaken(t *testing.T) {
	sink := &pipelinetest.Sink{Gate: make(chan struct{}), Entered: make(chan struct{}, 8)}
	s := start(t, func(c *config) {
		c.Framing = "ndjson"
		c.AcceptTimeout = 20 * time.Millisecond
	}, opts{sink: sink, buffer: 1})
	type reply struct {
		code int
		a    answer
	}
	first := make(chan reply, 1)
	go func() {
		code, b, err := send(s.url, "{\"r\":1}\n{\"r\":1}\n{\"r\":1}")
		var a answer
		if err == nil {
			err = json.Unmarshal([]byte(b), &a)
		}
		if err != nil {
			t.Error(err)
		}
		first <- reply{code, a}
	}()
	<-sink.Entered // line 1 is in the sink
	waitFor(t, "line 2 in the sink's buffer", func() bool { return s.stats("out").In == 2 })
	// Line 3 waits for room, and so will the next request.
	code, a := postAnswer(t, s.url, `{"r":2}`)
	if code != http.StatusTooManyRequests || a.Accepted != 0 {
		t.Errorf("POST while full = %d %+v, want 429 with nothing accepted", code, a)
	}
	select {
	case r := <-first:
		t.Fatalf("3-line request answered %d %+v while its lines were still in the pipeline", r.code, r.a)
	default:
	}
	close(sink.Gate)
	if r := <-first; r.code != http.StatusOK || r.a.Accepted != 3 {
		t.Fatalf("3-line request = %d %+v, want 200 accepted 3", r.code, r.a)
	}
	if got, want := sink.Bodies(), []string{`{"r":1}`, `{"r":1}`, `{"r":1}`}; !slices.Equal(got, want) {
		t.Fatalf("sink got %q, want %q (nothing of the 429 request)", got, want)
	}
	// The source's out count is what entered the pipeline: not the 429.
	if out := s.stats("in").Out; out != 3 {
		t.Fatalf("source out = %d, want 3 (the request answered 429 sent nothing)", out)
	}
}
