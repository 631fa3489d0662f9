//go:build postgres

package pgdb_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/pgdb"
	"github.com/ork-run/ork/pgdb/pgdbtest"
)

func exec(t *testing.T, url, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func queryInt(t *testing.T, url, sql string, args ...any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// Several processes starting at once on a new schema migrate it once:
// the advisory lock serializes them, the later ones find nothing to do.
// Migrating again is a no-op.
func TestConcurrentMigrationsApplyOnce(t *testing.T) {
	url := pgdbtest.URL(t)
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	applied := make([][]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := pgdb.Open(context.Background(), url, pgdb.Options{Migrate: true, Logger: quiet})
			if err != nil {
				errs[i] = err
				return
			}
			applied[i] = d.Applied()
			d.Close()
		}()
	}
	wg.Wait()
	total := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("opener %d: %v", i, errs[i])
		}
		total += len(applied[i])
	}
	if total != pgdb.SchemaVersion() {
		t.Fatalf("%d migrations applied in all, want each of the %d once", total, pgdb.SchemaVersion())
	}
	if got := queryInt(t, url, `SELECT count(*) FROM ork_migrations`); got != pgdb.SchemaVersion() {
		t.Fatalf("ork_migrations has %d rows, want %d", got, pgdb.SchemaVersion())
	}
	d := open(t, url)
	if a := d.Applied(); len(a) != 0 {
		t.Fatalf("migrating an up-to-date schema applied %v", a)
	}
}

// A schema migrated by a newer ork is refused with a message saying so; an
// unmigrated one is refused without Migrate, naming `ork migrate`.
func TestSchemaVersionChecked(t *testing.T) {
	url := pgdbtest.URL(t)
	_, err := pgdb.Open(context.Background(), url, pgdb.Options{Logger: quiet})
	if !errors.Is(err, pgdb.ErrNotMigrated) || !strings.Contains(err.Error(), "ork migrate") {
		t.Fatalf("Open of an unmigrated schema = %v, want ErrNotMigrated naming `ork migrate`", err)
	}
	open(t, url).Close()
	exec(t, url, `INSERT INTO ork_migrations (version, name) VALUES (9999, '9999_future.sql')`)
	for _, migrate := range []bool{false, true} {
		_, err := pgdb.Open(context.Background(), url, pgdb.Options{Migrate: migrate, Logger: quiet})
		var ne *pgdb.NewerSchemaError
		if !errors.As(err, &ne) || !strings.Contains(err.Error(), "newer ork") {
			t.Fatalf("Open (migrate %v) of a newer schema = %v, want a NewerSchemaError saying a newer ork migrated it", migrate, err)
		}
	}
}

// A server that cannot be reached, does not answer, or refuses the login
// is one clear line within a few seconds, without retries.
func TestConnectErrorsAreOneLine(t *testing.T) {
	server := pgdbtest.ServerURL(t)
	cfg, err := pgx.ParseConfig(server)
	if err != nil {
		t.Fatal(err)
	}
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := closed.Addr().String()
	closed.Close()
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close() // accepted, never answered
		}
	}()
	pg := cfg.Host + ":" + strconv.Itoa(int(cfg.Port))
	for _, tt := range []struct {
		name, url, want string
		within          time.Duration
	}{
		{"nothing listens", "postgres://postgres@" + closedAddr + "/test?sslmode=disable", "cannot reach PostgreSQL at " + closedAddr + ": dial tcp", 3 * time.Second},
		{"no answer", "postgres://postgres@" + silent.Addr().String() + "/test?sslmode=disable", "cannot reach PostgreSQL at " + silent.Addr().String() + ": no answer within 5s", 7 * time.Second},
		{"no answer, connect_timeout=1", "postgres://postgres@" + silent.Addr().String() + "/test?sslmode=disable&connect_timeout=1", "no answer within 1s", 3 * time.Second},
		{"unknown user", "postgres://nobody_at_all@" + pg + "/test?sslmode=disable", `refused the login of user "nobody_at_all"`, 3 * time.Second},
		{"unknown database", "postgres://postgres@" + pg + "/no_such_db_here?sslmode=disable", `database "no_such_db_here" does not exist`, 3 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			d, err := pgdb.Open(context.Background(), tt.url, pgdb.Options{Logger: quiet})
			took := time.Since(start)
			if err == nil {
				d.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error = %q, want one line containing %q", err, tt.want)
			}
			if took > tt.within {
				t.Errorf("took %s, want at most %s", took, tt.within)
			}
		})
	}
}

// The schema itself never lets a finished task or run change, whatever
// statement is sent: the keep-terminal trigger drops the update.
func TestTerminalKeptBySQL(t *testing.T) {
	url := pgdbtest.URL(t)
	d := open(t, url)
	ctx := context.Background()
	w := &model.Workflow{Name: "w", JobName: "j.sh", TaskCount: 1}
	if err := d.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	r := model.NewRun(w, nil, "test", time.Now())
	if err := d.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	ts := model.NewTasks(r, time.Now())
	if err := d.CreateTasks(ctx, ts); err != nil {
		t.Fatal(err)
	}
	if _, err := d.UpdateTasks(ctx, []model.TaskUpdate{{TaskID: ts[0].ID, Status: model.TaskDispatched}}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.UpdateTasks(ctx, []model.TaskUpdate{{TaskID: ts[0].ID, Attempt: 1, Status: model.TaskSuccess}}); err != nil {
		t.Fatal(err)
	}
	if err := d.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunSuccess}}); err != nil {
		t.Fatal(err)
	}
	exec(t, url, `UPDATE tasks SET status = 'pending', attempt = 7 WHERE id = $1`, ts[0].ID)
	exec(t, url, `UPDATE runs SET status = 'running' WHERE id = $1`, r.ID)
	got, _ := d.ListTasks(ctx, r.ID)
	if len(got) != 1 || got[0].Status != model.TaskSuccess || got[0].Attempt != 1 {
		t.Errorf("task after a raw UPDATE = %+v, want success in attempt 1, unchanged", got)
	}
	if run, _ := d.GetRun(ctx, r.ID); run.Status != model.RunSuccess {
		t.Errorf("run after a raw UPDATE = %s, want success, unchanged", run.Status)
	}
	// CHECK constraints refuse an unknown status.
	ctx2, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx2, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx2)
	if _, err := conn.Exec(ctx2, `INSERT INTO runs (id, status, created_at) VALUES ('x', 'exploded', now())`); err == nil {
		t.Error("a run with status 'exploded' was stored")
	}
}
