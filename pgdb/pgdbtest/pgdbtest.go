//go:build postgres

// Package pgdbtest gives tests a PostgreSQL schema of their own, so that
// tests of the postgres backend run in parallel on one server without
// seeing each other.
//
// The server is named by ORK_TEST_DATABASE_URL. Without it the tests skip —
// except in CI (CI=true), where a postgres test that would skip fails.
package pgdbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL is the environment variable that names the test server.
const EnvURL = "ORK_TEST_DATABASE_URL"

// ServerURL returns the test server's URL, or skips the test (fails it in CI).
func ServerURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: CI runs the postgres tests on a real server", EnvURL)
		}
		t.Skipf("%s is not set", EnvURL)
	}
	return u
}

// URL creates a new, empty schema on the test server, drops it when the
// test ends, and returns a URL whose search_path is that schema.
func URL(t testing.TB) string {
	t.Helper()
	server := ServerURL(t)
	b := make([]byte, 6)
	rand.Read(b)
	schema := "ork_test_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatalf("connect to %s: %v", EnvURL, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, server)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return WithSchema(t, server, schema)
}

// WithSchema returns server's URL with its search_path set to schema.
func WithSchema(t testing.TB, server, schema string) string {
	t.Helper()
	pu, err := url.Parse(server)
	if err != nil {
		t.Fatalf("%s: %v", EnvURL, err)
	}
	q := pu.Query()
	q.Set("search_path", schema)
	pu.RawQuery = q.Encode()
	return pu.String()
}
