//go:build postgres && unix

package cli

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

// pgScheduler is an `ork run` in the background on a pgProject.
type pgScheduler struct {
	out    *syncBuffer
	pid    int
	exited chan struct{}
	id     string
}

func (p *pgProject) startScheduler(ctx context.Context, args ...string) *pgScheduler {
	p.t.Helper()
	s := p.startProc(ctx, "scheduler started", append([]string{"run"}, args...)...)
	// "scheduler HOST:PID:RANDOM: several schedulers may serve ..."
	for _, l := range strings.Split(s.out.String(), "\n") {
		if rest, ok := strings.CutPrefix(l, "scheduler "); ok {
			if id, _, ok := strings.Cut(rest, ": several schedulers"); ok {
				s.id = id
			}
		}
	}
	if s.id == "" {
		p.t.Fatalf("ork run did not print its id and takeover bound:\n%s", s.out)
	}
	return s
}

// startProc starts `ork args...` in its own process group until the test
// ends (SIGTERM, then a kill 20s later) and waits until it prints ready.
func (p *pgProject) startProc(ctx context.Context, ready string, args ...string) *pgScheduler {
	p.t.Helper()
	s := &pgScheduler{out: &syncBuffer{}, exited: make(chan struct{})}
	cmd := p.cmd(ctx, args...)
	cmd.Stdout, cmd.Stderr = s.out, s.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	s.pid = cmd.Process.Pid
	go func() { cmd.Wait(); close(s.exited) }()
	p.t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
		}
	})
	waitFor(p.t, 20*time.Second, "ork "+args[0]+" starts", func() bool {
		select {
		case <-s.exited:
			p.t.Fatalf("ork %s exited:\n%s", args[0], s.out)
		default:
		}
		return strings.Contains(s.out.String(), ready)
	})
	return s
}

// schedulers is `ork schedulers --json`.
func (p *pgProject) schedulers() []model.SchedulerInfo {
	p.t.Helper()
	out, _ := p.mustRun("schedulers", "--json")
	var ss []model.SchedulerInfo
	decodeJSON(p.t, "schedulers --json", out, &ss)
	return ss
}

type clusterTask struct {
	Status    string `json:"status"`
	Attempt   int    `json:"attempt"`
	Scheduler string `json:"scheduler"`
	Attempts  []struct {
		Status string `json:"status"`
		Error  string `json:"error"`
	} `json:"attempts"`
}

// waitRuns waits until every run has ended, and returns their statuses.
func (p *pgProject) waitRuns(ids []string, timeout time.Duration) map[string]string {
	p.t.Helper()
	got := map[string]string{}
	waitFor(p.t, timeout, "every run ends", func() bool {
		out, _ := p.mustRun("status", "--json", "--limit", "0")
		var rs []jsonRun
		decodeJSON(p.t, "status --json", out, &rs)
		for _, r := range rs {
			got[r.ID] = r.Status
		}
		for _, id := range ids {
			if !model.RunStatus(got[id]).Terminal() {
				return false
			}
		}
		return true
	})
	return got
}

// Three `ork run` on one database share 2,000 tasks in 20 runs: each task
// runs once, all three run some; `ork schedulers` and `ork status` list
// them; each prints how soon another takes over if it dies.
func TestPostgresE2ESeveralSchedulers(t *testing.T) {
	p := newPGProject(t)
	p.mustRun("init")
	writeScript(t, p.dir, "ok.sh", "#!/bin/sh\nexit 0\n")
	p.mustRun("create-workflow", "--name", "many", "--job-name", "ok.sh", "--task-count", "100")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var ss []*pgScheduler
	for range 3 {
		ss = append(ss, p.startScheduler(ctx))
	}
	for _, s := range ss {
		if !strings.Contains(s.out.String(), "if this scheduler dies, another takes over its runs within about 21s") {
			t.Errorf("ork run does not print the takeover bound:\n%s", s.out)
		}
	}
	waitFor(t, 20*time.Second, "three live schedulers", func() bool { return len(p.schedulers()) == 3 })
	out, _ := p.mustRun("schedulers")
	for _, s := range ss {
		if !strings.Contains(out, s.id) {
			t.Errorf("ork schedulers does not list %s:\n%s", s.id, out)
		}
	}
	out, _ = p.mustRun("status")
	if !strings.Contains(out, "Schedulers: 3 live: ") {
		t.Errorf("ork status has no line about the three schedulers:\n%s", out)
	}

	var ids []string
	for range 20 {
		out, _ := p.mustRun("trigger", "many")
		ids = append(ids, runID(t, out))
	}
	for id, st := range p.waitRuns(ids, 4*time.Minute) {
		if st != "success" && slices.Contains(ids, id) {
			t.Errorf("run %s: %s", id, st)
		}
	}
	did := map[string]int{}
	for _, id := range ids {
		out, _ := p.mustRun("tasks", id, "--json")
		var ts []clusterTask
		decodeJSON(t, "tasks --json", out, &ts)
		if len(ts) != 100 {
			t.Fatalf("run %s: %d tasks, want 100", id, len(ts))
		}
		for _, task := range ts {
			if task.Status != "success" || task.Attempt != 1 || len(task.Attempts) != 1 {
				t.Errorf("run %s: task %+v, want success in its one attempt", id, task)
			}
			did[task.Scheduler]++
		}
	}
	for _, s := range ss {
		if did[s.id] == 0 {
			t.Errorf("scheduler %s ran no task: %v", s.id, did)
		}
	}
	t.Logf("tasks by scheduler: %v", did)
}

// One of three `ork run` is killed with kill -9 while its tasks run: the
// other two take over its runs within the bound it printed, stop what its
// tasks left running on this host, run them again, and finish every run.
func TestPostgresE2EKilledSchedulerIsTakenOver(t *testing.T) {
	p := newPGProject(t)
	p.mustRun("init")
	writeScript(t, p.dir, "nap.sh", "#!/bin/sh\nsleep 2\n")
	p.mustRun("create-workflow", "--name", "naps", "--job-name", "nap.sh", "--task-count", "20")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	victim := p.startScheduler(ctx)
	waitFor(t, 20*time.Second, "the first scheduler is live", func() bool { return len(p.schedulers()) == 1 })
	var ids []string
	for range 2 {
		out, _ := p.mustRun("trigger", "naps")
		ids = append(ids, runID(t, out))
	}
	// The victim holds both runs and runs their tasks; then the others start.
	waitFor(t, 20*time.Second, "the victim runs tasks", func() bool {
		ss := p.schedulers()
		return len(ss) == 1 && ss[0].Tasks > 0 && ss[0].Runs == 2
	})
	p.startScheduler(ctx)
	p.startScheduler(ctx)
	if err := syscall.Kill(victim.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.exited
	killedAt := time.Now()
	waitFor(t, 40*time.Second, "the victim's runs are taken over", func() bool {
		for _, s := range p.schedulers() {
			if s.ID == victim.id {
				return false
			}
		}
		for _, id := range ids {
			out, _ := p.mustRun("status", id, "--json")
			var r struct {
				Status    string `json:"status"`
				Scheduler string `json:"scheduler"`
			}
			decodeJSON(t, "status --json", out, &r)
			if r.Scheduler == victim.id || (r.Scheduler == "" && !model.RunStatus(r.Status).Terminal()) {
				return false
			}
		}
		return true
	})
	took := time.Since(killedAt)
	t.Logf("taken over %s after kill -9", took.Round(time.Millisecond))
	if took > 26*time.Second {
		t.Errorf("taken over %s after kill -9; ork run printed about 21s", took)
	}
	for id, st := range p.waitRuns(ids, 2*time.Minute) {
		if st != "success" && slices.Contains(ids, id) {
			t.Errorf("run %s: %s", id, st)
		}
	}
	interrupted := 0
	for _, id := range ids {
		out, _ := p.mustRun("tasks", id, "--json")
		var ts []clusterTask
		decodeJSON(t, "tasks --json", out, &ts)
		for _, task := range ts {
			if task.Status != "success" {
				t.Errorf("run %s: task %+v", id, task)
			}
			for _, a := range task.Attempts {
				if a.Status == string(model.AttemptInterrupted) {
					interrupted++
					if !strings.HasPrefix(a.Error, model.SchedulerDied) {
						t.Errorf("run %s: interrupted attempt %+v, want %q", id, a, model.SchedulerDied)
					}
				}
			}
		}
	}
	if interrupted == 0 {
		t.Error("no attempt recorded interrupted: the victim's running tasks were not recovered")
	}
}

// An `ork run` paused (SIGSTOP) for longer than its lease while it holds
// a run, with tasks running and more dispatched waiting for a slot, is
// reaped and its run taken over. Resumed (SIGCONT), it must start nothing
// more — its lease ran out, its dispatched tasks are another's to run —
// and exit fenced; every task runs once per attempt recorded.
func TestPostgresE2EPausedSchedulerStartsNothingWhenResumed(t *testing.T) {
	p := newPGProject(t)
	p.mustRun("init")
	marks := filepath.Join(p.dir, "marks")
	if err := os.Mkdir(marks, 0o755); err != nil {
		t.Fatal(err)
	}
	writeScript(t, p.dir, "nap.sh", "#!/bin/sh\necho \"$ORK_ATTEMPT $ORK_SCHEDULER\" >> "+marks+"/$ORK_TASK_ID\nsleep 2\n")
	p.mustRun("create-workflow", "--name", "naps", "--job-name", "nap.sh", "--task-count", "16")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	paused := p.startScheduler(ctx)
	waitFor(t, 20*time.Second, "the first scheduler is live", func() bool { return len(p.schedulers()) == 1 })
	out, _ := p.mustRun("trigger", "naps")
	id := runID(t, out)
	// Eight tasks run (the default --max-running-tasks), the other eight
	// are dispatched to it, waiting for a slot.
	waitFor(t, 20*time.Second, "8 tasks running and 8 dispatched", func() bool {
		out, _ := p.mustRun("tasks", id, "--json")
		var ts []clusterTask
		decodeJSON(t, "tasks --json", out, &ts)
		n := map[string]int{}
		for _, tk := range ts {
			n[tk.Status]++
		}
		return n["running"] == 8 && n["dispatched"] == 8
	})
	if err := syscall.Kill(paused.pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	defer func() {
		if stopped {
			syscall.Kill(paused.pid, syscall.SIGCONT)
		}
	}()
	other := p.startScheduler(ctx)
	waitFor(t, 60*time.Second, "the paused scheduler's run is taken over", func() bool {
		out, _ := p.mustRun("status", id, "--json")
		var r struct {
			Scheduler string `json:"scheduler"`
		}
		decodeJSON(t, "status --json", out, &r)
		return r.Scheduler == other.id
	})
	before := map[string]string{}
	for _, e := range mustReadDir(t, marks) {
		b, _ := os.ReadFile(filepath.Join(marks, e.Name()))
		before[e.Name()] = string(b)
	}
	if err := syscall.Kill(paused.pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	stopped = false
	select {
	case <-paused.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("the resumed scheduler did not exit:\n%s", paused.out)
	}
	if !strings.Contains(paused.out.String(), "was reaped") {
		t.Errorf("the resumed scheduler did not say it was reaped:\n%s", paused.out)
	}
	if st := p.waitRuns([]string{id}, 2*time.Minute)[id]; st != "success" {
		t.Errorf("run %s: %s, want success", id, st)
	}
	out, _ = p.mustRun("tasks", id, "--json")
	var ts []struct {
		ID       string `json:"id"`
		Status   string `json:"status"`
		Attempts []struct {
			Attempt int    `json:"attempt"`
			Status  string `json:"status"`
		} `json:"attempts"`
	}
	decodeJSON(t, "tasks --json", out, &ts)
	for _, tk := range ts {
		b, _ := os.ReadFile(filepath.Join(marks, tk.ID))
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		seen := map[string]bool{}
		for _, l := range lines {
			att, sch, _ := strings.Cut(l, " ")
			if seen[att] {
				t.Errorf("task %s: attempt %s started twice: %q", tk.ID, att, b)
			}
			seen[att] = true
			if sch == paused.id && !strings.Contains(before[tk.ID], l) {
				t.Errorf("task %s: the resumed scheduler started attempt %s after its lease ran out: %q", tk.ID, att, b)
			}
		}
		if tk.Status != "success" {
			t.Errorf("task %s: %s, want success", tk.ID, tk.Status)
		}
		if len(lines) > len(tk.Attempts) {
			t.Errorf("task %s ran %d times (%q), with %d attempts recorded", tk.ID, len(lines), b, len(tk.Attempts))
		}
	}
	if t.Failed() {
		out, _ := p.mustRun("tasks", id)
		t.Logf("ork tasks:\n%s\nthe paused scheduler:\n%s\nthe other:\n%s", out, paused.out, other.out)
	}
}

func mustReadDir(t *testing.T, dir string) []os.DirEntry {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ents
}

// `ork serve` beside two `ork run` on one database starts its scheduler as
// one more of the database's schedulers (on files it would refuse), and
// the three share the work.
func TestPostgresE2EServeBesideSchedulers(t *testing.T) {
	p := newPGProject(t)
	p.mustRun("init")
	writeScript(t, p.dir, "ok.sh", "#!/bin/sh\nexit 0\n")
	p.mustRun("create-workflow", "--name", "ok", "--job-name", "ok.sh", "--task-count", "5")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p.startScheduler(ctx)
	p.startScheduler(ctx)
	s := p.startProc(ctx, "(with the scheduler)", "serve", "--addr", "127.0.0.1:0")
	waitFor(t, 20*time.Second, "its scheduler starts", func() bool { return strings.Contains(s.out.String(), "scheduler started") })
	waitFor(t, 20*time.Second, "three live schedulers", func() bool { return len(p.schedulers()) == 3 })
	var ids []string
	for range 3 {
		o, _ := p.mustRun("trigger", "ok")
		ids = append(ids, runID(t, o))
	}
	for id, st := range p.waitRuns(ids, time.Minute) {
		if st != "success" && slices.Contains(ids, id) {
			t.Errorf("run %s: %s", id, st)
		}
	}
}

// The last `ork run` on a database is killed with kill -9 mid-run. Once
// its lease has ended nobody serves the database, though no leader is left
// to reap it: `ork status` says so, and `ork trigger --wait` runs a
// scheduler in-process until its run ends, rather than waiting for ever on
// a scheduler that is gone; `ork cancel` of the dead one's run says the
// next `ork run` applies it, rather than waiting on nobody; and it does.
func TestPostgresE2ETriggerWaitAfterTheLastSchedulerDied(t *testing.T) {
	p := newPGProject(t)
	p.mustRun("init")
	writeScript(t, p.dir, "nap.sh", "#!/bin/sh\nsleep 1\n")
	p.mustRun("create-workflow", "--name", "naps", "--job-name", "nap.sh", "--task-count", "4")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	victim := p.startScheduler(ctx)
	out, _ := p.mustRun("trigger", "naps")
	first := runID(t, out)
	waitFor(t, 20*time.Second, "the scheduler runs tasks", func() bool {
		ss := p.schedulers()
		return len(ss) == 1 && ss[0].Tasks > 0
	})
	if err := syscall.Kill(victim.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.exited
	// Its lease ends (15s by default): it is dead, listed until reaped.
	waitFor(t, 30*time.Second, "the dead scheduler's lease to end", func() bool {
		ss := p.schedulers()
		return len(ss) == 1 && ss[0].Expired(time.Now())
	})
	if out, _ := p.mustRun("status"); !strings.Contains(out, "Schedulers: none; 1 whose heartbeat stopped, not yet reaped") {
		t.Errorf("ork status after the last scheduler died:\n%s\nwant it to say none serves the database", out)
	}
	wctx, wcancel := context.WithTimeout(ctx, 90*time.Second)
	defer wcancel()
	var stdout, stderr syncBuffer
	cmd := p.cmd(wctx, "trigger", "naps", "--wait")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ork trigger --wait after the last scheduler died: %v (context: %v)\nstdout:\n%s\nstderr:\n%s", err, wctx.Err(), stdout.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), " success in ") {
		t.Errorf("ork trigger --wait did not report success:\n%s", stderr.String())
	}
	// The dead scheduler's run waits for the next `ork run` (the
	// in-process scheduler ends with its own run, before it may reap): a
	// cancel is requested at once, for that one to apply.
	out, _ = p.mustRun("cancel", first)
	if want := "no scheduler is live to apply it (its scheduler stopped): the next `ork run` will"; !strings.Contains(out, want) {
		t.Errorf("ork cancel of the dead scheduler's run says %q, want %q", out, want)
	}
	p.startScheduler(ctx)
	for id, st := range p.waitRuns([]string{first}, time.Minute) {
		if id == first && st != "cancelled" {
			t.Errorf("the dead scheduler's run %s: %s, want cancelled by the next ork run", id, st)
		}
	}
}
