package cli

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ork-run/ork/model"
)

// schedulersCommand is `ork schedulers`: the schedulers serving the
// database. On PostgreSQL (a model.Cluster) they are the live members with
// their heartbeats and what they hold; on the file database, the one that
// holds the directory's lock, or none.
func schedulersCommand(jsonFlag cli.Flag) *cli.Command {
	return &cli.Command{
		Name:   "schedulers",
		Usage:  "list the schedulers serving the database: heartbeat, leader, runs and tasks held",
		Flags:  []cli.Flag{jsonFlag},
		Action: cmdSchedulers,
	}
}

func cmdSchedulers(c *cli.Context) error {
	db, err := openDB(c, slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	defer db.Close()
	w := c.App.Writer
	cl, ok := db.(model.Cluster)
	if !ok {
		holder := schedulerHolder(c, db)
		if c.Bool("json") {
			return printJSON(w, map[string]any{"holder": holder, "running": holder != ""})
		}
		if holder == "" {
			fmt.Fprintln(w, "none: no scheduler serves this directory (start one with `ork run`)")
		} else {
			fmt.Fprintf(w, "one scheduler serves this directory: %s\n", holder)
		}
		return nil
	}
	ss, err := liveSchedulers(c.Context, cl)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		if ss == nil {
			ss = []model.SchedulerInfo{}
		}
		return printJSON(w, ss)
	}
	if len(ss) == 0 {
		fmt.Fprintln(w, "none: no scheduler serves this database (start one with `ork run`)")
		return nil
	}
	now := time.Now()
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tHOST\tPID\tSTARTED\tHEARTBEAT\tLEADER\tRUNS\tTASKS")
	for _, s := range ss {
		leader := ""
		if s.Leader {
			leader = fmt.Sprintf("yes (term %d)", s.Term)
		}
		hb := fmt.Sprintf("%s ago", now.Sub(s.Heartbeat).Round(100*time.Millisecond))
		if s.Expired(now) {
			hb += ", expired"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%d\t%d\n", s.ID, s.Host, s.PID, fmtTime(&s.StartedAt), hb, leader, s.Runs, s.Tasks)
	}
	return tw.Flush()
}

func liveSchedulers(ctx context.Context, cl model.Cluster) ([]model.SchedulerInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ss, err := cl.Schedulers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list schedulers: %w", err)
	}
	return ss, nil
}

// schedulersLine is the line of `ork status` about the schedulers serving
// db.
func schedulersLine(c *cli.Context, db model.Database) string {
	cl, ok := db.(model.Cluster)
	if !ok {
		if h := schedulerHolder(c, db); h != "" {
			return "Scheduler: running (" + h + ")"
		}
		return "Scheduler: none (start one with `ork run`)"
	}
	ss, err := liveSchedulers(c.Context, cl)
	if err != nil {
		return "Schedulers: unknown (" + err.Error() + ")"
	}
	ss, expired := unexpired(ss, time.Now())
	stale := ""
	if expired > 0 {
		stale = fmt.Sprintf("; %d whose heartbeat stopped, not yet reaped", expired)
	}
	if len(ss) == 0 {
		return "Schedulers: none" + stale + " (start one with `ork run`)"
	}
	var ids []string
	for _, s := range ss {
		id := s.ID
		if s.Leader {
			id += " (leader)"
		}
		ids = append(ids, id)
	}
	return fmt.Sprintf("Schedulers: %d live: %s%s (`ork schedulers` for more)", len(ss), strings.Join(ids, ", "), stale)
}

// unexpired keeps the schedulers whose lease has not ended by now, and
// counts the others. A scheduler killed with kill -9 stays listed until a
// leader reaps it; when it was the last one, nobody does (the next
// scheduler to start will): it must not count as serving the database, or
// `ork trigger --wait` would wait on it for ever. Now is this host's
// clock: a host whose clock runs ahead may take a live scheduler for dead,
// and then starts one more, which is harmless.
func unexpired(ss []model.SchedulerInfo, now time.Time) (live []model.SchedulerInfo, expired int) {
	for _, s := range ss {
		if s.Expired(now) {
			expired++
			continue
		}
		live = append(live, s)
	}
	return live, expired
}
