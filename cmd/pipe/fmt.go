package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/pipe-dsl/pipe/dsl"
)

// cmdFmt prints pipeline files in canonical form, or rewrites them (-w),
// or lists the ones that are not (-l). A file that does not parse is
// reported with its position and makes the exit code 2.
func cmdFmt(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fmt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	write := fs.Bool("w", false, "write the result to the file instead of stdout")
	list := fs.Bool("l", false, "list files whose formatting differs")
	files, err := parseInterspersed(fs, args)
	if err != nil || len(files) == 0 {
		if err == nil {
			fmt.Fprintln(stderr, "usage: pipe fmt [-l] [-w] FILE...")
		}
		return exitConfig
	}
	code := exitOK
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			fmt.Fprintf(stderr, "pipe fmt: %v\n", err)
			code = exitConfig
			continue
		}
		out, err := dsl.Format(file, src)
		if err != nil {
			reportConfigError(stderr, file, err)
			code = exitConfig
			continue
		}
		same := bytes.Equal(src, out)
		if *list && !same {
			fmt.Fprintln(stdout, file)
		}
		if *write && !same {
			if err := os.WriteFile(file, out, 0o644); err != nil {
				fmt.Fprintf(stderr, "pipe fmt: %v\n", err)
				code = exitConfig
			}
		}
		if !*list && !*write {
			stdout.Write(out)
		}
	}
	return code
}
