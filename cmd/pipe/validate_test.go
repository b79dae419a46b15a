package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/pipe-dsl/pipe/dsl"
)

// Given a 100 MiB pipeline file, when validate refuses it, then reading,
// refusing and rendering the error together allocate O(1 MiB), not the
// file's size (they took 2.2 GB).
func TestAnOversizeConfigIsRefusedInBoundedMemory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "huge.yaml")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("name: huge\nsource: {stdin: {}}\nsink: {stdout: {}}\n# "); err != nil {
		t.Fatal(err)
	}
	const size = 100 << 20
	if err := f.Truncate(size); err != nil { // sparse: costs no disk
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// The least of three runs: other goroutines of the test binary
	// allocate too, and TotalAlloc counts them.
	allocated := ^uint64(0)
	for range 3 {
		var stdout, stderr bytes.Buffer
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		code := cmdValidate([]string{file}, &stdout, &stderr)
		runtime.ReadMemStats(&after)
		if code != exitConfig || !strings.Contains(stderr.String(), "pipeline file is too large: 104857600 bytes") {
			t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
		}
		allocated = min(allocated, after.TotalAlloc-before.TotalAlloc)
	}
	t.Logf("refusing a %d MiB file allocated %.1f MiB", size>>20, float64(allocated)/(1<<20))
	if limit := uint64(16 * dsl.MaxDocumentSize); allocated > limit {
		t.Errorf("allocated %d bytes, want at most %d (16 x the 1 MiB document limit)", allocated, limit)
	}
}
