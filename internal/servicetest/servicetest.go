// Package servicetest holds the rule every test of a real service follows
// (Redis, PostgreSQL, brokers on 127.0.0.1): skip with the reason when the
// service is down, fail instead under PIPE_REQUIRE_SERVICES=1 (as in CI).
// Only tests import it.
package servicetest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Unavailable ends a test whose service (e.g. "Redis on 127.0.0.1:6379")
// could not be reached: it skips, or fails when PIPE_REQUIRE_SERVICES=1.
func Unavailable(t testing.TB, service string, err error) {
	t.Helper()
	if os.Getenv("PIPE_REQUIRE_SERVICES") == "1" {
		t.Fatalf("%s is required (PIPE_REQUIRE_SERVICES=1): %v", service, err)
	}
	t.Skipf("%s is not reachable: %v (PIPE_REQUIRE_SERVICES=1 makes this a failure)", service, err)
}

// RunWithPipe builds the pipe binary once into a temporary directory, sets
// *bin to its path, runs m and removes it: the TestMain of packages that
// start real `pipe run` processes. It exits the process with m's code.
func RunWithPipe(m *testing.M, bin *string) {
	dir, err := os.MkdirTemp("", "pipe-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		os.Exit(1)
	}
	*bin = filepath.Join(dir, "pipe")
	build := exec.Command("go", "build", "-o", *bin, "github.com/pipe-dsl/pipe/cmd/pipe")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build pipe:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
