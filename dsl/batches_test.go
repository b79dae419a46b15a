package dsl_test

import (
	"strings"
	"testing"

	"github.com/pipe-dsl/pipe/dsl"
)

// compileBatchErr compiles src and returns the error text, "" when it compiled.
func compileBatchErr(t *testing.T, src string) string {
	t.Helper()
	c, err := dsl.Parse("p.yaml", []byte(src), nil)
	if err == nil {
		_, err = dsl.Compile(c, nil)
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestCompileRejectsSingleMessageStagesAfterABatch(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{{
		name: "filter after batch, linear form",
		src: `
source: {generate: {count: 1, message: '{"a": 1}'}}
stages:
  - batch: {size: 10}
  - filter: msg.a == 1
sink: {stdout: {}}
`,
		want: `p.yaml:5:5: filter "filter" takes single messages, but batch "batch" upstream (p.yaml:4:5) emits batches: place filter before the batch stage`,
	}, {
		name: "map two hops after batch, graph form",
		src: `
sources:
  in: {generate: {count: 1, message: '{"a": 1}'}}
stages:
  b: {batch: {size: 10}, inputs: [in]}
  m: {map: '{"x": 1}', inputs: [b]}
sinks:
  out: {stdout: {}, inputs: [m]}
`,
		want: `p.yaml:6:7: map "m" takes single messages, but batch "b" upstream (p.yaml:5:3) emits batches: place map before the batch stage`,
	}, {
		name: "route after batch",
		src: `
sources:
  in: {generate: {count: 1, message: '{"a": 1}'}}
stages:
  b: {batch: {size: 10}, inputs: [in]}
  r: {route: {cases: [{name: one, when: 'msg.a == 1'}]}, inputs: [b]}
sinks:
  out: {stdout: {}, inputs: [r.one]}
`,
		want: `route "r" takes single messages`,
	}, {
		name: "batch after batch",
		src: `
source: {generate: {count: 1, message: '{"a": 1}'}}
stages:
  - batch: {size: 10}
  - batch: {size: 10}
sink: {stdout: {}}
`,
		want: `batch "batch_2" takes single messages`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			if got := compileBatchErr(t, tc.src); !strings.Contains(got, tc.want) {
				t.Fatalf("Compile error =\n%s\nwant it to contain\n%s", got, tc.want)
			}
		})
	}
}

func TestCompileAcceptsStagesBeforeABatchAndSinksAfterIt(t *testing.T) {
	src := `
sources:
  in: {generate: {count: 1, message: '{"a": 1}'}}
stages:
  f: {filter: 'msg.a == 1', inputs: [in]}
  b: {batch: {size: 10, max_wait: 50ms}, inputs: [f]}
sinks:
  out: {stdout: {}, inputs: [b]}
  raw: {stdout: {}, inputs: [in]}
`
	if got := compileBatchErr(t, src); got != "" {
		t.Fatalf("Compile = %s", got)
	}
}

func TestCompileConnectsRoutePorts(t *testing.T) {
	const head = `
sources:
  in: {generate: {count: 1, message: '{"level": "error"}'}}
stages:
  router:
    route:
      cases:
        - {name: errors, when: 'msg.level == "error"'}
        - {name: warnings, when: 'msg.level == "warn"'}
    inputs: [in]
sinks:
`
	for _, tc := range []struct {
		name, sinks, want string
	}{{
		name: "named ports and default",
		sinks: `
  e: {stdout: {}, inputs: [router.errors]}
  w: {stdout: {}, inputs: [router.warnings]}
  rest: {stdout: {}, inputs: [router.default]}
`,
	}, {
		name: "one port read twice (broadcast)",
		sinks: `
  e1: {stdout: {}, inputs: [router.errors]}
  e2: {stdout: {}, inputs: [router.errors]}
`,
	}, {
		name:  "unknown port",
		sinks: "\n  e: {stdout: {}, inputs: [router.eror]}\n",
		want:  `p.yaml:13:28: connect: node "router" has no output port "eror"`,
	}, {
		name:  "no port",
		sinks: "\n  e: {stdout: {}, inputs: [router]}\n",
		want:  `p.yaml:13:28: connect: "router" sends only to named ports; read one as router.PORT (ports: errors, warnings, default)`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := compileBatchErr(t, head+tc.sinks)
			if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
				t.Fatalf("Compile error =\n%s\nwant %q", got, tc.want)
			}
		})
	}
}

func TestCompileRejectsBadRouteCases(t *testing.T) {
	for _, tc := range []struct{ cases, want string }{
		{`[{name: default, when: 'true'}]`, `"default" is the port of unmatched messages`},
		{`[{name: a, when: 'true'}, {name: a, when: 'false'}]`, `duplicate name "a"`},
		{`[{name: "a.b", when: 'true'}]`, `must be letters, digits`},
		{`[{name: a, when: 'msg.'}]`, `route.cases[0].when`},
		{`[]`, `needs at least one case`},
	} {
		src := `
source: {generate: {count: 1, message: '{}'}}
stages:
  - route: {cases: ` + tc.cases + `}
sink: {stdout: {}}
`
		if got := compileBatchErr(t, src); !strings.Contains(got, tc.want) {
			t.Errorf("cases %s: Compile error =\n%s\nwant it to contain %q", tc.cases, got, tc.want)
		}
	}
}
