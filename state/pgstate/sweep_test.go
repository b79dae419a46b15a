package pgstate_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pipe-dsl/pipe/state/pgstate"
)

// sweepFixture opens the dedupe claims of fresh tables, and a connection
// to look at them.
func sweepFixture(t *testing.T) (*pgstate.Shared, *pgx.Conn, string) {
	t.Helper()
	b := backend(t).Open(t, target, fmt.Sprintf("sweep_%d", time.Now().UnixNano())).(*pgstate.Backend)
	sh, err := b.OpenShared()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sh.Close() })
	conn, err := pgx.Connect(context.Background(), dsn(target))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return sh.(*pgstate.Shared), conn, b.Table + "_keys"
}

// expire inserts n claims that expired an hour ago, as keys never claimed
// again leave them.
func expire(t *testing.T, conn *pgx.Conn, table string, n int) {
	t.Helper()
	_, err := conn.Exec(context.Background(), `INSERT INTO `+table+` (key, token, expires_at)
SELECT 'old-' || g, 't', now() - interval '1 hour' FROM generate_series(1, $1) g`, n)
	if err != nil {
		t.Fatal(err)
	}
}

func rows(t *testing.T, conn *pgx.Conn, table string) (n int) {
	t.Helper()
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSweepDeletesExpiredClaimsAndKeepsLiveOnes(t *testing.T) {
	ctx := context.Background()
	sh, conn, table := sweepFixture(t)
	pgstate.SetSweepClock(sh, time.Hour, func() time.Time { return time.Unix(0, 1) }) // the first claim sweeps an empty table
	for key, ttl := range map[string]time.Duration{"live": time.Hour, "forever": 0} {
		if ok, err := sh.Claim(ctx, key, "me", ttl); !ok || err != nil {
			t.Fatalf("Claim(%s) = %v, %v; want true, nil", key, ok, err)
		}
	}
	expire(t, conn, table, 2500) // more than one statement's batch

	n, err := sh.Sweep(ctx)
	if err != nil || n != 2500 {
		t.Fatalf("Sweep = %d, %v; want 2500, nil", n, err)
	}
	if got := rows(t, conn, table); got != 2 {
		t.Fatalf("rows after the sweep = %d, want 2 (the live and the unexpiring claim)", got)
	}
	if ok, _ := sh.Claim(ctx, "live", "other", time.Hour); ok {
		t.Fatal("a live claim passed a second token after the sweep")
	}
}

func TestClaimsSweepAtMostOncePerInterval(t *testing.T) {
	ctx := context.Background()
	sh, conn, table := sweepFixture(t)
	var now atomic.Int64
	now.Store(time.Hour.Nanoseconds())
	pgstate.SetSweepClock(sh, time.Minute, func() time.Time { return time.Unix(0, now.Load()) })

	claim := func(key string) {
		t.Helper()
		if ok, err := sh.Claim(ctx, key, "me", time.Hour); !ok || err != nil {
			t.Fatalf("Claim(%s) = %v, %v", key, ok, err)
		}
	}
	claim("a") // sweeps (nothing due before) and sets the next sweep a minute on
	expire(t, conn, table, 10)
	now.Add((time.Minute - time.Nanosecond).Nanoseconds())
	claim("b")
	if got := rows(t, conn, table); got != 12 {
		t.Fatalf("rows before the interval passed = %d, want 12: a claim swept early", got)
	}
	now.Add(time.Nanosecond.Nanoseconds())
	claim("c")
	if got := rows(t, conn, table); got != 3 {
		t.Fatalf("rows after the interval = %d, want 3 (a, b, c): the due sweep did not run", got)
	}
}
