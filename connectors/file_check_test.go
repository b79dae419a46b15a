package connectors

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestFileSinkCheckRefusesPathsItCannotWrite(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "plain")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, want string
	}{
		{"/proc/x/y", "path /proc/x/y: directory /proc/x: no such file or directory"},
		{filepath.Join(notDir, "out.ndjson"), "is not a directory"},
		{dir, "is a directory"},
		{filepath.Join(dir, "new.ndjson"), ""},
		{notDir, ""},
		{fifo, ""}, // checked without opening: an open would block
	} {
		s := &fileSink{cfg: fileSinkConfig{Path: tc.path}}
		err := s.Check(context.Background())
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("Check(%s) = %v, want nil", tc.path, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("Check(%s) = %v, want an error containing %q", tc.path, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "new.ndjson")); err == nil {
		t.Error("Check created the file")
	}
}
