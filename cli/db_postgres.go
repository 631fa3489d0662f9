//go:build postgres

package cli

import (
	"context"
	"log/slog"

	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/pgdb"
)

// openPostgres opens the PostgreSQL database at url; with migrate, it first
// applies the migrations the database lacks and returns their names.
func openPostgres(ctx context.Context, url string, log *slog.Logger, migrate bool) (model.Database, error) {
	db, _, err := openPostgresMigrating(ctx, url, log, migrate)
	return db, err
}

func openPostgresMigrating(ctx context.Context, url string, log *slog.Logger, migrate bool) (model.Database, []string, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db, err := pgdb.Open(ctx, url, pgdb.Options{Logger: log, Migrate: migrate})
	if err != nil {
		return nil, nil, err
	}
	return db, db.Applied(), nil
}

// schemaVersion is the schema version this ork needs.
func schemaVersion() int { return pgdb.SchemaVersion() }
