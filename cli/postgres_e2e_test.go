//go:build postgres && unix

package cli

import (
	"context"
	"fmt"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ork-run/ork/pgdb/pgdbtest"
)

// orkPG is the ork binary built with -tags postgres, once, beside orkBin.
var (
	orkPG      string
	orkPGOnce  sync.Once
	orkPGError error
)

func pgBinary(t *testing.T) string {
	t.Helper()
	orkPGOnce.Do(func() {
		orkPG = filepath.Join(filepath.Dir(orkBin), "ork-postgres")
		out, err := osexec.Command("go", "build", "-tags", "postgres", "-o", orkPG, "..").CombinedOutput()
		if err != nil {
			orkPGError = fmt.Errorf("go build -tags postgres: %v\n%s", err, out)
		}
	})
	if orkPGError != nil {
		t.Fatal(orkPGError)
	}
	return orkPG
}

// pgProject is a project directory whose ork uses its own PostgreSQL schema
// (through ORK_DATABASE_URL, as a user would set it).
type pgProject struct {
	t   *testing.T
	dir string
	url string
}

func newPGProject(t *testing.T) *pgProject {
	t.Helper()
	p := &pgProject{t: t, dir: t.TempDir(), url: pgdbtest.URL(t)}
	pgBinary(t)
	return p
}

func (p *pgProject) cmd(ctx context.Context, args ...string) *osexec.Cmd {
	cmd := osexec.CommandContext(ctx, orkPG, args...)
	cmd.Dir = p.dir
	cmd.Env = append(orkEnv(), "ORK_DATABASE_URL="+p.url)
	return cmd
}

// run runs the postgres ork with args and returns its output and exit code.
func (p *pgProject) run(args ...string) (stdout, stderr string, code int) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	var out, errb syncBuffer
	cmd := p.cmd(ctx, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		p.t.Fatalf("ork %s: still running after %s\nstderr:\n%s", strings.Join(args, " "), cmdTimeout, errb.String())
	}
	if ee, ok := err.(*osexec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		p.t.Fatalf("ork %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code
}

func (p *pgProject) mustRun(args ...string) (string, string) {
	p.t.Helper()
	out, errs, code := p.run(args...)
	if code != 0 {
		p.t.Fatalf("ork %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errs)
	}
	return out, errs
}

// A whole session on PostgreSQL, as on files: init migrates, migrate again
// is a no-op, workflows made by create-workflow and by apply, trigger
// --wait running a scheduler in-process, status, tasks, logs, a failed run
// retried, prune, doctor. The records live in the database: .ork/ holds
// only the logs.
func TestPostgresE2ESession(t *testing.T) {
	t.Parallel()
	p := newPGProject(t)
	out, _ := p.mustRun("init")
	if !strings.Contains(out, "schema version 4") || !strings.Contains(out, "applied 0001_init.sql, 0002_schedules.sql, 0003_cluster.sql, 0004_run_ended.sql") {
		t.Errorf("init output:\n%s", out)
	}
	out, _ = p.mustRun("migrate")
	if !strings.Contains(out, "nothing to migrate") {
		t.Errorf("second migrate:\n%s", out)
	}
	writeScript(t, p.dir, "hello.sh", helloScript)
	writeScript(t, p.dir, "flaky.sh", "#!/bin/sh\n[ \"$ORK_ATTEMPT\" = 1 ] && [ \"$ORK_TASK_INDEX\" = 1 ] && exit 3\nexit 0\n")
	p.mustRun("create-workflow", "--name", "hello", "--job-name", "hello.sh", "--task-count", "3")
	writeFile(t, filepath.Join(p.dir, "flaky.json"), `{"job_name": "flaky.sh", "task_count": 2}`, 0o644)
	writeFile(t, filepath.Join(p.dir, "bad.json"), "{\n  \"job_name\": \"flaky.sh\",\n  \"taskcount\": 2\n}\n", 0o644)
	_, stderr, code := p.run("apply", "bad.json")
	if code == 0 || !strings.Contains(stderr, "bad.json: line 3, column 3") {
		t.Errorf("apply of a bad file: exit %d, stderr:\n%s\nwant its line and column", code, stderr)
	}
	p.mustRun("apply", "flaky.json")

	out, _ = p.mustRun("list-workflows", "--json")
	var ws []jsonWorkflow
	decodeJSON(t, "list-workflows --json", out, &ws)
	if len(ws) != 2 || ws[0].Name != "flaky" || ws[1].Name != "hello" || ws[1].TaskCount != 3 {
		t.Fatalf("list-workflows: %+v", ws)
	}

	out, stderr = p.mustRun("trigger", "hello", "--wait")
	id := runID(t, out)
	if !strings.Contains(stderr, "success") {
		t.Errorf("trigger --wait stderr:\n%s", stderr)
	}
	out, _ = p.mustRun("status", id, "--json")
	var r jsonRun
	decodeJSON(t, "status --json", out, &r)
	if r.Status != "success" || r.WorkflowName != "hello" {
		t.Errorf("status: %+v", r)
	}
	out, _ = p.mustRun("tasks", id, "--json")
	var ts []jsonTask
	decodeJSON(t, "tasks --json", out, &ts)
	if len(ts) != 3 {
		t.Fatalf("tasks: %+v", ts)
	}
	for i, tk := range ts {
		if tk.TaskIndex != i || tk.Status != "success" || tk.Attempt != 1 {
			t.Errorf("task %d: %+v", i, tk)
		}
	}
	out, _ = p.mustRun("logs", id, "--index", "2")
	if !strings.Contains(out, "task 2 of 3") {
		t.Errorf("logs of task 2:\n%s", out)
	}
	if ents, _ := os.ReadDir(filepath.Join(p.dir, ".ork", "runs")); len(ents) != 0 {
		t.Errorf(".ork/runs has %d entries: the records belong in the database", len(ents))
	}

	out, _, code = p.run("trigger", "flaky", "--wait")
	fid := runID(t, out)
	if code != 1 {
		t.Fatalf("trigger of a failing run: exit %d, want 1", code)
	}
	p.mustRun("retry", fid, "--wait")
	out, _ = p.mustRun("status", fid, "--json")
	decodeJSON(t, "status --json", out, &r)
	if r.Status != "success" {
		t.Errorf("retried run: %+v, want success", r)
	}

	// A run triggered with no scheduler running, then cancelled: the
	// cancel is applied at once, under the scheduler lock.
	out, stderr = p.mustRun("trigger", "hello")
	cid := runID(t, out)
	if !strings.Contains(stderr, "no scheduler is running on PostgreSQL") {
		t.Errorf("trigger without a scheduler: stderr %q, want a note naming the database", stderr)
	}
	out, _, code = p.run("doctor")
	if code != 1 || !strings.Contains(out, "unfinished") || !strings.Contains(out, cid) {
		t.Errorf("doctor with a pending run and no scheduler: exit %d\n%s", code, out)
	}
	out, _ = p.mustRun("cancel", cid)
	if !strings.Contains(out, "run "+cid+" cancelled") {
		t.Errorf("cancel: %s", out)
	}
	out, _ = p.mustRun("status", cid, "--json")
	decodeJSON(t, "status --json", out, &r)
	if r.Status != "cancelled" {
		t.Errorf("cancelled run: %+v", r)
	}

	out, _ = p.mustRun("doctor")
	if !strings.Contains(out, "no problems found") || !strings.Contains(out, "schema version 4") {
		t.Errorf("doctor:\n%s", out)
	}
	out, _ = p.mustRun("prune", "--older-than", "0s")
	if !strings.Contains(out, "pruned 3 finished run(s)") {
		t.Errorf("prune:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(p.dir, ".ork", "logs", id)); err == nil {
		t.Errorf("the logs of a pruned run are still there")
	}
	out, _ = p.mustRun("status", "--json")
	if strings.TrimSpace(out) != "[]" {
		t.Errorf("status after prune:\n%s", out)
	}
}

// A trigger from another process reaches a running `ork run` on the same
// database at once (LISTEN/NOTIFY, not the poll). (A second `ork run`
// joins the first: TestPostgresE2ESeveralSchedulers.)
func TestPostgresE2ESchedulerAndTrigger(t *testing.T) {
	t.Parallel()
	p := newPGProject(t)
	p.mustRun("init")
	writeScript(t, p.dir, "hello.sh", helloScript)
	p.mustRun("create-workflow", "--name", "hello", "--job-name", "hello.sh", "--task-count", "2")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p.startScheduler(ctx, "--poll-interval", "1h")

	start := time.Now()
	out, stderr := p.mustRun("trigger", "hello")
	id := runID(t, out)
	if strings.Contains(stderr, "no scheduler is running") {
		t.Errorf("trigger says no scheduler runs:\n%s", stderr)
	}
	waitFor(t, 10*time.Second, "the run ends", func() bool {
		out, _ := p.mustRun("status", id, "--json")
		var r jsonRun
		decodeJSON(t, "status", out, &r)
		return r.Status == "success"
	})
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the run took %s with a 1h poll interval: the trigger did not wake the scheduler", took)
	}
}

// A database that cannot be reached is one line, at once, for any command.
func TestPostgresE2EUnreachable(t *testing.T) {
	t.Parallel()
	pgBinary(t)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	p := &pgProject{t: t, dir: t.TempDir(), url: "postgres://postgres@" + addr + "/test?sslmode=disable"}
	for _, args := range [][]string{{"status"}, {"init"}, {"trigger", "hello", "--wait"}, {"run"}} {
		start := time.Now()
		_, stderr, code := p.run(args...)
		line := wantOneLineError(t, strings.Join(args, " "), stderr)
		if code == 0 || !strings.Contains(line, "cannot reach PostgreSQL at "+addr) {
			t.Errorf("ork %s: exit %d, %q", strings.Join(args, " "), code, line)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("ork %s took %s to fail", strings.Join(args, " "), took)
		}
	}
}
