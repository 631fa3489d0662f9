//go:build postgres

package pgdb

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one SQL file of migrations/, named NNNN_what.sql.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in order.
func migrations() ([]migration, error) {
	ents, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range ents {
		n := e.Name()
		num, _, ok := strings.Cut(n, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: the name must start with a positive number and _", n)
		}
		b, err := migrationFiles.ReadFile("migrations/" + n)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: n, sql: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s have the same number", out[i-1].name, out[i].name)
		}
	}
	return out, nil
}

// SchemaVersion is the schema version this build of ork needs: the number
// of its newest migration.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// Lock keys: advisory locks take two int4 keys; the first is ork's, the
// second a hash of what is locked within the schema (so that several ork
// installations, one per schema, share a database without sharing locks).
const lockSpace = 0x6f726b // "ork"

// NewerSchemaError says the database was migrated by a newer ork.
type NewerSchemaError struct {
	Have, Want int
}

func (e *NewerSchemaError) Error() string {
	return fmt.Sprintf("the database schema is at version %d, newer than this ork knows (%d): it was migrated by a newer ork; upgrade ork", e.Have, e.Want)
}

// ErrNotMigrated says the database lacks migrations this ork needs.
var ErrNotMigrated = errors.New("the database is not migrated for this ork: run `ork migrate`")

// Migrate applies the embedded migrations the database lacks, in order,
// each in its own transaction together with its row in ork_migrations.
// A session advisory lock serializes ork processes that migrate the same
// schema at once (several hosts starting together): the second waits, then
// finds nothing to do. Migrating an up-to-date database is a no-op; a
// database migrated by a newer ork is refused (*NewerSchemaError).
func (d *DB) Migrate(ctx context.Context) (applied []string, err error) {
	ms, err := migrations()
	if err != nil {
		return nil, err
	}
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return nil, d.connError(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, hashtext('migrate:' || current_schema()))`, lockSpace); err != nil {
		return nil, fmt.Errorf("lock the schema for migration: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1, hashtext('migrate:' || current_schema()))`, lockSpace)
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS ork_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("create ork_migrations: %w", err)
	}
	var have int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM ork_migrations`).Scan(&have); err != nil {
		return nil, err
	}
	want := 0
	if len(ms) > 0 {
		want = ms[len(ms)-1].version
	}
	if have > want {
		return nil, &NewerSchemaError{Have: have, Want: want}
	}
	for _, m := range ms {
		if m.version <= have {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO ork_migrations (version, name) VALUES ($1, $2)`, m.version, m.name)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("migration %s: %w", m.name, err)
		}
		applied = append(applied, m.name)
	}
	return applied, nil
}

// checkSchema refuses a database whose schema is not the one this ork
// knows: older (run `ork migrate`) or newer (upgrade ork).
func (d *DB) checkSchema(ctx context.Context) error {
	var have int
	var table *string
	if err := d.pool.QueryRow(ctx, `SELECT to_regclass('ork_migrations')::text`).Scan(&table); err != nil {
		return d.connError(err)
	}
	if table != nil {
		if err := d.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM ork_migrations`).Scan(&have); err != nil {
			return d.connError(err)
		}
	}
	want := SchemaVersion()
	switch {
	case have > want:
		return &NewerSchemaError{Have: have, Want: want}
	case have < want:
		return fmt.Errorf("%w (schema version %d, this ork needs %d)", ErrNotMigrated, have, want)
	}
	return nil
}
