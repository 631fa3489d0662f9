//go:build postgres

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/pgdb"
)

func openPostgres(ctx context.Context, u string, log *slog.Logger) (model.Database, error) {
	return pgdb.Open(ctx, u, pgdb.Options{Logger: log, Migrate: true})
}

// newPostgresSchema creates a schema for one measurement and returns the
// URL that uses it, and a function that drops it.
func newPostgresSchema(ctx context.Context, server, name string) (string, func() error, error) {
	b := make([]byte, 4)
	rand.Read(b)
	schema := "ork_perf_" + strings.ReplaceAll(name, "-", "_") + "_" + hex.EncodeToString(b)
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return "", nil, err
	}
	pu, err := url.Parse(server)
	if err != nil {
		return "", nil, err
	}
	q := pu.Query()
	q.Set("search_path", schema)
	pu.RawQuery = q.Encode()
	drop := func() error {
		conn, err := pgx.Connect(context.Background(), server)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(context.Background(), "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		return err
	}
	return pu.String(), drop, nil
}
