package main

import (
	"os"
	"strings"
	"testing"
)

func TestFmtFlags(t *testing.T) {
	messy := "# orders\nname: x   # the name\nsource:\n    generate: {count: 1}\n\n\n\nsink:\n        stdout: {}\n"
	const want = "# orders\nname: x # the name\nsource:\n  generate: {count: 1}\n\nsink:\n  stdout: {}\n"
	file := writeFile(t, "messy.yaml", messy)
	if code, out, stderr := runCLI("fmt", file); code != exitOK || out != want {
		t.Errorf("pipe fmt = %d, %q\n%s\nwant\n%s", code, stderr, out, want)
	}
	if code, out, _ := runCLI("fmt", "-l", file); code != exitOK || out != file+"\n" {
		t.Errorf("pipe fmt -l = %d, %q, want the file listed", code, out)
	}
	if code, out, _ := runCLI("fmt", "-w", file); code != exitOK || out != "" {
		t.Errorf("pipe fmt -w = %d, %q, want no output", code, out)
	}
	if got, _ := os.ReadFile(file); string(got) != want {
		t.Errorf("after -w the file holds\n%s\nwant\n%s", got, want)
	}
	if code, out, _ := runCLI("fmt", "-l", file); code != exitOK || out != "" {
		t.Errorf("pipe fmt -l on a formatted file = %d, %q, want nothing listed", code, out)
	}
	bad := writeFile(t, "bad.yaml", "name: x\nsource: {generate: {count: 1}\nsink: {}\n")
	code, _, stderr := runCLI("fmt", bad)
	if code != exitConfig || !strings.Contains(stderr, "bad.yaml:") {
		t.Errorf("parse error: exit %d, stderr %q; want %d and a file:line position", code, stderr, exitConfig)
	}
	if code, _, _ := runCLI("fmt"); code != exitConfig {
		t.Errorf("no file: exit %d, want %d", code, exitConfig)
	}
}

// Whatever parses formats to a document with the same values, and
// formatting that output again changes nothing.

// The repository's own examples are in canonical form: `pipe fmt -l
// pipelines/` (a directory stands for the YAML files under it) lists none.
func TestTheExamplePipelinesAreFormatted(t *testing.T) {
	code, out, stderr := runCLI("fmt", "-l", "../../pipelines/")
	if code != exitOK || out != "" {
		t.Errorf("pipe fmt -l pipelines/ = %d, stderr %q; lists:\n%s", code, stderr, out)
	}
	dir := t.TempDir()
	messy := writeFile(t, "messy.yaml", "name:   x\nsource: {stdin: {}}\nsink: {drop: {}}\n")
	if err := os.Rename(messy, dir+"/messy.yaml"); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := runCLI("fmt", "-l", dir); code != exitOK || out != dir+"/messy.yaml\n" {
		t.Errorf("pipe fmt -l DIR = %d, %q, want the messy file listed", code, out)
	}
}
