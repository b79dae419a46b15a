//go:build crash

package crash

// With -tags crash (make crash), each test windows 100,000 messages.
func init() { defaultN = 100_000 }
