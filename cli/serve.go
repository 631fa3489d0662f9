package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ork-run/ork/filedb"
	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/web"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve the web UI and JSON API (and run the scheduler, unless --no-scheduler)",
		Description: "Open the printed address in a browser. The UI shows workflows, runs, each run's DAG, tasks,\n" +
			"timeline and logs, live; it triggers, cancels and retries runs. There is no authentication:\n" +
			"keep the default loopback address unless the network is trusted.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:4000", EnvVars: []string{"ORK_ADDR"}, Usage: "listen on `HOST:PORT` (port 0: any free port)"},
			&cli.BoolFlag{Name: "no-scheduler", Usage: "serve the UI only, beside a scheduler run by `ork run`"},
		}, runFlags()...),
		Action: cmdServe,
	}
}

func cmdServe(c *cli.Context) error {
	level := slog.LevelInfo
	if c.Bool("verbose") {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level}))
	db, err := openDB(c, log)
	if err != nil {
		return err
	}
	defer db.Close()
	withScheduler := !c.Bool("no-scheduler")
	if h := filedb.LockHolder(orkDir(c)); withScheduler && h != "" {
		return fmt.Errorf("another scheduler is running on %s (%s): stop it, or serve beside it with --no-scheduler", orkDir(c), h)
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()

	addr := c.String("addr")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	loopback := web.IsLoopbackAddr(addr)
	if !loopback {
		fmt.Fprintf(c.App.ErrWriter, "warning: listening on %s, which is not a loopback address: ork serve has no authentication, so anyone who can reach it can see, trigger, cancel and retry runs\n", ln.Addr())
	}
	srv, err := web.New(ctx, db, web.Options{Logger: log, LoopbackOnly: loopback, CheckWorkflow: executorsBuilt})
	if err != nil {
		ln.Close()
		return err
	}

	schedDone := make(chan error, 1)
	var schedCtx context.Context
	var stopSched context.CancelFunc = func() {}
	if withScheduler {
		s, err := newScheduler(c, db, log)
		if err != nil {
			ln.Close()
			return err
		}
		schedCtx, stopSched = context.WithCancel(context.WithoutCancel(ctx))
		go func() { schedDone <- s.Run(schedCtx) }()
	}
	defer stopSched()

	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		// Event streams and followed logs end with the server.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	mode := "with the scheduler"
	if !withScheduler {
		mode = "without a scheduler (run one with `ork run`)"
	}
	fmt.Fprintf(c.App.Writer, "ork serve: http://%s/ (%s)\n", ln.Addr(), mode)

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-served:
		runErr = fmt.Errorf("serve: %w", err)
	case err := <-schedDone:
		var le *model.LockedError
		if errors.As(err, &le) {
			err = fmt.Errorf("%w: stop it, or serve beside it with --no-scheduler", err)
		}
		runErr = fmt.Errorf("scheduler stopped: %v", err)
		withScheduler = false
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	hs.Shutdown(sctx)
	if withScheduler {
		// The scheduler stops last, gracefully, as `ork run` does.
		stopSched()
		if err := <-schedDone; err != nil && runErr == nil {
			runErr = fmt.Errorf("scheduler: %w", err)
		}
	}
	return runErr
}
