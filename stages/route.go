package stages

import (
	"context"
	"errors"
	"fmt"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/pipeline"
)

// RouteDefault is the output port of messages no case matched.
const RouteDefault = "default"

type routeCase struct {
	Name string        `pipe:"name,required" desc:"Output port of this case; a graph node reads it with inputs: [ROUTER.NAME]." example:"errors"`
	When *expr.Program `pipe:"when,required" result:"bool" desc:"CEL predicate over msg, meta and raw; the first case that holds takes the message." example:"msg.level == \"error\""`
}

type routeConfig struct {
	Cases []routeCase `pipe:"cases,required" desc:"Cases tried in order; the first match sends the message to its port, no match sends it to the default port. A port nothing reads drops the message as unrouted." example:"[{name: errors, when: 'msg.level == \"error\"'}]"`
}

func init() {
	component.Register(component.Stage("route",
		"Sends each message to the output port of the first case whose CEL condition holds, else to the default port (graph form).",
		routeConfig{}, newRoute, component.WithBatching(component.BatchesReject)))
}

// route sends each message to one named output port.
//
//	in      -- a(error) -- b(info) -- c(warn) --
//	          [ errors: level == "error", infos: level == "info" ]
//	errors  -- a -------------------------------
//	infos   ------------- b ---------------------
//	default ------------------------- c ---------
type route struct {
	cases []routeCase
	ports []string
}

var (
	_ pipeline.Stage  = (*route)(nil)
	_ pipeline.Router = (*route)(nil)
)

func newRoute(c *routeConfig, _ component.Env) (any, error) {
	if len(c.Cases) == 0 {
		return nil, errors.New("needs at least one case")
	}
	r := &route{cases: c.Cases}
	seen := map[string]bool{RouteDefault: true}
	for i, rc := range c.Cases {
		switch {
		case rc.Name == RouteDefault:
			return nil, fmt.Errorf("cases[%d]: %q is the port of unmatched messages; name the case otherwise", i, RouteDefault)
		case !portName(rc.Name):
			return nil, fmt.Errorf("cases[%d]: name %q must be letters, digits, '_' or '-'", i, rc.Name)
		case seen[rc.Name]:
			return nil, fmt.Errorf("cases[%d]: duplicate name %q", i, rc.Name)
		}
		seen[rc.Name] = true
		r.ports = append(r.ports, rc.Name)
	}
	r.ports = append(r.ports, RouteDefault)
	return r, nil
}

// Ports returns the case names in order, then "default".
func (r *route) Ports() []string { return r.ports }

// Run routes every input message until in closes or the hard stop.
func (r *route) Run(ctx context.Context, in <-chan *pipeline.Message, out pipeline.Outlet) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-in:
			if !ok {
				return nil
			}
			port, err := r.match(m)
			if err != nil {
				out.Fail(ctx, m, err)
				continue
			}
			if out.SendTo(ctx, port, m) != nil {
				return nil
			}
		}
	}
}

// match returns the port of the first case that holds for m.
func (r *route) match(m *pipeline.Message) (string, error) {
	if m.Batch() != nil {
		return "", errBatch("route")
	}
	in := input(m)
	defer keepDecoded(m, &in)
	for _, c := range r.cases {
		ok, err := c.When.EvalBool(&in)
		if err != nil {
			return "", evalError(fmt.Errorf("case %s: %w", c.Name, err))
		}
		if ok {
			return c.Name, nil
		}
	}
	return RouteDefault, nil
}

func portName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
