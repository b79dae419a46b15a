// Command pipe runs and checks stream-processing pipelines declared in YAML.
//
//	pipe run FILE         run a pipeline until its source ends or SIGINT/SIGTERM
//	pipe validate FILE... check pipeline files and report every problem
//	pipe test FILE...     run pipeline tests written in YAML
//	pipe graph FILE       draw a pipeline as Mermaid or Graphviz dot
//	pipe tap NODE         print the messages leaving a node of a running pipeline
//	pipe top              show a running pipeline's live table in the terminal
//	pipe fmt FILE...      print pipeline files in canonical form (-w rewrites)
//	pipe kinds [NAME...]  list or describe the source, stage and sink kinds
//	pipe schema           print the JSON Schema of pipeline files
//	pipe version          print the version
//	pipe help             show usage
//
// Exit codes: 0 success, 1 run-time failure, 2 invalid configuration or usage.
package main

import (
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const (
	exitOK      = 0
	exitRuntime = 1
	exitConfig  = 2
)

const usage = `pipe runs stream-processing pipelines declared in YAML.

Usage:
  pipe run [flags] FILE       run a pipeline (SIGINT/SIGTERM drains, a second one aborts)
  pipe validate FILE...       check pipeline files; report every problem with file:line:col
  pipe test [-v] [-run TEXT] FILE...
                              run pipeline tests (*_test.yaml) on a virtual clock
  pipe graph [--format mermaid|dot] FILE
                              draw a pipeline (Mermaid by default)
  pipe tap [--addr ADDR] [-n N] [--filter CEL] NODE[.port]
                              print messages leaving a node of pipe run --http, as NDJSON
  pipe top [--addr ADDR] [--sort rate|errors]
                              live table of a pipe run --http pipeline in the terminal
  pipe fmt [-l] [-w] FILE...  format pipeline files, keeping comments
  pipe kinds [NAME...]        list source, stage and sink kinds, or describe some
  pipe schema                 print the JSON Schema of pipeline files (for editors)
  pipe version                print the version
  pipe help                   show this help

Run 'pipe run -h' for the flags of run.
Exit codes: 0 success, 1 run-time failure, 2 invalid configuration or usage.
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitConfig
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "test":
		return cmdTest(args[1:], stdout, stderr)
	case "graph":
		return cmdGraph(args[1:], stdout, stderr)
	case "tap":
		return cmdTap(args[1:], stdout, stderr)
	case "top":
		return cmdTop(args[1:], os.Stdin, stdout, stderr)
	case "fmt":
		return cmdFmt(args[1:], stdout, stderr)
	case "kinds":
		return cmdKinds(args[1:], stdout, stderr)
	case "schema":
		return cmdSchema(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintf(stdout, "pipe %s\n", version)
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "pipe: unknown command %q\n\n%s", args[0], usage)
	return exitConfig
}
