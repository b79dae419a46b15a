package pgstate_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/pipe-dsl/pipe/internal/servicetest"
	"github.com/pipe-dsl/pipe/state"
	"github.com/pipe-dsl/pipe/state/internal/storetest"
	"github.com/pipe-dsl/pipe/state/pgstate"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const target = "127.0.0.1:5432"

func dsn(addr string) string { return "postgres://postgres@" + addr + "/test?sslmode=disable" }

// backend returns the suite's description of PostgreSQL, skipping when it
// is down. Each id gets its own tables, dropped after the test.
func backend(t testing.TB) storetest.Backend {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn(target))
	if err != nil {
		servicetest.Unavailable(t, "PostgreSQL on "+target, err)
	}
	conn.Close(ctx)
	return storetest.Backend{
		Target:     target,
		CommitWord: "commit",
		Lose: func(t testing.TB, id string) {
			table := "pipe_test_" + strings.ToLower(id)
			c, err := pgx.Connect(context.Background(), dsn(target))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
			if _, err := c.Exec(context.Background(), "TRUNCATE "+table+", "+table+"_meta"); err != nil {
				t.Fatal(err)
			}
		},
		Open: func(t testing.TB, addr, id string) state.Backend {
			table := "pipe_test_" + strings.ToLower(id)
			t.Cleanup(func() {
				ctx := context.Background()
				if c, err := pgx.Connect(ctx, dsn(target)); err == nil {
					c.Exec(ctx, "DROP TABLE IF EXISTS "+table+", "+table+"_meta, "+table+"_keys, "+table+"_leases")
					c.Close(ctx)
				}
			})
			return &pgstate.Backend{DSN: dsn(addr), Table: table}
		},
	}
}

func TestStore(t *testing.T)       { storetest.RunStore(t, backend(t)) }
func TestLeases(t *testing.T)      { storetest.RunLeases(t, backend(t)) }
func BenchmarkCommit(b *testing.B) { storetest.BenchCommit(b, backend(b)) }
func BenchmarkClaim(b *testing.B)  { storetest.BenchClaim(b, backend(b)) }
