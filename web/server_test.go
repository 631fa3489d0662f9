package web

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ork-run/ork/filedb"
	"github.com/ork-run/ork/model"
)

// env is a file database with two workflows, served by a real server.
type env struct {
	t   testing.TB
	db  *filedb.DB
	srv *httptest.Server
	s   *Server
}

func newEnv(t testing.TB, opts Options) *env {
	t.Helper()
	dir := t.TempDir()
	if err := filedb.Init(dir); err != nil {
		t.Fatal(err)
	}
	db, err := filedb.Open(dir, filedb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return newEnvDB(t, db, db, opts)
}

// newEnvDB serves serveDB; db is the file database under it, for seeding.
func newEnvDB(t testing.TB, db *filedb.DB, serveDB model.Database, opts Options) *env {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for _, w := range []*model.Workflow{
		{Name: "hello", JobName: "hello.sh", TaskCount: 3, Params: map[string]any{"who": "world"}},
		{Name: "dag", Tasks: map[string]*model.TaskSpec{
			"extract":   {JobName: "extract.sh"},
			"transform": {JobName: "transform.sh", DependsOn: []string{"extract"}, TaskCount: 4},
			"load":      {JobName: "load.sh", DependsOn: []string{"transform"}},
		}},
	} {
		w.Normalize()
		if err := db.CreateWorkflow(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	s, err := New(ctx, serveDB, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &env{t: t, db: db, srv: srv, s: s}
}

type resp struct {
	code int
	body []byte
	hdr  http.Header
}

func (r resp) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("response %d is not JSON: %v: %s", r.code, err, r.body)
	}
}

func (r resp) errMsg(t testing.TB) string {
	t.Helper()
	var e apiError
	r.json(t, &e)
	if e.Error == "" {
		t.Fatalf("error response %d has no error message: %s", r.code, r.body)
	}
	return e.Error
}

func (e *env) do(method, path string, body string, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, data, res.Header}
}

func (e *env) want(r resp, code int, what string) {
	e.t.Helper()
	if r.code != code {
		e.t.Fatalf("%s: status %d, want %d: %s", what, r.code, code, r.body)
	}
	if code >= 400 {
		if ct := r.hdr.Get("Content-Type"); ct != "application/json" {
			e.t.Errorf("%s: error with Content-Type %q, want application/json", what, ct)
		}
		r.errMsg(e.t)
	}
}

func (e *env) trigger(name string) *model.Run {
	e.t.Helper()
	w, err := e.db.GetWorkflow(context.Background(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	r := model.NewRun(w, nil, "test", time.Now())
	if err := e.db.CreateRun(context.Background(), r); err != nil {
		e.t.Fatal(err)
	}
	return r
}

// play does what a scheduler does to run r: creates its tasks, and runs
// each to the status given (one per task, in the workflow's order; missing
// ones stay pending), writing a log for each attempt. It ends the run with
// end unless end is "".
func (e *env) play(r *model.Run, statuses []model.TaskStatus, end model.RunStatus) []*model.Task {
	e.t.Helper()
	ctx := context.Background()
	ts := model.NewTasks(r, time.Now())
	model.SortTasks(r.Workflow, ts)
	ts = ts[:len(statuses)] // a scheduler creates tasks in their turn
	if err := e.db.CreateTasks(ctx, ts); err != nil {
		e.t.Fatal(err)
	}
	if err := e.db.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunRunning}}); err != nil {
		e.t.Fatal(err)
	}
	var us []model.TaskUpdate
	for i, st := range statuses {
		t := ts[i]
		if st == model.TaskPending {
			continue
		}
		lp := e.writeLog(r.ID, t, 1, fmt.Sprintf("output of %s attempt 1\n", t.Label()))
		us = append(us, model.TaskUpdate{TaskID: t.ID, RunID: r.ID, Attempt: 1, Status: model.TaskDispatched},
			model.TaskUpdate{TaskID: t.ID, RunID: r.ID, Attempt: 1, Status: model.TaskRunning, Log: lp})
		if st.Terminal() {
			code := 0
			if st == model.TaskFailed {
				code = 3
			}
			us = append(us, model.TaskUpdate{TaskID: t.ID, RunID: r.ID, Attempt: 1, Status: st, ExitCode: &code})
		}
	}
	if _, err := e.db.UpdateTasks(ctx, us); err != nil {
		e.t.Fatal(err)
	}
	if end != "" {
		if err := e.db.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: end}}); err != nil {
			e.t.Fatal(err)
		}
	}
	return ts
}

func (e *env) writeLog(runID string, t *model.Task, attempt int, text string) string {
	e.t.Helper()
	p := filepath.Join(e.db.LogDir(), runID, fmt.Sprintf("%s.%d.%d.log", t.Name, t.TaskIndex, attempt))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func TestWorkflowRoutes(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.trigger("hello")
	e.play(r, []model.TaskStatus{model.TaskSuccess, model.TaskSuccess, model.TaskSuccess}, model.RunSuccess)

	res := e.do("GET", "/api/workflows", "")
	e.want(res, 200, "GET /api/workflows")
	var list struct {
		Workflows []struct {
			Name     string     `json:"name"`
			Nodes    []nodeView `json:"nodes"`
			LastRuns []runView  `json:"last_runs"`
		} `json:"workflows"`
	}
	res.json(t, &list)
	if len(list.Workflows) != 2 || list.Workflows[0].Name != "dag" || list.Workflows[1].Name != "hello" {
		t.Fatalf("workflows = %+v; want dag and hello", list.Workflows)
	}
	if lr := list.Workflows[1].LastRuns; len(lr) != 1 || lr[0].ID != r.ID || lr[0].Status != model.RunSuccess || lr[0].TaskCounts[model.TaskSuccess] != 3 {
		t.Errorf("hello's last runs = %+v; want the one run, success, 3 tasks succeeded", lr)
	}
	if len(list.Workflows[0].LastRuns) != 0 {
		t.Errorf("dag's last runs = %+v; want none", list.Workflows[0].LastRuns)
	}

	res = e.do("GET", "/api/workflows/dag", "")
	e.want(res, 200, "GET /api/workflows/dag")
	var wf workflowView
	res.json(t, &wf)
	if len(wf.Nodes) != 3 || wf.Nodes[0].Name != "extract" || wf.Nodes[1].Name != "transform" || wf.Nodes[1].TaskCount != 4 ||
		len(wf.Nodes[2].DependsOn) != 1 || wf.Nodes[2].DependsOn[0] != "transform" {
		t.Errorf("dag nodes = %+v; want extract, transform (4), load after transform", wf.Nodes)
	}
	e.want(e.do("GET", "/api/workflows/nope", ""), 404, "GET an unknown workflow")
	e.want(e.do("GET", "/api/workflows/..%2F..%2Fetc%2Fpasswd", ""), 404, "GET a workflow named by a path")
}

func TestTrigger(t *testing.T) {
	e := newEnv(t, Options{})
	res := e.do("POST", "/api/workflows/hello/trigger", `{"params": {"who": "you", "n": 2}}`, "Content-Type", "application/json")
	e.want(res, 201, "trigger")
	var v runView
	res.json(t, &v)
	if res.hdr.Get("Location") != "/api/runs/"+v.ID {
		t.Errorf("Location = %q; want /api/runs/%s", res.hdr.Get("Location"), v.ID)
	}
	r, err := e.db.GetRun(context.Background(), v.ID)
	if err != nil {
		t.Fatalf("the triggered run is not in the database: %v", err)
	}
	if r.Status != model.RunPending || r.Params["who"] != "you" || fmt.Sprint(r.Params["n"]) != "2" || r.TriggeredBy != "web" {
		t.Errorf("stored run: status %s params %v by %q; want pending, who=you n=2, by web", r.Status, r.Params, r.TriggeredBy)
	}
	if v.TaskTotal != 3 || v.TaskCounts[model.TaskPending] != 3 {
		t.Errorf("response: %d tasks, counts %v; want 3 pending", v.TaskTotal, v.TaskCounts)
	}
	// No body: the workflow's params.
	e.want(e.do("POST", "/api/workflows/hello/trigger", ""), 201, "trigger without a body")

	before, _ := e.db.ListRuns(context.Background(), model.RunFilter{})
	for _, c := range []struct{ body, want string }{
		{`{"params": {"who": }}`, "line 1, column 20"},
		{"{\n  \"params\": [1]\n}", "line 2"},
		{`{"param": {}}`, "param"},
		{`[1]`, "request body"},
		{`{"params": {}} {}`, "request body"},
	} {
		res := e.do("POST", "/api/workflows/hello/trigger", c.body)
		e.want(res, 400, "trigger with body "+c.body)
		if msg := res.errMsg(t); !strings.Contains(msg, c.want) {
			t.Errorf("trigger with body %s: error %q; want it to say %q", c.body, msg, c.want)
		}
	}
	e.want(e.do("POST", "/api/workflows/nope/trigger", "{}"), 404, "trigger an unknown workflow")
	e.want(e.do("POST", "/api/workflows/hello/trigger", `{"params": {"x": "`+strings.Repeat("a", maxBody)+`"}}`), 413, "trigger with a huge body")
	after, _ := e.db.ListRuns(context.Background(), model.RunFilter{})
	if len(after) != len(before) {
		t.Errorf("bad triggers made %d run(s)", len(after)-len(before))
	}
}

func TestSameOriginCheck(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.trigger("hello")
	for _, h := range [][]string{
		{"Origin", "http://evil.example"},
		{"Origin", "null"},
		{"Sec-Fetch-Site", "cross-site", "Origin", "http://evil.example"},
		{"Sec-Fetch-Site", "same-site"},
		// Sec-Fetch-Site wins over an Origin that looks right.
		{"Sec-Fetch-Site", "cross-site", "Origin", e.srv.URL},
	} {
		for _, path := range []string{"/api/workflows/hello/trigger", "/api/runs/" + r.ID + "/cancel", "/api/runs/" + r.ID + "/retry"} {
			e.want(e.do("POST", path, "", h...), 403, fmt.Sprintf("POST %s with %v", path, h))
		}
	}
	runs, _ := e.db.ListRuns(context.Background(), model.RunFilter{})
	if got, _ := e.db.GetRun(context.Background(), r.ID); len(runs) != 1 || got.Status != model.RunPending {
		t.Errorf("refused requests changed the database: %d runs, run %s", len(runs), got.Status)
	}
	e.want(e.do("POST", "/api/workflows/hello/trigger", "", "Origin", e.srv.URL), 201, "same-origin trigger (Origin)")
	e.want(e.do("POST", "/api/workflows/hello/trigger", "", "Sec-Fetch-Site", "same-origin", "Origin", e.srv.URL), 201, "same-origin trigger (Sec-Fetch-Site)")
	// GETs are not state-changing: a cross-site GET is served.
	e.want(e.do("GET", "/api/workflows", "", "Sec-Fetch-Site", "cross-site"), 200, "cross-site GET")
}

func TestLoopbackOnly(t *testing.T) {
	e := newEnv(t, Options{LoopbackOnly: true})
	e.want(e.do("GET", "/api/workflows", ""), 200, "GET on 127.0.0.1")
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/workflows", nil)
	req.Host = "evil.example:4000" // a DNS-rebound name
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 403 {
		t.Errorf("request with Host evil.example: status %d, want 403", res.StatusCode)
	}
	for addr, want := range map[string]bool{"127.0.0.1:4000": true, "localhost:4000": true, "[::1]:4000": true, ":4000": false, "0.0.0.0:4000": false, "192.0.2.1:4000": false} {
		if got := IsLoopbackAddr(addr); got != want {
			t.Errorf("IsLoopbackAddr(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestListRuns(t *testing.T) {
	e := newEnv(t, Options{})
	var ids []string // oldest first
	for i := 0; i < 5; i++ {
		r := e.trigger("hello")
		ids = append(ids, r.ID)
		time.Sleep(2 * time.Millisecond)
	}
	d := e.trigger("dag")
	e.play(d, []model.TaskStatus{model.TaskFailed}, model.RunFailed)

	var page struct {
		Runs []runView `json:"runs"`
		Next string    `json:"next"`
	}
	res := e.do("GET", "/api/runs?workflow=hello&limit=2", "")
	e.want(res, 200, "GET /api/runs")
	res.json(t, &page)
	var got []string
	for p := 0; ; p++ {
		for _, r := range page.Runs {
			got = append(got, r.ID)
		}
		if page.Next == "" {
			break
		}
		if p > 5 {
			t.Fatal("paging does not end")
		}
		res := e.do("GET", "/api/runs?workflow=hello&limit=2&before="+page.Next, "")
		e.want(res, 200, "GET the next page")
		page.Runs, page.Next = nil, ""
		res.json(t, &page)
	}
	if len(got) != 5 || got[0] != ids[4] || got[4] != ids[0] {
		t.Errorf("paged runs = %v; want the 5 hello runs newest first %v", got, ids)
	}

	res = e.do("GET", "/api/runs?status=failed", "")
	e.want(res, 200, "GET failed runs")
	page.Runs = nil
	res.json(t, &page)
	if len(page.Runs) != 1 || page.Runs[0].ID != d.ID || page.Runs[0].TaskTotal != 6 ||
		page.Runs[0].TaskCounts[model.TaskFailed] != 1 || page.Runs[0].TaskCounts[model.TaskCancelled] != 5 {
		t.Errorf("failed runs = %+v; want the dag run: 6 tasks, 1 failed, 5 never ran", page.Runs)
	}
	for _, q := range []string{"status=bogus", "limit=0", "limit=501", "limit=x", "before=yesterday"} {
		e.want(e.do("GET", "/api/runs?"+q, ""), 400, "GET /api/runs?"+q)
	}
}

func TestRunAndTasks(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.trigger("dag")
	e.play(r, []model.TaskStatus{model.TaskSuccess, model.TaskRunning, model.TaskSuccess}, "")

	res := e.do("GET", "/api/runs/"+r.ID, "")
	e.want(res, 200, "GET run")
	var v runDetail
	res.json(t, &v)
	if v.Status != model.RunRunning || v.TaskTotal != 6 || v.TaskCounts[model.TaskSuccess] != 2 || v.TaskCounts[model.TaskRunning] != 1 ||
		v.TaskCounts[model.TaskPending] != 3 || len(v.Nodes) != 3 {
		t.Errorf("run = %+v; want running, 6 tasks: 2 success, 1 running, 3 pending; 3 nodes", v)
	}
	res = e.do("GET", "/api/runs/"+r.ID+"/tasks", "")
	e.want(res, 200, "GET tasks")
	var tl struct {
		Tasks []taskView `json:"tasks"`
	}
	res.json(t, &tl)
	if len(tl.Tasks) != 6 || tl.Tasks[0].Name != "extract" || tl.Tasks[1].Name != "transform" || tl.Tasks[1].Status != model.TaskRunning ||
		tl.Tasks[5].Name != "load" || tl.Tasks[0].ExitCode == nil || *tl.Tasks[0].ExitCode != 0 {
		t.Errorf("tasks = %+v; want extract (exit 0), transform[0] running .. load", tl.Tasks)
	}
	for _, p := range []string{"/api/runs/nope", "/api/runs/nope/tasks", "/api/runs/..%2F..%2Fworkflows%2Fhello", "/api/runs/%2e%2e/tasks"} {
		e.want(e.do("GET", p, ""), 404, "GET "+p)
	}
}

func TestCancel(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.trigger("hello")
	// No scheduler running: cancelled at once.
	res := e.do("POST", "/api/runs/"+r.ID+"/cancel", "")
	e.want(res, 200, "cancel")
	var cr struct {
		Outcome string  `json:"outcome"`
		Run     runView `json:"run"`
	}
	res.json(t, &cr)
	if cr.Outcome != "cancelled" || cr.Run.Status != model.RunCancelled {
		t.Errorf("cancel: %+v; want outcome cancelled, run cancelled", cr)
	}
	if got, _ := e.db.GetRun(context.Background(), r.ID); got.Status != model.RunCancelled {
		t.Errorf("stored run is %s, want cancelled", got.Status)
	}
	e.want(e.do("POST", "/api/runs/"+r.ID+"/cancel", ""), 409, "cancel a cancelled run")
	e.want(e.do("POST", "/api/runs/nope/cancel", ""), 404, "cancel an unknown run")
	e.want(e.do("GET", "/api/runs/"+r.ID+"/cancel", ""), 405, "GET cancel")

	// A scheduler holds the lock: the cancel is a request it applies.
	other, err := filedb.Open(e.db.Dir(), filedb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	release, err := other.LockScheduler(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	r2 := e.trigger("hello")
	res = e.do("POST", "/api/runs/"+r2.ID+"/cancel", "")
	e.want(res, 202, "cancel under a scheduler")
	res.json(t, &cr)
	if reqs, _ := other.CancelRequests(context.Background()); cr.Outcome != "requested" || len(reqs) != 1 || reqs[0] != r2.ID {
		t.Errorf("cancel under a scheduler: outcome %q, requests %v; want requested, [%s]", cr.Outcome, reqs, r2.ID)
	}
}

func TestRetry(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.trigger("hello")
	e.want(e.do("POST", "/api/runs/"+r.ID+"/retry", ""), 409, "retry a pending run")
	e.play(r, []model.TaskStatus{model.TaskSuccess, model.TaskFailed}, model.RunFailed)
	res := e.do("POST", "/api/runs/"+r.ID+"/retry", "")
	e.want(res, 202, "retry a failed run")
	var rr struct {
		Run      runView `json:"run"`
		Again    int     `json:"again"`
		NeverRan int     `json:"never_ran"`
	}
	res.json(t, &rr)
	if rr.Run.Status != model.RunPending || rr.Again != 1 {
		t.Errorf("retry: %+v; want the run pending, 1 task again", rr)
	}
	e.want(e.do("POST", "/api/runs/"+r.ID+"/retry", ""), 409, "retry a run being retried")
	ok := e.trigger("hello")
	e.play(ok, []model.TaskStatus{model.TaskSuccess, model.TaskSuccess, model.TaskSuccess}, model.RunSuccess)
	if msg := e.do("POST", "/api/runs/"+ok.ID+"/retry", "").errMsg(t); !strings.Contains(msg, "nothing to retry") {
		t.Errorf("retry a succeeded run: %q; want it to say nothing to retry", msg)
	}
	e.want(e.do("POST", "/api/runs/"+ok.ID+"/retry", ""), 409, "retry a succeeded run")
	e.want(e.do("POST", "/api/runs/nope/retry", ""), 404, "retry an unknown run")
}

func TestUnknownRoutesAndPages(t *testing.T) {
	e := newEnv(t, Options{})
	e.want(e.do("GET", "/api/nope", ""), 404, "GET an unknown API route")
	e.want(e.do("DELETE", "/api/workflows/hello", ""), 405, "DELETE a workflow")
	e.want(e.do("POST", "/api/runs", ""), 405, "POST /api/runs")
	for _, p := range []string{"/", "/runs", "/runs/abc", "/workflows/hello"} {
		res := e.do("GET", p, "")
		if res.code != 200 || !strings.Contains(res.hdr.Get("Content-Type"), "text/html") || !strings.Contains(string(res.body), "app.js") {
			t.Errorf("GET %s: %d %s; want the HTML page that loads app.js", p, res.code, res.hdr.Get("Content-Type"))
		}
		if csp := res.hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", p, csp)
		}
	}
	for _, p := range []string{"/static/app.js", "/static/app.css"} {
		if res := e.do("GET", p, ""); res.code != 200 || len(res.body) < 100 {
			t.Errorf("GET %s: %d, %d bytes", p, res.code, len(res.body))
		}
	}
	if res := e.do("GET", "/static/../server.go", ""); res.code == 200 && strings.Contains(string(res.body), "package web") {
		t.Errorf("GET /static/../server.go served the source")
	}
}

// readEvents reads server-sent events from the stream into a channel.
func readEvents(t testing.TB, url string) (<-chan [2]string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET %s: %d %s", url, res.StatusCode, res.Header.Get("Content-Type"))
	}
	ch := make(chan [2]string, 1024)
	go func() {
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(nil, 16<<20)
		var name string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ch <- [2]string{name, strings.TrimPrefix(line, "data: ")}
			}
		}
		close(ch)
	}()
	return ch, cancel
}

// waitEvent waits for an event named name whose data satisfies ok.
func waitEvent(t testing.TB, ch <-chan [2]string, name string, ok func(data string) bool) time.Time {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev, open := <-ch:
			if !open {
				t.Fatalf("event stream ended before a %s event", name)
			}
			if ev[0] == name && ok(ev[1]) {
				return time.Now()
			}
		case <-deadline:
			t.Fatalf("no %s event within 5s", name)
		}
	}
}

// The event stream tells of a run created and of its tasks changing, by
// another writer than the server: on the file database through its
// watcher, and on a database that cannot watch through the server's poll.
func TestEvents(t *testing.T) {
	for _, tc := range []struct {
		name  string
		watch bool
	}{{"watcher", true}, {"poll", false}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := filedb.Init(dir); err != nil {
				t.Fatal(err)
			}
			db, err := filedb.Open(dir, filedb.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var serve model.Database = db
			if !tc.watch {
				serve = struct{ model.Database }{db} // hides ChangeWatcher
			}
			e := newEnvDB(t, db, serve, Options{})
			if (e.s.hub.poll > 0) == tc.watch {
				t.Fatalf("hub poll = %v; watch = %v", e.s.hub.poll, tc.watch)
			}
			all, stop := readEvents(t, e.srv.URL+"/api/events")
			defer stop()
			waitEvent(t, all, "ready", func(string) bool { return true })

			// Another process (another handle) triggers a run.
			writer, err := filedb.Open(dir, filedb.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer writer.Close()
			w, _ := writer.GetWorkflow(context.Background(), "hello")
			r := model.NewRun(w, nil, "test", time.Now())
			start := time.Now()
			if err := writer.CreateRun(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			at := waitEvent(t, all, "run", func(d string) bool { return strings.Contains(d, r.ID) && strings.Contains(d, `"pending"`) })
			t.Logf("%s: run created -> event in %v", tc.name, at.Sub(start))

			ts := model.NewTasks(r, time.Now())
			if err := writer.CreateTasks(context.Background(), ts[:2]); err != nil {
				t.Fatal(err)
			}
			one, stop1 := readEvents(t, e.srv.URL+"/api/events?run="+r.ID)
			defer stop1()
			// The stream starts with the run and its tasks: the two created
			// and the one still to come.
			select {
			case ev := <-one:
				var snap snapshot
				if ev[0] == "snapshot" {
					json.Unmarshal([]byte(ev[1]), &snap)
				}
				if ev[0] != "snapshot" || snap.Run.ID != r.ID || len(snap.Tasks) != 3 || snap.Run.TaskCounts[model.TaskPending] != 3 || len(snap.Run.Nodes) != 1 {
					t.Fatalf("first event of the run's stream: %s %.300s; want its snapshot with 3 pending tasks", ev[0], ev[1])
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no snapshot")
			}
			waitEvent(t, one, "ready", func(string) bool { return true })
			if err := writer.CreateTasks(context.Background(), ts[2:]); err != nil {
				t.Fatal(err)
			}
			start = time.Now()
			if _, err := writer.UpdateTasks(context.Background(), []model.TaskUpdate{{TaskID: ts[1].ID, RunID: r.ID, Attempt: 1, Status: model.TaskDispatched}}); err != nil {
				t.Fatal(err)
			}
			at = waitEvent(t, one, "tasks", func(d string) bool {
				var ev struct {
					RunID string     `json:"run_id"`
					Tasks []taskView `json:"tasks"`
				}
				json.Unmarshal([]byte(d), &ev)
				for _, x := range ev.Tasks {
					if x.ID == ts[1].ID && x.Status == model.TaskDispatched && x.Attempt == 1 {
						return ev.RunID == r.ID
					}
				}
				return false
			})
			t.Logf("%s: task dispatched -> event in %v", tc.name, at.Sub(start))
			waitEvent(t, all, "run", func(d string) bool { return strings.Contains(d, r.ID) && strings.Contains(d, `"dispatched":1`) })
			if err := writer.UpdateRuns(context.Background(), []model.RunUpdate{{RunID: r.ID, Status: model.RunCancelled}}); err != nil {
				t.Fatal(err)
			}
			waitEvent(t, all, "run", func(d string) bool { return strings.Contains(d, r.ID) && strings.Contains(d, `"status":"cancelled"`) })
		})
	}
	e := newEnv(t, Options{})
	e.want(e.do("GET", "/api/events?run=nope", ""), 404, "events of an unknown run")
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newEnv(t, Options{})
	res := e.do("GET", "/api/openapi.json", "")
	e.want(res, 200, "GET /api/openapi.json")
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	res.json(t, &doc)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi = %q; want 3.x", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for p, ops := range doc.Paths {
		for m := range ops {
			documented[strings.ToUpper(m)+" "+p] = true
		}
	}
	served := map[string]bool{}
	for _, rt := range routes {
		served[rt.method+" "+rt.pattern] = true
		if !documented[rt.method+" "+rt.pattern] {
			t.Errorf("route %s %s is not in the OpenAPI document", rt.method, rt.pattern)
		}
	}
	for k := range documented {
		if !served[k] {
			t.Errorf("the OpenAPI document has %s, which the server does not serve", k)
		}
	}

	// Each documented operation, called for real, answers with a status
	// and a content type that the document lists for it.
	r := e.trigger("hello")
	ts := e.play(r, []model.TaskStatus{model.TaskSuccess, model.TaskFailed, model.TaskSuccess}, model.RunFailed)
	args := strings.NewReplacer("{name}", "hello", "{id}", r.ID)
	logArgs := strings.NewReplacer("{id}", r.ID, "{name}", ts[0].Name, "{index}", "0")
	calls := []struct{ method, path, sub string }{
		{"GET", "/api/workflows", ""}, {"GET", "/api/workflows/{name}", "/api/workflows/nope"},
		{"POST", "/api/workflows/{name}/trigger", "/api/workflows/nope/trigger"},
		{"GET", "/api/runs", "/api/runs?limit=0"}, {"GET", "/api/runs/{id}", "/api/runs/nope"},
		{"GET", "/api/runs/{id}/tasks", "/api/runs/nope/tasks"},
		{"GET", "/api/runs/{id}/tasks/{name}/{index}/log", "/api/runs/{id}/tasks/{name}/9/log"},
		{"POST", "/api/runs/{id}/retry", "/api/runs/{id}/retry"}, // the second retry conflicts
		{"POST", "/api/runs/{id}/cancel", "/api/runs/nope/cancel"},
		{"GET", "/api/openapi.json", ""},
	}
	for _, c := range calls {
		for _, p := range []string{c.path, c.sub} {
			if p == "" {
				continue
			}
			url := p
			if strings.Contains(p, "/log") {
				url = logArgs.Replace(p)
			} else {
				url = args.Replace(p)
			}
			res := e.do(c.method, url, "")
			var op struct {
				Responses map[string]struct {
					Content map[string]json.RawMessage `json:"content"`
				} `json:"responses"`
			}
			json.Unmarshal(doc.Paths[c.path][strings.ToLower(c.method)], &op)
			d, ok := op.Responses[fmt.Sprint(res.code)]
			if !ok {
				t.Errorf("%s %s answered %d, which the document does not list for %s", c.method, url, res.code, c.path)
				continue
			}
			ct, _, _ := strings.Cut(res.hdr.Get("Content-Type"), ";")
			if _, ok := d.Content[ct]; !ok {
				t.Errorf("%s %s answered %d with %s; the document says %v", c.method, url, res.code, ct, d.Content)
			}
		}
	}
}

// No bad input makes a server error: odd ids, names, indexes, queries and
// bodies on every route get a 4xx (or are served, where they mean
// something), never a 5xx.
func TestNoServerErrorForBadInput(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.trigger("hello")
	e.play(r, []model.TaskStatus{model.TaskSuccess}, "")
	odd := []string{"x", "%00", "%25", "%2e%2e", "..%2F..", "%C3%A9t%C3%A9", strings.Repeat("a", 5000), "%FF%FE", "a%0Ab", "%20", "-1", "99999999999999999999"}
	var paths []string
	for _, o := range odd {
		paths = append(paths,
			"GET /api/workflows/"+o, "POST /api/workflows/"+o+"/trigger",
			"GET /api/runs/"+o, "GET /api/runs/"+o+"/tasks", "POST /api/runs/"+o+"/cancel", "POST /api/runs/"+o+"/retry",
			"GET /api/runs/"+r.ID+"/tasks/"+o+"/0/log", "GET /api/runs/"+r.ID+"/tasks/hello.sh/"+o+"/log",
			"GET /api/runs/"+r.ID+"/tasks/hello.sh/0/log?attempt="+o+"&offset="+o,
			"GET /api/runs?workflow="+o+"&status="+o+"&limit="+o+"&before="+o,
			"GET /api/events?run="+o, "GET /runs/"+o, "GET /static/"+o)
	}
	for _, p := range paths {
		method, path, _ := strings.Cut(p, " ")
		res := e.do(method, path, "")
		if res.code >= 500 {
			t.Errorf("%s %.120s: %d %.200s", method, path, res.code, res.body)
		}
	}
	for _, body := range []string{"{", "null", `{"params": null}`, `{"params": "x"}`, `{"params": {"a": 1e999}}`, "\xff\xfe", `{"params": {}}` + strings.Repeat(" ", 100)} {
		if res := e.do("POST", "/api/workflows/hello/trigger", body); res.code >= 500 {
			t.Errorf("trigger with body %q: %d %s", body, res.code, res.body)
		}
	}
}

// A workflow the server's ork cannot run (CheckWorkflow refuses it) is
// not triggered: 409, and no run.
func TestTriggerRefused(t *testing.T) {
	e := newEnv(t, Options{CheckWorkflow: func(w *model.Workflow) error {
		if w.Name == "dag" {
			return fmt.Errorf("workflow %q needs an executor this ork was built without", w.Name)
		}
		return nil
	}})
	res := e.do("POST", "/api/workflows/dag/trigger", "")
	e.want(res, 409, "trigger a refused workflow")
	if msg := res.errMsg(t); !strings.Contains(msg, "built without") {
		t.Errorf("refusal says %q", msg)
	}
	if rs, _ := e.db.ListRuns(context.Background(), model.RunFilter{}); len(rs) != 0 {
		t.Errorf("a refused trigger made %d run(s)", len(rs))
	}
	e.want(e.do("POST", "/api/workflows/hello/trigger", ""), 201, "trigger an allowed workflow")
}
