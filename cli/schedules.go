package cli

import (
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	// The time zones of schedules, in the binary: a machine without a
	// zoneinfo database reads "Europe/Berlin" all the same.
	_ "time/tzdata"

	"github.com/urfave/cli/v2"

	"github.com/ork-run/ork/model"
)

// scheduleCommands are `ork schedules`, `ork pause` and `ork unpause`.
func scheduleCommands() []*cli.Command {
	return []*cli.Command{
		{
			Name:   "schedules",
			Usage:  "list the scheduled workflows: expression, time zone, paused or not, last and next run",
			Flags:  []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON instead of a table"}},
			Action: cmdSchedules,
		},
		{
			Name:      "pause",
			Usage:     "pause a workflow's schedule: its ticks pass without runs (triggers still work)",
			ArgsUsage: "NAME",
			Action:    func(c *cli.Context) error { return cmdSetPaused(c, true) },
		},
		{
			Name:      "unpause",
			Usage:     "resume a paused schedule from its next tick",
			ArgsUsage: "NAME",
			Action:    func(c *cli.Context) error { return cmdSetPaused(c, false) },
		},
	}
}

// scheduleRow is one line of `ork schedules`, and its JSON.
type scheduleRow struct {
	Workflow  string     `json:"workflow"`
	Cron      string     `json:"cron"`
	Timezone  string     `json:"timezone"`
	Catchup   bool       `json:"catchup"`
	Overlap   string     `json:"overlap"`
	Paused    bool       `json:"paused"`
	PausedAt  *time.Time `json:"paused_at,omitempty"`
	LastTick  *time.Time `json:"last_tick,omitempty"`
	LastRunID string     `json:"last_run_id,omitempty"`
	Next      *time.Time `json:"next,omitempty"`
}

// nextTick returns when a schedule in state st fires next, seen at now: the
// first tick after the latest one due (a scheduler that is down fires
// that one when it starts), or after now for one that has not started.
func nextTick(k *model.Ticks, st model.ScheduleState, now time.Time) time.Time {
	if st.Through.IsZero() {
		return k.Next(now)
	}
	if due, _ := k.Due(st.Through, now, 1); len(due) > 0 {
		return k.Next(due[0])
	}
	return k.Next(st.Through)
}

func cmdSchedules(c *cli.Context) error {
	db, err := openDB(c, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	ws, lerr := db.ListWorkflows(c.Context)
	now := time.Now()
	rows := []scheduleRow{}
	for _, w := range ws {
		if w.Schedule == nil {
			continue
		}
		k, err := w.Schedule.Parse()
		if err != nil {
			lerr = errors.Join(lerr, fmt.Errorf("workflow %s: %w", w.Name, err))
			continue
		}
		st, err := scheduleStore(db).ScheduleState(c.Context, w.Name)
		if err != nil {
			lerr = errors.Join(lerr, err)
			continue
		}
		row := scheduleRow{
			Workflow: w.Name, Cron: w.Schedule.Cron, Timezone: w.Schedule.Location(),
			Catchup: w.Schedule.Catchup, Overlap: w.Schedule.OverlapPolicy(),
			Paused: st.Paused, PausedAt: st.PausedAt, LastTick: st.LastTick, LastRunID: st.LastRunID,
		}
		if n := nextTick(k, st, now); !n.IsZero() {
			row.Next = &n
		}
		rows = append(rows, row)
	}
	if c.Bool("json") {
		if err := printJSON(c.App.Writer, rows); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "WORKFLOW\tCRON\tTIMEZONE\tSTATE\tLAST\tNEXT")
		for _, r := range rows {
			state := "active"
			if r.Paused {
				state = "paused"
			}
			next := fmtTime(r.Next)
			if r.Paused && r.Next != nil {
				next += " (paused)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Workflow, r.Cron, r.Timezone, state, fmtTime(r.LastTick), next)
		}
		tw.Flush()
		if len(rows) == 0 {
			fmt.Fprintln(c.App.ErrWriter, `no workflow has a schedule: add "schedule": {"cron": "..."} to a workflow file`)
		}
	}
	if lerr != nil {
		return fmt.Errorf("some workflows are left out: %w", lerr)
	}
	return nil
}

func cmdSetPaused(c *cli.Context, paused bool) error {
	if c.NArg() != 1 {
		return usageErr(c, "give the name of the workflow")
	}
	name := c.Args().First()
	db, err := openDB(c, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	w, err := db.GetWorkflow(c.Context, name)
	if err != nil {
		return notFoundHint(err, "`ork schedules` lists the scheduled workflows")
	}
	if w.Schedule == nil {
		return fmt.Errorf(`workflow %q has no schedule: add "schedule": {"cron": "..."} to its file`, name)
	}
	if err := scheduleStore(db).SetPaused(c.Context, name, paused); err != nil {
		return err
	}
	if paused {
		fmt.Fprintf(c.App.Writer, "paused %s: its ticks pass without runs until `ork unpause %s` (`ork trigger %s` still works)\n", name, name, name)
		return nil
	}
	fmt.Fprintf(c.App.Writer, "unpaused %s: it runs again from its next tick\n", name)
	return nil
}
