//go:build !postgres

package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/ork-run/ork/model"
)

var errNoPostgres = errors.New("-database-url: this perf-test was built without PostgreSQL; build it with `go build -tags postgres ./cmd/perf-test`")

func openPostgres(ctx context.Context, u string, log *slog.Logger) (model.Database, error) {
	return nil, errNoPostgres
}

func newPostgresSchema(ctx context.Context, server, name string) (string, func() error, error) {
	return "", nil, errNoPostgres
}
