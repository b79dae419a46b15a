package dsl_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pipe-dsl/pipe/dsl"
	"github.com/pipe-dsl/pipe/state/pgstate"
	"github.com/pipe-dsl/pipe/state/redisstate"
)

const stateBase = "source: {generate: {message: '1', count: 1}}\nsink: {drop: {}}\n"

func TestTheStateBlockBuildsItsStore(t *testing.T) {
	c, err := dsl.Parse("p.yaml", []byte(stateBase+"state:\n  redis: {url: 'redis://127.0.0.1:6379/0', prefix: 'orders:'}\n  checkpoint_interval: 250ms\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := c.State.(*redisstate.Backend)
	if !ok || r.Prefix != "orders:" || r.CheckpointInterval() != 250*time.Millisecond {
		t.Fatalf("State = %#v, want redis prefix orders: every 250ms", c.State)
	}
	c, err = dsl.Parse("p.yaml", []byte(stateBase+"state:\n  postgres: {dsn: 'postgres://u@127.0.0.1/db'}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	pg, ok := c.State.(*pgstate.Backend)
	if !ok || pg.Table != "pipe_state" || pg.CheckpointInterval() != time.Second {
		t.Fatalf("State = %#v, want postgres table pipe_state every 1s", c.State)
	}
	if c, _ := dsl.Parse("p.yaml", []byte(stateBase), nil); c.State != nil {
		t.Fatalf("State = %#v without a state block, want nil", c.State)
	}
}

func TestStateBlockErrorsArePositionedAndHideSecrets(t *testing.T) {
	const pw = "hunter2-SECRET"
	for _, tc := range []struct{ name, state, want string }{
		{"no store", "state: {checkpoint_interval: 1s}", "p.yaml:3:8: state needs a store"},
		{"two stores", "state: {redis: {url: 'redis://h'}, postgres: {dsn: 'postgres://h/db'}}", "p.yaml:3:36: state has one store"},
		{"a near miss", "state: {rediss: {url: 'redis://h'}}", `p.yaml:3:9: unknown state key "rediss"; did you mean "redis"?`},
		{"no url", "state: {redis: {prefix: 'x:'}}", "p.yaml:3:16: state.redis needs url"},
		{"a bad url", "state: {redis: {url: 'http://u:" + pw + "@h'}}", "p.yaml:3:22: state.redis.url: not a valid redis:// URL (value not shown"},
		{"a bad dsn", "state: {postgres: {dsn: 'postgres://u:" + pw + "@h:notaport/db'}}", "p.yaml:3:25: state.postgres.dsn: not a valid PostgreSQL connection string"},
		{"a bad table", "state: {postgres: {dsn: 'postgres://h/db', table: 'x; drop'}}", `p.yaml:3:51: state.postgres.table: "x; drop" is not a plain identifier`},
		{"a bad interval", "state: {redis: {url: 'redis://h'}, checkpoint_interval: 0s}", "p.yaml:3:57: state.checkpoint_interval must be > 0"},
		{"not a mapping", "state: redis", "p.yaml:3:8: state must be a mapping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := compileErr(t, stateBase+tc.state+"\n")
			if !strings.Contains(got, tc.want) {
				t.Errorf("error = %q, want it to contain %q", got, tc.want)
			}
			if strings.Contains(got, pw) {
				t.Errorf("error shows the password: %q", got)
			}
		})
	}
}

func TestAStateStorePasswordStaysOutOfRunErrorsAndLogs(t *testing.T) {
	const pw = "pw-5e1f-SECRET"
	// Port 1 refuses: every claim fails until the run's context ends.
	src := "state: {redis: {url: 'redis://u:" + pw + "@127.0.0.1:1/0'}}\n" +
		"drain_timeout: 200ms\nsource: {generate: {message: '{\"id\": 1}', count: 1}}\nstages:\n  - dedupe: {key: msg.id, scope: global}\nsink: {drop: {}}\n"
	var logs strings.Builder
	c, err := dsl.Parse("p.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := dsl.Compile(c, &dsl.CompileOptions{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	runErr := p.Run(ctx)
	out := fmt.Sprint(runErr) + "\n" + logs.String()
	if strings.Contains(out, pw) {
		t.Fatalf("the password shows:\n%s", out)
	}
	if !strings.Contains(out, "connection refused") {
		t.Fatalf("the store error is missing, so this test saw nothing:\n%s", out)
	}
}
