package dsl

import (
	"reflect"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/expr"
	"github.com/pipe-dsl/pipe/internal/backoff"
	"github.com/pipe-dsl/pipe/pipeline"
	"github.com/pipe-dsl/pipe/resilience"
)

// retryConfig is the `retry:` key of a sink or stage.
type retryConfig struct {
	MaxAttempts int           `pipe:"max_attempts" desc:"Attempts in all, the first included." example:"5" min:"1"`
	BaseDelay   time.Duration `pipe:"base_delay" desc:"Wait after the first failure, before jitter." example:"200ms" min:"0"`
	MaxDelay    time.Duration `pipe:"max_delay" desc:"Cap on any wait, before jitter." example:"30s" min:"0"`
	Multiplier  float64       `pipe:"multiplier" desc:"Factor the wait grows by after each further failure; 1 keeps it constant." example:"1.5" min:"1"`
	Jitter      string        `pipe:"jitter" desc:"Randomizes each wait d: full waits in [0, d), equal in [d/2, d), none waits d." enum:"full,equal,none"`
	MaxElapsed  time.Duration `pipe:"max_elapsed" desc:"No attempt starts later than this after the first; 0 means no limit." example:"2m" min:"0"`
	RetryOn     string        `pipe:"retry_on" desc:"CEL predicate over error.kind (timeout, connection, status, circuit_open, canceled, invalid, error), error.status and error.message; true retries. Default: transient errors, never a 4xx other than 408 and 429." example:"error.kind == \"status\" && error.status == 503"`
}

// breakerConfig is the `breaker:` key of a sink or stage.
type breakerConfig struct {
	FailureThreshold int           `pipe:"failure_threshold" desc:"Consecutive failures that open the breaker; 0 turns this rule off." example:"10" min:"0"`
	FailureRate      float64       `pipe:"failure_rate" desc:"Fraction of failed calls within window that opens the breaker; 0 turns this rule off." example:"0.5" min:"0" max:"1"`
	Window           time.Duration `pipe:"window" desc:"Span over which failure_rate is measured, in steps of a tenth of it." example:"30s" min:"0.001"`
	MinCalls         int           `pipe:"min_calls" desc:"Calls within window before failure_rate applies." example:"20" min:"1"`
	RecoveryTimeout  time.Duration `pipe:"recovery_timeout" desc:"How long the breaker stays open before admitting probes." example:"10s" min:"0.001"`
	HalfOpenMaxCalls int           `pipe:"half_open_max_calls" desc:"Probes admitted at once while half-open." example:"2" min:"1"`
	SuccessThreshold int           `pipe:"success_threshold" desc:"Successful probes that close the breaker; any failed probe opens it again." example:"3" min:"1"`
	OnOpen           string        `pipe:"on_open" desc:"While open: block holds messages (backpressure, nothing acked); dead_letter fails them with reason circuit_open." enum:"block,dead_letter"`
}

var (
	retrySpec = component.Stage("retry", "Tries a failed call again after a backoff.",
		retryConfig{MaxAttempts: 3, BaseDelay: 100 * time.Millisecond, MaxDelay: 10 * time.Second,
			Multiplier: 2, Jitter: "full"},
		noBuild[retryConfig], component.WithShorthand("max_attempts"))
	breakerSpec = component.Stage("breaker", "Stops calling a failing peer for a while.",
		breakerConfig{FailureThreshold: 5, Window: time.Minute, MinCalls: 10, RecoveryTimeout: 30 * time.Second,
			HalfOpenMaxCalls: 1, SuccessThreshold: 1, OnOpen: "block"},
		noBuild[breakerConfig])
	timeoutField = component.Field{Name: "timeout", Type: component.TypeDuration,
		Description: "Deadline of each call (each attempt, under retry); a call over it fails with reason timeout.",
		Example:     "5s"}
)

func noBuild[C any](*C, component.Env) (any, error) { return nil, nil }

// Policies returns the spec of each policy block a sink or stage takes
// (retry, breaker, timeout), as kinds: the same specs the decoder and the
// JSON Schema use. timeout's one field is its own shorthand.
func Policies() []*component.Kind {
	return []*component.Kind{&retrySpec, &breakerSpec, {
		Name:      "timeout",
		Role:      component.RoleStage,
		Summary:   "Bounds each call of a sink or stage; written as a scalar, `timeout: 5s`.",
		Shorthand: "timeout",
		Fields:    []component.Field{timeoutField},
	}}
}

// wrapPolicies wraps v, a sink or a Processor, in the policies named by
// n.Common in the order Retry(Breaker(Timeout(call))); it returns nil after
// reporting errors.
func wrapPolicies(d *decoder, n *Node, v any, env component.Env) any {
	before := len(*d.errs)
	var retry, breaker, timeout resilience.Policy
	if val, ok := n.Common["retry"]; ok {
		retry = d.retry(val, n, env)
	}
	if val, ok := n.Common["breaker"]; ok {
		breaker = d.breaker(val, n, env)
	}
	if val, ok := n.Common["timeout"]; ok {
		var dur time.Duration
		d.value(reflect.ValueOf(&dur).Elem(), timeoutField, val, n.Kind+".timeout")
		if dur <= 0 && len(*d.errs) == before {
			d.errorf(val, "%s.timeout: must be positive, got %s", n.Kind, d.show(val))
		}
		timeout = resilience.Timeout{D: dur, Clock: env.Clock}
	}
	if len(*d.errs) > before {
		return nil
	}
	policies := []resilience.Policy{retry, breaker, timeout}
	switch c := v.(type) {
	case resilience.Guarded:
		c.Guard(policies...)
		return v
	case pipeline.Sink:
		return resilience.Sink(c, policies...)
	case pipeline.Processor:
		return resilience.Processor(c, policies...)
	}
	for _, key := range policyKeys {
		if val, ok := n.Common[key]; ok {
			d.errorf(val, "%s: not supported on %s %q, which handles messages in its own loop; put it on the sink or a per-message stage", key, n.Role, n.Kind)
		}
	}
	return nil
}

func (d *decoder) retry(val *yaml.Node, n *Node, env component.Env) resilience.Policy {
	before := len(*d.errs)
	what := n.Kind + ".retry"
	cfg := retrySpec.NewConfig().(*retryConfig)
	switch {
	case val.Tag == "!!null":
		val = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: val.Line, Column: val.Column}
	case val.Kind != yaml.MappingNode && val.Kind != yaml.ScalarNode:
		d.errorf(val, "%s: expected a mapping or a number of attempts, got %s", what, kindName(val))
		return nil
	}
	d.decode(cfg, retrySpec.Fields, retrySpec.Shorthand, val, what)
	if len(*d.errs) > before {
		return nil
	}
	jitter, _ := backoff.ParseJitter(cfg.Jitter) // the enum checked it
	rc := resilience.RetryConfig{
		MaxAttempts: cfg.MaxAttempts, BaseDelay: cfg.BaseDelay, MaxDelay: cfg.MaxDelay,
		Multiplier: cfg.Multiplier, Jitter: jitter, MaxElapsed: cfg.MaxElapsed,
	}
	if cfg.MaxDelay < cfg.BaseDelay {
		d.errorf(keyValue(val, "max_delay"), "%s.max_delay: %v is less than base_delay %v", what, cfg.MaxDelay, cfg.BaseDelay)
		return nil
	}
	if cfg.RetryOn != "" {
		src := keyValue(val, "retry_on")
		if d.refuseEnvRef(src, what+".retry_on", false) {
			return nil
		}
		pred, err := expr.CompileErrorPredicate(cfg.RetryOn)
		if err != nil {
			d.exprErrors(src, err, what+".retry_on")
			return nil
		}
		rc.RetryOn = resilience.RetryOnExpr(pred, env.Logger)
	}
	r, err := resilience.NewRetry(rc, env.Clock, env.Logger)
	if err != nil {
		d.errorf(val, "%s: %v", what, err)
		return nil
	}
	return r
}

func (d *decoder) breaker(val *yaml.Node, n *Node, env component.Env) resilience.Policy {
	before := len(*d.errs)
	what := n.Kind + ".breaker"
	cfg := breakerSpec.NewConfig().(*breakerConfig)
	if val.Tag == "!!null" {
		val = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: val.Line, Column: val.Column}
	}
	d.decode(cfg, breakerSpec.Fields, "", val, what)
	if len(*d.errs) > before {
		return nil
	}
	if cfg.FailureThreshold == 0 && cfg.FailureRate == 0 {
		d.errorf(val, "%s: failure_threshold and failure_rate are both 0, so it would never open", what)
		return nil
	}
	onOpen := resilience.Block
	if cfg.OnOpen == "dead_letter" {
		onOpen = resilience.DeadLetter
	}
	name := n.Name
	if name == "" {
		name = n.Kind
	}
	b, err := resilience.NewBreaker(resilience.BreakerConfig{
		Name: env.Pipeline + "/" + name, FailureThreshold: cfg.FailureThreshold, FailureRate: cfg.FailureRate,
		Window: cfg.Window, MinCalls: cfg.MinCalls, RecoveryTimeout: cfg.RecoveryTimeout,
		HalfOpenMaxCalls: cfg.HalfOpenMaxCalls, SuccessThreshold: cfg.SuccessThreshold, OnOpen: onOpen,
	}, env.Clock, env.Logger)
	if err != nil {
		d.errorf(val, "%s: %v", what, err)
		return nil
	}
	return b
}

// keyValue returns the value of key in mapping m, or m itself.
func keyValue(m *yaml.Node, key string) *yaml.Node {
	if m.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == key {
				return m.Content[i+1]
			}
		}
	}
	return m
}
