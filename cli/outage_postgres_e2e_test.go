//go:build postgres && unix

package cli

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/pgdb/pgdbtest"
)

// Three `ork run` on one database lose it in the middle of their runs —
// every connection dropped, new ones refused for three seconds, as when
// the server restarts — and go on once it is back: every run succeeds,
// every task runs exactly once, in its first attempt, nobody is reaped,
// and all three are still live.
func TestPostgresE2EOutageUnderThreeSchedulers(t *testing.T) {
	p := newPGProject(t)
	p.mustRun("init")
	pu, err := url.Parse(p.url)
	if err != nil {
		t.Fatal(err)
	}
	px := pgdbtest.NewProxy(t, pu.Host)
	// The schedulers reach the database through the proxy; the commands
	// that look on go to it directly.
	via := &pgProject{t: t, dir: p.dir, url: px.Through(t, p.url)}

	marks := filepath.Join(p.dir, "marks")
	if err := os.Mkdir(marks, 0o755); err != nil {
		t.Fatal(err)
	}
	writeScript(t, p.dir, "work.sh", "#!/bin/sh\necho \"$ORK_ATTEMPT $ORK_SCHEDULER\" >> "+marks+"/$ORK_TASK_ID\nsleep 0.2\n")
	const runs, perRun = 6, 50
	p.mustRun("create-workflow", "--name", "work", "--job-name", "work.sh", "--task-count", "50")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var ss []*pgScheduler
	for range 3 {
		ss = append(ss, via.startScheduler(ctx))
	}
	waitFor(t, 20*time.Second, "three live schedulers", func() bool { return len(p.schedulers()) == 3 })
	var ids []string
	for range runs {
		out, _ := p.mustRun("trigger", "work")
		ids = append(ids, runID(t, out))
	}
	waitFor(t, 60*time.Second, "some tasks to run", func() bool {
		ents, _ := os.ReadDir(marks)
		return len(ents) >= 40
	})
	px.Cut()
	time.Sleep(3 * time.Second)
	ents, _ := os.ReadDir(marks)
	if len(ents) >= runs*perRun {
		t.Fatalf("every task had started before the database came back: the outage was not mid-run")
	}
	t.Logf("%d of %d tasks started when the database came back", len(ents), runs*perRun)
	px.Restore()

	for id, st := range p.waitRuns(ids, 3*time.Minute) {
		if st != "success" && slices.Contains(ids, id) {
			t.Errorf("run %s: %s", id, st)
		}
	}
	type task struct {
		ID       string `json:"id"`
		Status   string `json:"status"`
		Attempt  int    `json:"attempt"`
		Attempts []struct {
			Status string `json:"status"`
		} `json:"attempts"`
	}
	n := 0
	for _, id := range ids {
		out, _ := p.mustRun("tasks", id, "--json")
		var ts []task
		decodeJSON(t, "tasks --json", out, &ts)
		if len(ts) != perRun {
			t.Errorf("run %s: %d tasks, want %d", id, len(ts), perRun)
		}
		for _, tk := range ts {
			n++
			if tk.Status != "success" || tk.Attempt != 1 || len(tk.Attempts) != 1 {
				t.Errorf("run %s: task %+v, want success in its one attempt", id, tk)
			}
			b, err := os.ReadFile(filepath.Join(marks, tk.ID))
			if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); err != nil || len(lines) != 1 || !strings.HasPrefix(lines[0], "1 ") {
				t.Errorf("run %s: task %s ran %q (%v), want once, in attempt 1", id, tk.ID, b, err)
			}
		}
	}
	if ents, _ := os.ReadDir(marks); len(ents) != n {
		t.Errorf("%d tasks ran, %d recorded", len(ents), n)
	}
	live := p.schedulers()
	for _, s := range ss {
		if !slices.ContainsFunc(live, func(i model.SchedulerInfo) bool { return i.ID == s.id }) {
			t.Errorf("scheduler %s is not live after the outage:\n%s", s.id, s.out)
		}
		select {
		case <-s.exited:
			t.Errorf("scheduler %s exited after the outage:\n%s", s.id, s.out)
		default:
		}
	}
}
