package postgres

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pipe-dsl/pipe/pipeline"
)

// errBadDSN replaces every DSN parse error, whose text could echo the secret.
var errBadDSN = errors.New("postgres: dsn is not a valid connection string (value not shown)")

// poolConfig parses dsn without connecting. appName, if the DSN sets none,
// labels the connections in pg_stat_activity.
func poolConfig(dsn string, maxConns int, appName string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, errBadDSN
	}
	if maxConns > 0 {
		cfg.MaxConns = int32(maxConns)
	}
	if cfg.MinConns > cfg.MaxConns {
		cfg.MinConns = cfg.MaxConns
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = appName
	}
	return cfg, nil
}

// ident quotes a possibly schema-qualified name ("schema.table") as SQL
// identifiers, so no config value can inject SQL.
func ident(name string) string {
	return pgx.Identifier(strings.Split(name, ".")).Sanitize()
}

// Error is a statement the server rejected. Retryable is false for errors
// that fail the same way on every attempt: integrity constraint violations
// (SQLSTATE class 23), data exceptions (22), syntax or access errors (42),
// invalid authorization (28) and an unknown database (3D).
type Error struct {
	// SQLState is the five-character SQLSTATE code, such as 23505.
	SQLState string
	Err      error
}

func (e *Error) Error() string {
	kind := "retryable"
	if !e.Retryable() {
		kind = "not retryable"
	}
	return fmt.Sprintf("SQLSTATE %s (%s): %v", e.SQLState, kind, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether the same statement may succeed on a later attempt.
func (e *Error) Retryable() bool {
	switch e.SQLState[:2] {
	case "22", "23", "28", "3D", "42":
		return false
	}
	return true
}

// Temporary is Retryable, for callers that test net.Error-style errors.
func (e *Error) Temporary() bool { return e.Retryable() }

// classify wraps a server error as *Error, and a value pgx cannot encode for
// its column's type as a permanent error; it leaves others as they are.
func classify(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && len(pe.Code) == 5 {
		return &Error{SQLState: pe.Code, Err: err}
	}
	// pgx has no error type for this; its message is stable since v5.0.
	if strings.Contains(err.Error(), "failed to encode args[") {
		return pipeline.Permanent(fmt.Errorf("value does not fit its column type (not retryable): %w", err))
	}
	return err
}

// retryable reports whether err may go away on a later attempt: connection
// errors and retryable server errors do, permanent ones do not.
func retryable(err error) bool {
	var pe *Error
	switch {
	case pipeline.IsPermanent(err):
		return false
	case errors.As(err, &pe):
		return pe.Retryable()
	}
	return true
}
