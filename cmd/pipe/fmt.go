package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/pipe-dsl/pipe/dsl"
)

// cmdFmt prints pipeline files in canonical form, or rewrites them (-w),
// or lists the ones that are not (-l). A directory stands for the .yaml
// and .yml files under it. A file that does not parse is reported with its
// position and makes the exit code 2.
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
	files, err = expandDirs(files)
	if err != nil {
		fmt.Fprintf(stderr, "pipe fmt: %v\n", err)
		code = exitConfig
	}
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

// expandDirs replaces each directory in paths by the YAML files under it,
// in lexical order; other paths stay as they are.
func expandDirs(paths []string) ([]string, error) {
	var out []string
	var errs []error
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil || !st.IsDir() {
			out = append(out, p) // reading it reports the error
			continue
		}
		errs = append(errs, filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if ext := filepath.Ext(path); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
				out = append(out, path)
			}
			return nil
		}))
	}
	return out, errors.Join(errs...)
}
