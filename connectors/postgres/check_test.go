package postgres

import (
	"context"
	"strings"
	"testing"
)

// Given the real local server, Check refuses a missing table and a missing
// column, naming the table and columns; it passes a table that fits and a
// server it cannot reach.
func TestSinkCheckAsksTheServerAboutTheTableAndColumns(t *testing.T) {
	pool := OpenDB(t)
	tbl := MakeTable(t, pool, "id bigint PRIMARY KEY, name text")
	for _, tc := range []struct {
		name     string
		dsn      string
		table    string
		cols     map[string]string
		conflict []string
		want     string
	}{
		{"fits", DSN(), tbl, map[string]string{"id": "msg.id", "name": "msg.name"}, nil, ""},
		{"missing table", DSN(), tbl + "_nope", map[string]string{"id": "msg.id"}, nil, "42P01"},
		{"missing column", DSN(), tbl, map[string]string{"id": "msg.id", "amount": "msg.amount"}, nil, "42703"},
		{"unreachable is not a failure", "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2", tbl, map[string]string{"id": "msg.id"}, nil, ""},
	} {
		s := newTestSink(t, sinkConfig{DSN: tc.dsn, Table: tc.table, Columns: compileColumns(t, tc.cols), OnConflict: tc.conflict, MaxConns: 1}, "check")
		err := s.Check(context.Background())
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: Check = %v, want nil", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "table "+tc.table)):
			t.Errorf("%s: Check = %v, want %s naming table %s", tc.name, err, tc.want, tc.table)
		}
	}
}
