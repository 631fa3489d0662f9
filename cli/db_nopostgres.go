//go:build !postgres

package cli

import (
	"context"
	"errors"
	"log/slog"

	"github.com/ork-run/ork/model"
)

// errNoPostgres is what the default build says when given a PostgreSQL URL.
var errNoPostgres = errors.New("this ork was built without PostgreSQL support: build it with `go build -tags postgres` to use --database-url (ORK_DATABASE_URL)")

func openPostgres(ctx context.Context, url string, log *slog.Logger, migrate bool) (model.Database, error) {
	return nil, errNoPostgres
}

func openPostgresMigrating(ctx context.Context, url string, log *slog.Logger, migrate bool) (model.Database, []string, error) {
	return nil, nil, errNoPostgres
}

func schemaVersion() int { return 0 }
