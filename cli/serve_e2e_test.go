package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ork-run/ork/filedb"
	"github.com/ork-run/ork/model"
)

// startServe starts `ork serve` on a free port in dir and returns its URL;
// it is stopped (SIGINT) when the test ends.
func startServe(t *testing.T, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := orkCmd(ctx, dir, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errf, err := os.Create(filepath.Join(t.TempDir(), "serve.err"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = errf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Errorf("ork serve did not stop within 20s of SIGINT")
			cancel()
			<-done
		}
		cancel()
		errf.Close()
		if t.Failed() {
			data, _ := os.ReadFile(errf.Name())
			t.Logf("ork serve stderr:\n%s", data)
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	select {
	case line := <-lines:
		i := strings.Index(line, "http://")
		if i < 0 {
			t.Fatalf("ork serve printed %q; want its address", line)
		}
		return strings.TrimSuffix(strings.Fields(line[i:])[0], "/")
	case <-time.After(30 * time.Second):
		data, _ := os.ReadFile(errf.Name())
		t.Fatalf("ork serve printed no address within 30s; stderr:\n%s", data)
	}
	return ""
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if v != nil {
		if err := json.Unmarshal(data, v); err != nil {
			t.Fatalf("GET %s: %v: %s", url, err, data)
		}
	}
	return res.StatusCode
}

// In a real headless Chromium against the real `ork serve`: trigger a
// workflow from its page, watch the run turn green without reloading the
// page, open a task's log, and save a screenshot.
func TestServeInBrowser(t *testing.T) {
	wd := startBrowser(t, 1280, 1000)
	dir := newProject(t)
	writeScript(t, dir, "slow.sh", "#!/bin/sh\necho \"task $ORK_TASK_INDEX of $ORK_TASK_COUNT says $ORK_PARAMS\"\nsleep 1.5\necho \"task $ORK_TASK_INDEX done\"\n")
	mustRun(t, dir, "create-workflow", "--name", "hello", "--job-name", "slow.sh", "--task-count", "3", "--param", "greeting=hi")
	url := startServe(t, dir)

	wd.open(url + "/")
	wd.click(`button[data-trigger="hello"]`, 10*time.Second)
	// The params form shows the workflow's defaults; change one.
	wd.find(`dialog[open] #trigger-submit`, 5*time.Second)
	wd.exec(`const i = document.querySelectorAll('dialog[open] .params input'); i[1].value = '"from the browser"';`)
	wd.click(`#trigger-submit`, 5*time.Second)

	// The page moves to the new run.
	wd.waitJS("the page shows the new run", 10*time.Second, `return location.pathname.startsWith('/runs/') && !!document.querySelector('#run-status');`)
	runID := strings.TrimPrefix(wd.exec(`return location.pathname;`).(string), "/runs/")
	// A marker that a reload would lose: the updates must come live.
	wd.exec(`window.__same_page = true;`)
	var seen []string
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, _ := wd.exec(`const e = document.querySelector('#run-status'); return e ? e.dataset.status : '';`).(string)
		if len(seen) == 0 || seen[len(seen)-1] != st {
			seen = append(seen, st)
		}
		if st == "success" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the run's status on the page went %v, never success", seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if seen[0] == "success" {
		t.Errorf("the page showed the run succeeded at once (%v); want it to turn green while watched", seen)
	}
	if v, _ := wd.exec(`return window.__same_page === true;`).(bool); !v {
		t.Error("the page reloaded to show the run's end; want it live")
	}
	// Green: the badge's colours are the success ones.
	if c, _ := wd.exec(`return getComputedStyle(document.querySelector('#run-status'), '::before').backgroundColor;`).(string); c != "rgb(31, 157, 98)" {
		t.Errorf("success badge colour = %q; want rgb(31, 157, 98)", c)
	}
	wd.waitJS("every task row shows success", 5*time.Second,
		`const r = [...document.querySelectorAll('.vrow')]; return r.length === 3 && r.every(x => x.dataset.status === 'success');`)
	wd.waitJS("the graph node is green", 5*time.Second, `const n = document.querySelector('.dag .node'); return !!n && n.dataset.status === 'success';`)

	// What the page triggered is what the database holds.
	var run struct {
		Status string         `json:"status"`
		Params map[string]any `json:"params"`
	}
	getJSON(t, url+"/api/runs/"+runID, &run)
	if run.Status != "success" || run.Params["greeting"] != "from the browser" {
		t.Errorf("run %s: %+v; want success with greeting=from the browser", runID, run)
	}

	// A task's log.
	wd.click(`.vrow[data-task="slow.sh/1"]`, 5*time.Second)
	wd.waitJS("the log shows the task's output", 10*time.Second,
		`const p = document.querySelector('#log-text'); return !!p && p.textContent.includes('task 1 of 3 says') && p.textContent.includes('task 1 done');`)
	if v, _ := wd.exec(`return document.querySelectorAll('#log-dialog [role=tab]').length;`).(float64); v != 1 {
		t.Errorf("log tabs = %v; want one per attempt (1)", v)
	}
	shot := filepath.Join(t.TempDir(), "run.png")
	wd.screenshot(shot)
	t.Logf("screenshot: %s", shot)

	// The keyboard: Escape closes the log; Enter on a focused task row
	// opens that task's log.
	wd.sendKeys(`#log-dialog`, "\uE00C")
	wd.waitJS("Escape closes the log", 5*time.Second, `return !document.querySelector('#log-dialog');`)
	wd.sendKeys(`.vrow[data-task="slow.sh/2"]`, "\uE007")
	wd.waitJS("Enter opens the task's log", 10*time.Second,
		`const p = document.querySelector('#log-text'); return !!p && p.textContent.includes('task 2 of 3 says');`)

	// Phone width: the run page still lays out (no horizontal overflow of
	// the page itself).
	wd.exec(`document.querySelector('#log-dialog').close();`)
	wd.resize(390, 844)
	wd.waitJS("the page fits a phone's width", 5*time.Second, `return document.documentElement.scrollWidth <= window.innerWidth + 1;`)
	wd.screenshot(filepath.Join(t.TempDir(), "phone.png"))

	// The runs page lists the run with its progress, filtered by status.
	wd.resize(1280, 1000)
	wd.open(url + "/runs?status=success")
	wd.waitJS("the runs page lists the run", 10*time.Second,
		`const r = document.querySelector('tr[data-run="`+runID+`"]'); return !!r && r.querySelector('.badge.success') && r.querySelector('.bar [class="s-success"]') && r.textContent.includes('3/3');`)
	wd.open(url + "/runs?status=failed")
	wd.waitJS("the failed filter leaves it out", 10*time.Second, `return !!document.querySelector('.empty') && !document.querySelector('tr[data-run]');`)

	// A DAG: its nodes laid out by depth, one edge per dependency, each
	// node turning green as its tasks end.
	writeScript(t, dir, "step.sh", "#!/bin/sh\necho step $ORK_TASK_INDEX\n")
	writeFile(t, filepath.Join(dir, ".ork", "workflows", "etl.json"), `{"name": "etl", "tasks": {
  "a": {"job_name": "step.sh"}, "b": {"job_name": "step.sh"},
  "c": {"job_name": "step.sh", "depends_on": ["a", "b"], "task_count": 5},
  "d": {"job_name": "step.sh", "depends_on": ["b"]},
  "e": {"job_name": "step.sh", "depends_on": ["c", "d"]}}}`, 0o644)
	dag := postRun(t, url, "etl")
	wd.open(url + "/runs/" + dag)
	wd.waitJS("every node of the DAG turns green", 60*time.Second,
		`const n = [...document.querySelectorAll('.dag .node')]; return n.length === 5 && n.every(x => x.dataset.status === 'success');`)
	layout, _ := wd.exec(`const x = {}; for (const n of document.querySelectorAll('.dag .node')) x[n.dataset.node] = n.getBoundingClientRect().left;
		return {x, edges: document.querySelectorAll('.dag path.edge').length, meta: document.querySelector('.dag .node[data-node="c"] text.meta').textContent};`).(map[string]any)
	x := func(n string) float64 { v, _ := layout["x"].(map[string]any)[n].(float64); return v }
	if !(x("a") == x("b") && x("c") > x("a") && x("d") == x("c") && x("e") > x("c")) {
		t.Errorf("DAG layout by depth: x = %v; want a, b in the first layer, c, d in the second, e in the third", layout["x"])
	}
	if layout["edges"] != float64(5) || layout["meta"] != "5/5 done · success" {
		t.Errorf("DAG: %v edges, node c says %q; want 5 edges and c's fan-out aggregated as 5/5 done", layout["edges"], layout["meta"])
	}

	// Nothing went wrong in the page: no script error, no refused resource.
	for _, l := range wd.browserLog() {
		if l.Level == "SEVERE" {
			t.Errorf("browser error: %s", l.Message)
		}
	}
}

// demoProject makes a project with a DAG workflow of 8 nodes, a flat
// fan-out of n tasks and a check that fails one task.
func demoProject(t *testing.T, n int) string {
	t.Helper()
	dir := newProject(t)
	writeScript(t, dir, "step.sh", "#!/bin/sh\necho \"[$ORK_WORKFLOW] task $ORK_TASK_INDEX of $ORK_TASK_COUNT (attempt $ORK_ATTEMPT)\"\necho \"params: $ORK_PARAMS\"\nsleep 0.$(( (ORK_TASK_INDEX * 7) % 9 + 1 ))\necho done\n")
	writeScript(t, dir, "score.sh", "#!/bin/sh\necho \"chunk $ORK_TASK_INDEX scored\"\n")
	writeScript(t, dir, "check.sh", "#!/bin/sh\necho \"checking chunk $ORK_TASK_INDEX\"\nsleep 0.3\nif [ \"$ORK_TASK_INDEX\" = 2 ]; then echo \"row 1832: null customer_id\" >&2; exit 3; fi\n")
	writeFile(t, filepath.Join(dir, ".ork", "workflows", "data_pipeline.json"), `{
  "name": "data_pipeline",
  "description": "Nightly ETL: extract, transform in parallel, validate, load, report",
  "params": {"date": "2026-11-27"},
  "tasks": {
    "extract_orders":    {"job_name": "step.sh"},
    "extract_customers": {"job_name": "step.sh"},
    "transform":         {"job_name": "step.sh", "depends_on": ["extract_orders", "extract_customers"], "task_count": 8},
    "validate":          {"job_name": "step.sh", "depends_on": ["transform"], "task_count": 3},
    "build_index":       {"job_name": "step.sh", "depends_on": ["extract_customers"]},
    "load":              {"job_name": "step.sh", "depends_on": ["validate", "build_index"]},
    "report":            {"job_name": "step.sh", "depends_on": ["load"]},
    "notify":            {"job_name": "step.sh", "depends_on": ["report"]}
  }
}`, 0o644)
	mustRun(t, dir, "create-workflow", "--name", "fanout", "--job-name", "score.sh", "--task-count", fmt.Sprint(n), "--description", fmt.Sprintf("Score %d chunks", n))
	mustRun(t, dir, "create-workflow", "--name", "quality_check", "--job-name", "check.sh", "--task-count", "4", "--description", "Data quality checks")
	return dir
}

// postRun triggers a workflow through the API and returns the run id.
func postRun(t *testing.T, url, name string) string {
	t.Helper()
	res, err := http.Post(url+"/api/workflows/"+name+"/trigger", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var r struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil || res.StatusCode != 201 {
		t.Fatalf("trigger %s: %d %v", name, res.StatusCode, err)
	}
	return r.ID
}

func waitRunEnd(t *testing.T, url, id string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var r struct {
			Status string `json:"status"`
		}
		getJSON(t, url+"/api/runs/"+id, &r)
		if r.Status == "success" || r.Status == "failed" || r.Status == "cancelled" {
			return r.Status
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s still %s after %s", id, r.Status, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestServeScreenshots makes the screenshots of the README (a DAG run, a
// fan-out of 2,000 tasks) when ORK_SCREENSHOT_DIR names where to put them:
//
//	ORK_SCREENSHOT_DIR=$PWD/docs go test ./cli -run TestServeScreenshots
func TestServeScreenshots(t *testing.T) {
	out := os.Getenv("ORK_SCREENSHOT_DIR")
	if out == "" {
		t.Skip("set ORK_SCREENSHOT_DIR to make the screenshots")
	}
	wd := startBrowser(t, 1360, 1500)
	dir := demoProject(t, 2000)
	url := startServe(t, dir)
	postRun(t, url, "quality_check")
	dag := postRun(t, url, "data_pipeline")
	fan := postRun(t, url, "fanout")
	waitRunEnd(t, url, dag, 2*time.Minute)
	waitRunEnd(t, url, fan, 5*time.Minute)

	wd.open(url + "/runs/" + dag)
	wd.waitJS("the DAG run page", 10*time.Second, `const s = document.querySelector('#run-status'); return !!s && s.dataset.status === 'success' && document.querySelectorAll('.dag .node').length === 8;`)
	wd.exec(`document.querySelector('.dag .node[data-node="transform"]').dispatchEvent(new MouseEvent('click', {bubbles: true}));`)
	time.Sleep(500 * time.Millisecond)
	wd.screenshot(filepath.Join(out, "serve-dag.png"))

	wd.open(url + "/runs/" + fan)
	wd.waitJS("the fan-out run page", 10*time.Second, `const s = document.querySelector('#run-status'); return !!s && s.dataset.status === 'success' && document.querySelectorAll('.vrow').length > 0;`)
	time.Sleep(500 * time.Millisecond)
	wd.screenshot(filepath.Join(out, "serve-fanout.png"))

	wd.resize(1360, 900)
	wd.open(url + "/")
	wd.waitJS("the workflows page", 10*time.Second, `return document.querySelectorAll('tr[data-workflow]').length === 3 && document.querySelectorAll('.dot').length >= 3;`)
	time.Sleep(300 * time.Millisecond)
	wd.screenshot(filepath.Join(out, "serve-workflows.png"))
}

// seedBigRun writes a running run of n tasks straight into the project's
// database, as a scheduler would have left it: most succeeded, some failed,
// the last ones running. It returns the run and its tasks.
func seedBigRun(t *testing.T, dir string, n int) (*model.Run, []*model.Task) {
	t.Helper()
	ctx := context.Background()
	db, err := filedb.Open(filepath.Join(dir, ".ork"), filedb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	w := &model.Workflow{Name: "big", JobName: "score.sh", TaskCount: n}
	w.Normalize()
	if err := db.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Minute)
	r := model.NewRun(w, nil, "test", start)
	if err := db.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	// The records are written as they end up, in one batch.
	ts := model.NewTasks(r, start)
	for i, tk := range ts {
		at := start.Add(time.Duration(i) * 5 * time.Millisecond)
		end := at.Add(time.Duration(100+i%300) * time.Millisecond)
		tk.Attempt, tk.DispatchedAt, tk.StartedAt, tk.Status = 1, &at, &at, model.TaskRunning
		if i < n-20 {
			code := 0
			tk.Status = model.TaskSuccess
			if i%97 == 0 {
				code, tk.Status = 1, model.TaskFailed
			}
			tk.ExitCode, tk.FinishedAt = &code, &end
		}
	}
	if err := db.CreateTasks(ctx, ts); err != nil {
		t.Fatal(err)
	}
	if err := db.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunRunning, At: start}}); err != nil {
		t.Fatal(err)
	}
	return r, ts
}

// A run of 10,000 tasks: the page renders only the rows in view, still
// finds the last task, and still updates live.
func TestServeBigRunInBrowser(t *testing.T) {
	wd := startBrowser(t, 1280, 1000)
	dir := newProject(t)
	const n = 10000
	r, ts := seedBigRun(t, dir, n)
	// No scheduler: the seeded tasks are not real processes.
	url := startServe(t, dir, "--no-scheduler")

	began := time.Now()
	var tl struct {
		Tasks []json.RawMessage `json:"tasks"`
	}
	getJSON(t, url+"/api/runs/"+r.ID+"/tasks", &tl)
	apiTook := time.Since(began)
	if len(tl.Tasks) != n {
		t.Fatalf("GET tasks: %d tasks, want %d", len(tl.Tasks), n)
	}

	began = time.Now()
	wd.open(url + "/runs/" + r.ID)
	wd.waitJS("the page shows the 10,000 tasks", 60*time.Second,
		`const c = document.querySelector('.filters .count'); return !!c && c.textContent.startsWith('10,000 of 10,000') && document.querySelectorAll('.vrow').length > 0;`)
	pageTook := time.Since(began)
	t.Logf("10,000 tasks: GET /api/runs/{id}/tasks %v; page shown in %v", apiTook, pageTook)
	if n, _ := wd.exec(`return performance.getEntriesByType('resource').filter(e => e.name.includes('/tasks')).length;`).(float64); n != 0 {
		t.Errorf("the page fetched the task list %v time(s); want it read once, from the event stream's snapshot", n)
	}
	if rows, _ := wd.exec(`return document.querySelectorAll('.vrow').length;`).(float64); rows > 100 {
		t.Errorf("the page made %v task rows for 10,000 tasks; want only those in view (< 100)", rows)
	}
	if txt, _ := wd.exec(`return document.querySelector('.dag .node text.meta').textContent;`).(string); !strings.HasPrefix(txt, "9,980/10,000 done") {
		t.Errorf("the graph node says %q; want the fan-out aggregated: 9,980/10,000 done", txt)
	}
	// The last task, by scrolling.
	wd.exec(`const v = document.querySelector('.vt'); v.scrollTop = v.scrollHeight;`)
	wd.waitJS("the last task's row is shown", 5*time.Second, `return !!document.querySelector('.vrow[data-task="score.sh/9999"]');`)

	// A change made by another process reaches the page.
	db, err := filedb.Open(filepath.Join(dir, ".ork"), filedb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	code := 0
	if _, err := db.UpdateTasks(context.Background(), []model.TaskUpdate{{TaskID: ts[n-1].ID, RunID: r.ID, Attempt: 1, Status: model.TaskSuccess, ExitCode: &code}}); err != nil {
		t.Fatal(err)
	}
	wd.waitJS("the task's change shows live", 20*time.Second, `const e = document.querySelector('.vrow[data-task="score.sh/9999"]'); return !!e && e.dataset.status === 'success';`)
	wd.screenshot(filepath.Join(t.TempDir(), "big.png"))
}

// ork serve warns that it has no authentication when it listens on an
// address that is not loopback, and refuses to start a second scheduler.
func TestServeWarningsAndRefusals(t *testing.T) {
	dir := newHelloProject(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := orkCmd(ctx, dir, "serve", "--addr", "0.0.0.0:0", "--no-scheduler")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stderr).ReadString('\n')
	cmd.Process.Signal(syscall.SIGINT)
	go io.Copy(io.Discard, stderr)
	cmd.Wait()
	if err != nil || !strings.Contains(line, "warning") || !strings.Contains(line, "no authentication") {
		t.Errorf("ork serve --addr 0.0.0.0:0 said %q (%v); want a warning that there is no authentication", line, err)
	}

	// A scheduler already serves the directory: ork serve (with its own
	// scheduler) refuses and names --no-scheduler; without one it serves.
	url := startServe(t, dir)
	_, stderrText, code := runWithin(t, 30*time.Second, dir, "serve", "--addr", "127.0.0.1:0")
	if code == 0 || !strings.Contains(stderrText, "--no-scheduler") {
		t.Errorf("second ork serve: exit %d, stderr %q; want a refusal that names --no-scheduler", code, stderrText)
	}
	other := startServe(t, dir, "--no-scheduler")
	var wfs struct {
		Workflows []struct {
			Name string `json:"name"`
		} `json:"workflows"`
	}
	if code := getJSON(t, other+"/api/workflows", &wfs); code != 200 || len(wfs.Workflows) != 1 {
		t.Errorf("ork serve --no-scheduler beside a scheduler: %d %+v", code, wfs)
	}
	// A run triggered through the UI-only server is run by the scheduler
	// of the other.
	id := postRun(t, other, "hello")
	if st := waitRunEnd(t, url, id, time.Minute); st != "success" {
		t.Errorf("run triggered beside the scheduler ended %s", st)
	}
}
