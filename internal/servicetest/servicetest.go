// Package servicetest holds the rule every test of a real service follows
// (Redis, PostgreSQL, brokers on 127.0.0.1): skip with the reason when the
// service is down, fail instead under PIPE_REQUIRE_SERVICES=1 (as in CI).
// Only tests import it.
package servicetest

import (
	"os"
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
