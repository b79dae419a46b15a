package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/pipeline"
)

var roles = []pipeline.Role{pipeline.RoleSource, pipeline.RoleStage, pipeline.RoleSink}

// cmdGraph prints a pipeline file as a Mermaid or dot graph.
func cmdGraph(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("graph", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", dsl.GraphMermaid, "output format: mermaid or dot")
	files, err := parseInterspersed(fs, args)
	if err != nil || len(files) != 1 {
		if err == nil {
			fmt.Fprintln(stderr, "usage: pipe graph [--format mermaid|dot] FILE")
		}
		return exitConfig
	}
	file := files[0]
	// Values from the environment are never drawn, so an unset variable
	// (a token on a laptop) need not stop the drawing.
	lookup := func(k string) (string, bool) {
		if v, ok := os.LookupEnv(k); ok {
			return v, true
		}
		return "unset", true
	}
	c, err := dsl.ParseFile(file, &dsl.Options{Lookup: lookup})
	if err != nil {
		reportConfigError(stderr, file, err)
		return exitConfig
	}
	out, err := dsl.Graph(c, nil, *format)
	if err != nil {
		fmt.Fprintf(stderr, "pipe graph: %v\n", err)
		return exitConfig
	}
	fmt.Fprint(stdout, out)
	return exitOK
}

// parseInterspersed parses flags that may come before or after the file
// arguments (`pipe graph FILE --format dot`) and returns the files. "--"
// ends flag parsing.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(files, rest...), nil
		}
		if len(rest) == 0 {
			return files, nil
		}
		files = append(files, rest[0])
		args = rest[1:]
	}
}

// cmdSchema prints the JSON Schema of pipeline files.
func cmdSchema(args []string, stdout, stderr io.Writer) int {
	if len(args) != 0 {
		fmt.Fprintln(stderr, "usage: pipe schema")
		return exitConfig
	}
	stdout.Write(dsl.Schema(nil))
	return exitOK
}

// cmdKinds lists the registered kinds, or describes the named ones.
func cmdKinds(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kinds", flag.ContinueOnError)
	fs.SetOutput(stderr)
	markdown := fs.Bool("markdown", false, "print the full reference as Markdown (docs/kinds.md)")
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	reg := component.Default
	if *markdown {
		writeMarkdown(stdout, reg)
		return exitOK
	}
	if fs.NArg() == 0 {
		for _, r := range roles {
			fmt.Fprintf(stdout, "%ss:\n", r)
			for _, k := range reg.Kinds(r) {
				fmt.Fprintf(stdout, "  %-16s %s\n", k.Name, k.Summary)
			}
		}
		fmt.Fprintln(stdout, "policy blocks (keys of any sink or stage):")
		for _, k := range dsl.Policies() {
			fmt.Fprintf(stdout, "  %-16s %s\n", k.Name, k.Summary)
		}
		fmt.Fprintln(stdout, "\nRun 'pipe kinds NAME' for a kind's or policy block's fields.")
		return exitOK
	}
	code := exitOK
	for _, name := range fs.Args() {
		found := false
		for _, r := range roles {
			if k, ok := reg.Lookup(r, name); ok {
				found = true
				describe(stdout, k)
			}
		}
		for _, k := range dsl.Policies() {
			if k.Name == name {
				found = true
				describePolicy(stdout, k)
			}
		}
		if !found {
			fmt.Fprintf(stderr, "pipe kinds: no kind %q\n", name)
			code = exitConfig
		}
	}
	return code
}

func describe(w io.Writer, k *component.Kind) {
	fmt.Fprintf(w, "%s (%s): %s\n", k.Name, k.Role, k.Summary)
	if k.Shorthand != "" {
		fmt.Fprintf(w, "  shorthand: `%s: VALUE` sets %s\n", k.Name, k.Shorthand)
	}
	describeFields(w, k.Fields, "  ")
}

// describePolicy describes a policy block: a key that any sink or stage
// takes beside its kind, e.g. `sink: {http: {...}, retry: {...}}`.
func describePolicy(w io.Writer, k *component.Kind) {
	fmt.Fprintf(w, "%s (policy block of any sink or stage): %s\n", k.Name, k.Summary)
	if k.Shorthand != "" && len(k.Fields) > 1 {
		fmt.Fprintf(w, "  shorthand: `%s: VALUE` sets %s\n", k.Name, k.Shorthand)
	}
	describeFields(w, k.Fields, "  ")
}

func describeFields(w io.Writer, fields []component.Field, indent string) {
	for _, f := range fields {
		fmt.Fprintf(w, "%s%s (%s)%s\n", indent, f.Name, fieldType(f), flags(f))
		fmt.Fprintf(w, "%s    %s\n", indent, f.Description)
		if f.Default != "" && !f.Secret {
			fmt.Fprintf(w, "%s    default: %s\n", indent, f.Default)
		}
		if f.Example != "" {
			fmt.Fprintf(w, "%s    example: %s\n", indent, f.Example)
		}
		describeFields(w, f.Fields, indent+"    ")
	}
}

func fieldType(f component.Field) string {
	switch {
	case len(f.Enum) > 0:
		return strings.Join(f.Enum, "|")
	case f.Elem != "":
		return f.Type + " of " + f.Elem
	case len(f.Result) > 0:
		return f.Type + " (" + strings.Join(f.Result, "|") + ")"
	}
	return f.Type
}

func flags(f component.Field) string {
	var s []string
	if f.Required {
		s = append(s, "required")
	}
	if f.Secret {
		s = append(s, "secret")
	}
	if f.Min != nil {
		s = append(s, fmt.Sprintf("min %g", *f.Min))
	}
	if f.Max != nil {
		s = append(s, fmt.Sprintf("max %g", *f.Max))
	}
	if len(s) == 0 {
		return ""
	}
	return ", " + strings.Join(s, ", ")
}

// writeMarkdown writes the kinds reference checked in as docs/kinds.md.
func writeMarkdown(w io.Writer, reg *component.Registry) {
	fmt.Fprint(w, "# Kinds reference\n\nGenerated by `make docs` (`pipe kinds --markdown`) from the registry the compiler validates against. Do not edit.\n")
	for _, r := range roles {
		fmt.Fprintf(w, "\n## %ss\n", strings.ToUpper(r.String()[:1])+r.String()[1:])
		for _, k := range reg.Kinds(r) {
			fmt.Fprintf(w, "\n### `%s`\n\n%s\n", k.Name, k.Summary)
			if k.Shorthand != "" {
				fmt.Fprintf(w, "\nShorthand: `%s: VALUE` sets `%s`.\n", k.Name, k.Shorthand)
			}
			if len(k.Fields) == 0 {
				fmt.Fprint(w, "\nNo fields: write `"+k.Name+": {}`.\n")
				continue
			}
			fmt.Fprint(w, "\n| field | type | default | description |\n|---|---|---|---|\n")
			markdownFields(w, k.Fields, "")
		}
	}
	fmt.Fprint(w, "\n## Policy blocks\n\nKeys any sink or stage takes beside its kind, e.g. `sink: {http: {...}, retry: {...}}`; applied as retry(breaker(timeout(call))).\n")
	for _, k := range dsl.Policies() {
		fmt.Fprintf(w, "\n### `%s`\n\n%s\n", k.Name, k.Summary)
		if k.Shorthand != "" && len(k.Fields) > 1 {
			fmt.Fprintf(w, "\nShorthand: `%s: VALUE` sets `%s`.\n", k.Name, k.Shorthand)
		}
		fmt.Fprint(w, "\n| field | type | default | description |\n|---|---|---|---|\n")
		markdownFields(w, k.Fields, "")
	}
}

func markdownFields(w io.Writer, fields []component.Field, prefix string) {
	cell := strings.NewReplacer("|", `\|`, "\n", " ")
	for _, f := range fields {
		def := f.Default
		if f.Secret {
			def = ""
		}
		if def != "" {
			def = "`" + def + "`"
		}
		desc := f.Description
		if f.Example != "" {
			desc += " Example: `" + f.Example + "`."
		}
		fmt.Fprintf(w, "| `%s%s` | %s%s | %s | %s |\n", prefix, f.Name, cell.Replace(fieldType(f)), flags(f), def, cell.Replace(desc))
		markdownFields(w, f.Fields, prefix+f.Name+".")
	}
}
