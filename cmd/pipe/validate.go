package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/pipe-dsl/pipe/dsl"
)

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: pipe validate FILE...")
		return exitConfig
	}
	code := exitOK
	for _, file := range args {
		if _, err := dsl.Load(file, nil); err != nil {
			reportConfigError(stderr, file, err)
			code = exitConfig
			continue
		}
		fmt.Fprintf(stdout, "%s: ok\n", file)
	}
	return code
}

// reportConfigError renders positioned errors with their source lines.
func reportConfigError(w io.Writer, file string, err error) {
	var errs dsl.Errors
	if errors.As(err, &errs) {
		src, _ := os.ReadFile(file)
		errs.Render(w, map[string][]byte{file: src})
		return
	}
	fmt.Fprintf(w, "%s: %v\n", file, err)
}
