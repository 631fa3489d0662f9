package main

import (
	"context"
	"log/slog"
	"strings"

	"github.com/ork-run/ork/filedb"
	"github.com/ork-run/ork/model"
)

// isURL reports whether a store is a PostgreSQL URL rather than a directory.
func isURL(store string) bool {
	return strings.HasPrefix(store, "postgres://") || strings.HasPrefix(store, "postgresql://")
}

// openStore opens a handle on a store: the file database in a directory,
// or PostgreSQL at a URL.
func openStore(ctx context.Context, store string, log *slog.Logger) (model.Database, error) {
	if isURL(store) {
		return openPostgres(ctx, store, log)
	}
	return filedb.Open(store, filedb.Options{Logger: log})
}

// redactPassword hides the password of a URL.
func redactPassword(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	cred, host, ok := strings.Cut(rest, "@")
	if !ok {
		return u
	}
	if user, _, hasPw := strings.Cut(cred, ":"); hasPw {
		return scheme + "://" + user + ":***@" + host
	}
	return u
}
