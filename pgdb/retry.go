//go:build postgres

package pgdb

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
)

// again calls f, and once more if it failed because its connection was
// lost — the server terminated it (restart, failover, an administrator) or
// the network dropped it. A pooled connection that died while idle fails
// its next call: the second try gets a new one. Only calls that are safe to
// repeat go through again: reads, and writes that change nothing when
// applied twice (UpdateRuns, CreateTasks, RequestCancel).
func again[T any](ctx context.Context, f func() (T, error)) (T, error) {
	v, err := f()
	if err != nil && lostConn(err) && ctx.Err() == nil {
		v, err = f()
	}
	return v, err
}

// lostConn reports whether err says the connection was lost, not that the
// database refused the call.
func lostConn(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// admin_shutdown, crash_shutdown, cannot_connect_now
		return pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || pgconn.SafeToRetry(err)
}
