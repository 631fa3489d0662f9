//go:build unix

package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/ork-run/ork/filedb"
	"github.com/ork-run/ork/model"
)

// listedTasks is what `ork tasks` printed before it streamed the records:
// every record read (ListTasks), completed, then printed at once — the
// table through one tabwriter, the JSON with printJSON.
func listedTasks(t *testing.T, dir, id string, asJSON bool) string {
	t.Helper()
	d, err := filedb.Open(filepath.Join(dir, ".ork"), filedb.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	r, err := d.GetRun(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := d.ListTasks(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	ts = model.CompleteTasks(r, ts)
	var b bytes.Buffer
	if asJSON {
		if ts == nil {
			ts = []*model.Task{}
		}
		if err := printJSON(&b, ts); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tINDEX\tSTATUS\tATTEMPT\tEXIT\tDURATION\tERROR")
	for _, t := range ts {
		exit := "-"
		if t.ExitCode != nil {
			exit = fmt.Sprint(*t.ExitCode)
		}
		dur := "-"
		if t.Status == model.TaskRunning || t.Status.Terminal() {
			dur = fmtDur(t.StartedAt, t.FinishedAt)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\t%s\n", t.Name, t.TaskIndex, t.Status, t.Attempt, exit, dur, truncate(t.Error, 60))
		if len(t.Attempts) > 1 || (len(t.Attempts) == 1 && t.Attempt > 1) {
			for _, a := range t.Attempts {
				exit := "-"
				if a.ExitCode != nil {
					exit = fmt.Sprint(*a.ExitCode)
				}
				fmt.Fprintf(tw, "  └\t\t%s\t%d\t%s\t%s\t%s\n", a.Status, a.Attempt, exit, fmtDur(a.StartedAt, a.FinishedAt), truncate(a.Error, 60))
			}
		}
	}
	tw.Flush()
	return b.String()
}

// `ork tasks`, which reads a run's records one at a time as it prints them,
// prints what it printed when it read them all first: the same bytes, table
// and JSON, for a real DAG run (a node whose task failed after a retry,
// tasks of a node that never started, indexes past 9) and for a run not
// started yet.
func TestTasksStreamedPrintsAsListed(t *testing.T) {
	t.Parallel()
	dir := newDAGProject(t, map[string]string{
		"mix": `{"name": "mix", "retries": 1, "tasks": {
			"z": {"job_name": "flaky.sh", "task_count": 3},
			"b": {"job_name": "ok.sh", "task_count": 12},
			"m": {"job_name": "ok.sh", "depends_on": ["z"], "task_count": 2}}}`,
	}, map[string]string{
		"flaky.sh": "#!/bin/sh\n[ \"$ORK_TASK_INDEX\" = 1 ] && { echo no >&2; exit 3; }\nexit 0\n",
		"ok.sh":    "#!/bin/sh\nexit 0\n",
	})
	out, _, code := run(t, dir, "trigger", "mix", "--wait")
	if code == 0 {
		t.Fatalf("the run with a failing task succeeded:\n%s", out)
	}
	done := runID(t, out)
	pending := runID(t, mustRunOut(t, dir, "trigger", "mix"))
	for _, id := range []string{done, pending} {
		for _, asJSON := range []bool{false, true} {
			args := []string{"tasks", id}
			if asJSON {
				args = append(args, "--json")
			}
			got, _ := mustRun(t, dir, args...)
			if want := listedTasks(t, dir, id, asJSON); got != want {
				t.Errorf("ork %s printed\n%s\nwhere reading every record first printed\n%s", strings.Join(args, " "), got, want)
			}
		}
	}
	table, _ := mustRun(t, dir, "tasks", done)
	if !strings.Contains(table, "  └") || !strings.Contains(table, "b     11") {
		t.Errorf("the finished run's table lacks the attempts of the retried task or b[11]:\n%s", table)
	}
}

// On a run of more tasks than one block of the table, `ork tasks` prints
// its first lines before it reads the last record: the report of a damaged
// last record comes after them on the same output, and names the file.
// The JSON is still the same bytes, and the table the same rows, its
// columns never narrowing from one block to the next.
func TestTasksPrintsBeforeTheLastRecordIsRead(t *testing.T) {
	t.Parallel()
	const n = 2*taskBlockRows + 500
	dir := newProject(t)
	writeScript(t, dir, "ok.sh", "#!/bin/sh\nexit 0\n")
	mustRun(t, dir, "create-workflow", "--name", "big", "--job-name", "ok.sh", "--task-count", fmt.Sprint(n))
	id := runID(t, mustRunOut(t, dir, "trigger", "big"))

	// The records, as the scheduler writes them, without running n processes.
	func() {
		d, err := filedb.Open(filepath.Join(dir, ".ork"), filedb.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		ctx := context.Background()
		r, err := d.GetRun(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		ts := model.NewTasks(r, time.Now())
		for i, tk := range ts {
			if i%7 == 3 {
				continue // not created yet: listed pending
			}
			start := r.CreatedAt.Add(time.Duration(i) * time.Millisecond)
			end := start.Add(time.Duration(i%1500) * time.Second)
			code := i % 3
			tk.Status, tk.Attempt, tk.StartedAt, tk.FinishedAt, tk.ExitCode = model.TaskSuccess, 1, &start, &end, &code
			if code != 0 {
				tk.Status, tk.Error = model.TaskFailed, fmt.Sprintf("exit status %d", code)
			}
		}
		var rec []*model.Task
		for i, tk := range ts {
			if i%7 != 3 {
				rec = append(rec, tk)
			}
		}
		if err := d.CreateTasks(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}()

	if got, want := mustRunOut(t, dir, "tasks", id, "--json"), listedTasks(t, dir, id, true); got != want {
		t.Errorf("ork tasks --json of %d tasks differs from reading every record first (%d bytes against %d)", n, len(got), len(want))
	}
	got := strings.Split(mustRunOut(t, dir, "tasks", id), "\n")
	want := strings.Split(listedTasks(t, dir, id, false), "\n")
	if len(got) != len(want) {
		t.Fatalf("ork tasks printed %d lines, want %d", len(got), len(want))
	}
	cols := make([]int, 6)
	for i := range got {
		if strings.Join(strings.Fields(got[i]), " ") != strings.Join(strings.Fields(want[i]), " ") {
			t.Fatalf("line %d: %q, want the cells of %q", i, got[i], want[i])
		}
		// Where each cell starts: never left of where it started above.
		f := strings.Fields(got[i])
		at := 0
		for j := 0; j < len(f) && j < len(cols); j++ {
			at += strings.Index(got[i][at:], f[j])
			if at < cols[j] {
				t.Fatalf("line %d: column %d starts at %d, left of %d above:\n%s", i, j, at, cols[j], got[i])
			}
			cols[j] = at
			at += len(f[j])
		}
	}

	last := filepath.Join(dir, ".ork", "tasks", id, fmt.Sprintf("ok.sh.%d.json", n-1))
	if err := os.WriteFile(last, []byte(`{"id": "torn`), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	var both bytes.Buffer
	cmd := orkCmd(ctx, dir, "tasks", id)
	cmd.Stdout, cmd.Stderr = &both, &both // one pipe: the order of the writes
	if err := cmd.Run(); err != nil {
		t.Fatalf("ork tasks with a damaged record: %v\n%s", err, both.String())
	}
	out := both.String()
	first := strings.Index(out, "\nok.sh  0 ")
	report := strings.Index(out, fmt.Sprintf("ok.sh.%d.json", n-1))
	if first < 0 || report < 0 || report < first {
		t.Errorf("the first task's line (at %d) does not come before the report of the damaged last record (at %d):\n%.2000s", first, report, out)
	}
	if !strings.Contains(out, fmt.Sprintf("ok.sh  %d ", n-2)) {
		t.Errorf("the task before the damaged one is not listed")
	}
}
