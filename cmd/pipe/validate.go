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
		errs.Render(w, map[string][]byte{file: readSource(file)})
		return
	}
	fmt.Fprintf(w, "%s: %v\n", file, err)
}

// readSource reads at most the first dsl.MaxDocumentSize bytes of file, for
// quoting source lines: a larger file was refused as a whole (at 1:1), so
// showing its errors costs no more than the limit, however large it is.
func readSource(file string) []byte {
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	src, _ := io.ReadAll(io.LimitReader(f, int64(dsl.MaxDocumentSize)))
	return src
}
