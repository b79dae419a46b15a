package nats

import (
	"context"
	"strings"
	"testing"
)

func TestSinkCheckRefusesURLsThatDoNotParseWithoutShowingThem(t *testing.T) {
	for _, tc := range []struct {
		url, want string
	}{
		{"", ""},
		{"nats://127.0.0.1:4222", ""},
		{"127.0.0.1:4222, nats://127.0.0.1:4223", ""},
		{"nats://u:hunter2@127.0.0.1:42x22", "server 1 does not parse"},
		{"nats://127.0.0.1:4222,nats://:4222", "server 2 does not parse"},
		{"nats://hunter2 secret@host:4222", "server 1 does not parse"},
	} {
		s := &sink{cfg: sinkConfig{URL: tc.url}}
		err := s.Check(context.Background())
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("Check(%q) = %v, want nil", tc.url, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("Check(%q) = %v, want %q", tc.url, err, tc.want)
		case err != nil && strings.Contains(err.Error(), "hunter2"):
			t.Errorf("Check(%q) = %v shows the URL", tc.url, err)
		}
	}
}
