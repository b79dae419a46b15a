package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/pipe-dsl/pipe/pipetest"
)

// cmdTest runs pipeline test files and reports in go test style.
func cmdTest(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	verbose := fs.Bool("v", false, "print every test, not only failures")
	run := fs.String("run", "", "only run tests whose name contains this text")
	files, err := parseInterspersed(fs, args)
	if err != nil || len(files) == 0 {
		if err == nil {
			fmt.Fprintln(stderr, "usage: pipe test [-v] [-run TEXT] FILE...")
		}
		return exitConfig
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	passed, failed, code := 0, 0, exitOK
	for _, file := range files {
		results, err := pipetest.RunFile(ctx, file, pipetest.Options{Filter: *run})
		if err != nil {
			reportConfigError(stderr, file, err)
			code = exitConfig
			continue
		}
		for _, r := range results {
			secs := r.Elapsed.Seconds()
			if len(r.Failures) == 0 {
				passed++
				if *verbose {
					fmt.Fprintf(stdout, "--- PASS: %s (%.2fs)\n", r.Name, secs)
				}
				continue
			}
			failed++
			fmt.Fprintf(stdout, "--- FAIL: %s (%.2fs)\n", r.Name, secs)
			for _, f := range r.Failures {
				fmt.Fprintf(stdout, "    %s:%d: %s\n", file, r.Line, strings.ReplaceAll(strings.TrimRight(f, "\n"), "\n", "\n    "))
			}
		}
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", passed, failed)
	if failed > 0 && code == exitOK {
		code = exitRuntime
	}
	return code
}
