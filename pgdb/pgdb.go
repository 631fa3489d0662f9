//go:build postgres

package pgdb

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ork-run/ork/model"
)

// Options tune Open. The zero value is right for most uses.
type Options struct {
	// Logger receives reports of lost and regained connections.
	// Default: slog.Default().
	Logger *slog.Logger
	// Migrate applies the migrations the database lacks (`ork init`,
	// `ork migrate`). Without it, Open refuses a database whose schema is
	// not the one this ork needs.
	Migrate bool
	// ConnectTimeout bounds each attempt to connect (and Open's first
	// one). Default 5s, or connect_timeout from the URL.
	ConnectTimeout time.Duration
}

// DB is a model.Database on PostgreSQL. It is safe for concurrent use.
type DB struct {
	pool    *pgxpool.Pool
	cfg     *pgxpool.Config
	log     *slog.Logger
	schema  string
	channel string // LISTEN/NOTIFY channel of the schema
	where   string // "PostgreSQL host:port/db (schema s)", for messages

	applied []string // migrations Open applied

	listenOnce sync.Once
	changes    chan struct{}
	stop       chan struct{}
	wg         sync.WaitGroup
	closeOnce  sync.Once
}

var _ model.Database = (*DB)(nil)
var _ model.Notifier = (*DB)(nil)
var _ model.SchedulerLocker = (*DB)(nil)

// Open connects to the database at url (postgres://user@host:port/db?...).
// The tables live in the first schema of the connection's search_path
// (public unless the URL sets search_path). A database that cannot be
// reached or refuses the login is one error, within the connect timeout:
// Open does not retry.
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database URL: %w", err)
	}
	cc := cfg.ConnConfig
	if opts.ConnectTimeout > 0 {
		cc.ConnectTimeout = opts.ConnectTimeout
	} else if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = 5 * time.Second
	}
	if cc.RuntimeParams == nil {
		cc.RuntimeParams = map[string]string{}
	}
	if cc.RuntimeParams["application_name"] == "" {
		host, _ := os.Hostname()
		cc.RuntimeParams["application_name"] = fmt.Sprintf("ork pid %d on %s", os.Getpid(), host)
	}
	// Times in JSON built by SQL (attempts) are written in UTC.
	cc.RuntimeParams["timezone"] = "UTC"
	if cfg.MaxConns < 8 {
		cfg.MaxConns = 8
	}
	d := &DB{
		cfg:     cfg,
		log:     opts.Logger,
		changes: make(chan struct{}, 1),
		stop:    make(chan struct{}),
		where:   fmt.Sprintf("PostgreSQL %s:%d/%s", cc.Host, cc.Port, cc.Database),
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	d.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, d.connError(err)
	}
	pctx, cancel := context.WithTimeout(ctx, cc.ConnectTimeout+time.Second)
	defer cancel()
	var schema *string
	if err := d.pool.QueryRow(pctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		d.pool.Close()
		return nil, d.connError(err)
	}
	if schema == nil {
		d.pool.Close()
		return nil, fmt.Errorf("%s: no schema of the search_path exists (%s)", d.where, cc.RuntimeParams["search_path"])
	}
	d.schema = *schema
	sum := md5.Sum([]byte(d.schema))
	d.channel = "ork_" + hex.EncodeToString(sum[:])
	if d.schema != "public" {
		d.where += " (schema " + d.schema + ")"
	}
	if opts.Migrate {
		if d.applied, err = d.Migrate(ctx); err != nil {
			d.pool.Close()
			return nil, err
		}
	} else if err := d.checkSchema(pctx); err != nil {
		d.pool.Close()
		return nil, err
	}
	return d, nil
}

// Applied returns the names of the migrations Open applied (with
// Options.Migrate), oldest first; none when the schema was up to date.
func (d *DB) Applied() []string { return d.applied }

// String names the database for people: host, port, database, schema.
func (d *DB) String() string { return d.where }

// Schema returns the schema the tables live in.
func (d *DB) Schema() string { return d.schema }

// Close stops the listener and closes every connection.
func (d *DB) Close() error {
	d.closeOnce.Do(func() {
		close(d.stop)
		d.wg.Wait()
		d.pool.Close()
	})
	return nil
}

// connError turns a failure to connect into one line that says what
// failed: the server cannot be reached, or refused the login, or has no
// such database.
func (d *DB) connError(err error) error {
	if err == nil {
		return nil
	}
	cc := d.cfg.ConnConfig
	at := cc.Host + ":" + strconv.Itoa(int(cc.Port))
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "28P01", "28000":
			return &connErr{fmt.Sprintf("PostgreSQL at %s refused the login of user %q: %s", at, cc.User, pe.Message), err}
		case "3D000":
			return &connErr{fmt.Sprintf("PostgreSQL at %s: %s", at, pe.Message), err}
		}
	}
	var ne net.Error
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
		var cause string
		var op *net.OpError
		switch {
		case errors.Is(err, context.DeadlineExceeded) || (ne != nil && ne.Timeout()):
			cause = fmt.Sprintf("no answer within %s", cc.ConnectTimeout)
		case errors.As(err, &op):
			cause = op.Error()
		default:
			// pgconn lists one line per attempt (TLS, then plain): say
			// how the last one failed.
			lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
			cause = strings.TrimSpace(lines[len(lines)-1])
			if _, after, ok := strings.Cut(cause, "): "); ok {
				cause = after
			}
		}
		return &connErr{fmt.Sprintf("cannot reach PostgreSQL at %s: %s", at, cause), err}
	}
	return err
}

// connErr is a connection failure said in one line; it keeps the error it
// says, for errors.As.
type connErr struct {
	msg string
	err error
}

func (e *connErr) Error() string { return e.msg }
func (e *connErr) Unwrap() error { return e.err }

// ---- change notifications ----

// Changes returns a channel that receives when another process (or this
// one) creates a run, requests a cancel, reopens a run or changes a
// workflow, or when a scheduler leaves or is reaped (its runs are free):
// the triggers of the schema, and Leave and Reap, notify its channel, and
// a listener connection turns each notification into a receive. Each time the
// listener (re)connects it signals once, since changes made before its
// LISTEN took effect were not notified to it.
func (d *DB) Changes() <-chan struct{} {
	d.listenOnce.Do(func() {
		d.wg.Add(1)
		go d.listenLoop(context.Background(), listener{
			channel:  d.channel,
			what:     "changes",
			ready:    d.signal,
			notified: func(string) { d.signal() },
		}, nil)
	})
	return d.changes
}

func (d *DB) signal() {
	select {
	case d.changes <- struct{}{}:
	default:
	}
}

// A listener LISTENs to one channel on a connection of its own
// (listenLoop).
type listener struct {
	channel string
	// what it listens for, in the log ("changes"): losses and recoveries
	// are logged. "" logs nothing.
	what string
	// ready is called each time LISTEN takes effect on a connection that
	// listenLoop made: what was notified before was missed, look again.
	ready func()
	// notified is called with the payload of each notification.
	notified func(payload string)
}

// listenConn connects and LISTENs to channel.
func (d *DB) listenConn(ctx context.Context, channel string) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, d.cfg.ConnConfig.Copy())
	if err != nil {
		return nil, d.connError(err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return conn, nil
}

// listenLoop runs l until ctx ends or the DB closes; the caller did
// d.wg.Add(1), so Close waits for it. conn is a connection listenConn made
// for l, or nil: listenLoop connects at once. A lost connection is made
// again with backoff (100ms, doubling up to 5s, from 100ms again once
// connected).
func (d *DB) listenLoop(ctx context.Context, l listener, conn *pgx.Conn) {
	defer d.wg.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-d.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	backoff := 100 * time.Millisecond
	lost := false
	for {
		var err error
		if conn == nil {
			if conn, err = d.listenConn(ctx, l.channel); err == nil {
				if lost && l.what != "" {
					d.log.Info("listening for "+l.what+" again", "db", d.where)
				}
				lost = false
				backoff = 100 * time.Millisecond
				l.ready()
			}
		}
		if conn != nil {
			err = waitNotifications(ctx, conn, l.notified)
			conn.Close(context.WithoutCancel(ctx))
			conn = nil
		}
		if ctx.Err() != nil {
			return
		}
		if !lost && l.what != "" {
			d.log.Warn("lost the connection that listens for "+l.what+"; reconnecting", "db", d.where, "err", err)
		}
		lost = true
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// waitNotifications passes each notification conn receives to notified
// until conn fails.
func waitNotifications(ctx context.Context, conn *pgx.Conn, notified func(payload string)) error {
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		notified(n.Payload)
	}
}

// ---- the end of one run ----

var _ model.RunWatcher = (*DB)(nil)

// WatchRun tells fn when run runID may have ended: a connection of its own
// LISTENs on the schema's channel of ended runs, which a trigger on runs
// notifies with the id of each run that ends (migration 0004). fn is also
// called each time the connection is made again after a loss — an end
// notified meanwhile was missed — so that the caller looks again. The
// watch logs nothing: its caller looks at the run from time to time
// anyway.
func (d *DB) WatchRun(ctx context.Context, runID string, fn func()) error {
	channel := d.channel + "_ended"
	conn, err := d.listenConn(ctx, channel)
	if err != nil {
		return err
	}
	d.wg.Add(1)
	go d.listenLoop(ctx, listener{
		channel: channel,
		ready:   fn,
		notified: func(payload string) {
			if payload == runID {
				fn()
			}
		},
	}, conn)
	return nil
}

// ---- the scheduler lock ----

const lockKeySQL = `hashtext('scheduler:' || current_schema())`

// LockScheduler makes sure only one scheduler serves the schema: a session
// advisory lock, held on a connection of its own for as long as the
// scheduler runs. PostgreSQL releases it when that connection ends, so a
// dead scheduler never leaves a stale lock. If the connection is lost under
// a running scheduler, the lock is taken again on a new connection (with
// backoff) as soon as the database is back.
func (d *DB) LockScheduler(ctx context.Context) (func(), error) {
	conn, ok, err := d.tryLock(ctx)
	if err != nil {
		return nil, err
	}
	if !ok {
		holder, _ := d.SchedulerHolder(ctx)
		if holder == "" {
			holder = "unknown session"
		}
		return nil, &model.LockedError{Where: d.where, Holder: holder}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go d.keepLock(conn, stop, done)
	var once sync.Once
	return func() {
		once.Do(func() {
			close(stop)
			<-done
		})
	}, nil
}

func (d *DB) tryLock(ctx context.Context) (*pgx.Conn, bool, error) {
	cctx, cancel := context.WithTimeout(ctx, d.cfg.ConnConfig.ConnectTimeout+time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, d.cfg.ConnConfig.Copy())
	if err != nil {
		return nil, false, d.connError(err)
	}
	var ok bool
	if err := conn.QueryRow(cctx, `SELECT pg_try_advisory_lock($1, `+lockKeySQL+`)`, lockSpace).Scan(&ok); err != nil {
		conn.Close(context.Background())
		return nil, false, d.connError(err)
	}
	if !ok {
		conn.Close(context.Background())
		return nil, false, nil
	}
	return conn, true, nil
}

// keepLock watches the lock's connection and takes the lock again when the
// connection was lost.
func (d *DB) keepLock(conn *pgx.Conn, stop, done chan struct{}) {
	defer close(done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-stop:
			if conn != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				conn.Exec(ctx, `SELECT pg_advisory_unlock($1, `+lockKeySQL+`)`, lockSpace)
				conn.Close(ctx)
				cancel()
			}
			return
		case <-tick.C:
		}
		if conn != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := conn.Ping(ctx)
			cancel()
			if err == nil {
				continue
			}
			d.log.Warn("lost the connection that holds the scheduler lock; taking it again when the database is back", "db", d.where, "err", err)
			conn.Close(context.Background())
			conn = nil
		}
		c, ok, err := d.tryLock(context.Background())
		switch {
		case err != nil:
			backoff = min(backoff*2, 5*time.Second)
			tick.Reset(backoff)
		case !ok:
			d.log.Error("another scheduler took the lock while the database was away", "db", d.where)
			tick.Reset(5 * time.Second)
		default:
			d.log.Info("scheduler lock taken again", "db", d.where)
			conn = c
			backoff = 100 * time.Millisecond
			tick.Reset(time.Second)
		}
	}
}

// SchedulerHolder describes the session that holds the scheduler lock of
// the schema ("ork pid 123 on host since ..."), or "" when none does.
func (d *DB) SchedulerHolder(ctx context.Context) (string, error) {
	return again(ctx, func() (string, error) { return d.schedulerHolder(ctx) })
}

// schedulerHolder is SchedulerHolder, tried once.
func (d *DB) schedulerHolder(ctx context.Context) (string, error) {
	var app, addr string
	var since time.Time
	err := d.pool.QueryRow(ctx, `SELECT a.application_name, coalesce(host(a.client_addr), 'local socket'), a.backend_start
		FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND l.classid = $1::int4::oid AND l.objid = (`+lockKeySQL+`)::oid AND l.objsubid = 2`, lockSpace).Scan(&app, &addr, &since)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", d.connError(err)
	}
	if app == "" {
		app = "a session"
	}
	return fmt.Sprintf("%s (from %s) since %s", app, addr, since.UTC().Format(time.RFC3339)), nil
}
