package web

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

func TestTaskLog(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.trigger("hello")
	ts := e.play(r, []model.TaskStatus{model.TaskFailed, model.TaskRunning, model.TaskPending}, "")
	ctx := context.Background()
	// Task 1's first attempt fails and is retried: attempt 2 writes a log
	// of its own.
	lp2 := e.writeLog(r.ID, ts[1], 2, "second attempt\n")
	if _, err := e.db.UpdateTasks(ctx, []model.TaskUpdate{
		{TaskID: ts[1].ID, RunID: r.ID, Attempt: 1, Status: model.TaskPending, AttemptStatus: "failed"},
		{TaskID: ts[1].ID, RunID: r.ID, Attempt: 2, Status: model.TaskDispatched},
		{TaskID: ts[1].ID, RunID: r.ID, Attempt: 2, Status: model.TaskRunning, Log: lp2},
	}); err != nil {
		t.Fatal(err)
	}
	base := "/api/runs/" + r.ID + "/tasks/hello.sh/"

	res := e.do("GET", base+"0/log", "")
	e.want(res, 200, "log of task 0")
	if string(res.body) != "output of hello.sh[0] attempt 1\n" || res.hdr.Get("X-Ork-Attempt") != "1" || res.hdr.Get("X-Ork-Task-Status") != "failed" ||
		!strings.HasPrefix(res.hdr.Get("Content-Type"), "text/plain") {
		t.Errorf("log of task 0: %q, headers %v", res.body, res.hdr)
	}
	res = e.do("GET", base+"0/log?offset=10", "")
	e.want(res, 200, "log from offset 10")
	if string(res.body) != "hello.sh[0] attempt 1\n" || res.hdr.Get("X-Ork-Log-Size") != "32" {
		t.Errorf("log from offset 10: %q, size %s", res.body, res.hdr.Get("X-Ork-Log-Size"))
	}
	if res := e.do("GET", base+"0/log?offset=1000", ""); res.code != 200 || len(res.body) != 0 {
		t.Errorf("log past its end: %d %q; want 200 and nothing", res.code, res.body)
	}
	if res := e.do("GET", base+"1/log", ""); string(res.body) != "second attempt\n" || res.hdr.Get("X-Ork-Attempt") != "2" {
		t.Errorf("log of task 1: %q attempt %s; want the second attempt's", res.body, res.hdr.Get("X-Ork-Attempt"))
	}
	if res := e.do("GET", base+"1/log?attempt=1", ""); string(res.body) != "output of hello.sh[1] attempt 1\n" {
		t.Errorf("log of task 1 attempt 1: %q; want the first attempt's", res.body)
	}
	// The third task never started: no log yet, no error.
	if res := e.do("GET", base+"2/log", ""); res.code != 200 || len(res.body) != 0 || res.hdr.Get("X-Ork-Task-Status") != "pending" {
		t.Errorf("log of a task not started: %d %q %v", res.code, res.body, res.hdr)
	}

	for _, c := range []struct {
		path string
		code int
	}{
		{base + "x/log", 400},
		{base + "-1/log", 400},
		{base + "0/log?attempt=0", 400},
		{base + "0/log?attempt=x", 400},
		{base + "0/log?offset=-1", 400},
		{base + "0/log?offset=1e3", 400},
		{base + "0/log?attempt=2", 404},
		{base + "1/log?attempt=3", 404},
		{base + "7/log", 404},
		{"/api/runs/" + r.ID + "/tasks/nope/0/log", 404},
		{"/api/runs/nope/tasks/hello.sh/0/log", 404},
	} {
		e.want(e.do("GET", c.path, ""), c.code, "GET "+c.path)
	}
}

// The log route serves the logs of the named task and nothing else,
// whatever the request's encoding: a name or run id that is a path, dot
// segments encoded once or twice, backslashes, NUL.
func TestTaskLogTraversal(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.trigger("hello")
	e.play(r, []model.TaskStatus{model.TaskSuccess}, "")
	secret := filepath.Join(filepath.Dir(e.db.Dir()), "secret.txt")
	os.WriteFile(secret, []byte("TOP SECRET"), 0o644)
	os.WriteFile(filepath.Join(e.db.Dir(), "runs", "x.0.1.log"), []byte("TOP SECRET"), 0o644)
	run := "/api/runs/" + r.ID
	for _, p := range []string{
		run + "/tasks/..%2F..%2F..%2Fsecret.txt/0/log",
		run + "/tasks/%2e%2e%2f%2e%2e%2fsecret.txt/0/log",
		run + "/tasks/%252e%252e%252fsecret.txt/0/log",
		run + "/tasks/..%5c..%5csecret.txt/0/log",
		run + "/tasks/hello.sh%00/0/log",
		run + "/tasks/%2Fetc%2Fpasswd/0/log",
		run + "/tasks/hello.sh/0%2F..%2F..%2F/log",
		"/api/runs/..%2F..%2Fsecret.txt/tasks/hello.sh/0/log",
		"/api/runs/%2e%2e/tasks/hello.sh/0/log",
		"/api/runs/..%2Fruns/tasks/x/0/log",
		run + "/tasks/hello.sh/0/log?attempt=1%2F..%2F..",
		run + "/tasks/hello.sh/0/log/../../../../secret.txt",
		run + "/tasks/hello.sh/0/..%2F..%2F..%2F..%2Fsecret.txt",
	} {
		res := e.do("GET", p, "")
		if strings.Contains(string(res.body), "TOP SECRET") {
			t.Errorf("GET %s served a file outside the task's log: %d", p, res.code)
		}
		if res.code == 200 || res.code >= 500 {
			t.Errorf("GET %s: status %d; want a 3xx or 4xx", p, res.code)
		}
	}
	// The raw, unencoded traversal (a client that does not clean paths).
	req, _ := http.NewRequest("GET", e.srv.URL+run+"/tasks/hello.sh/0/log", nil)
	req.URL.Opaque = run + "/tasks/../../../../secret.txt/0/log"
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
		if res.StatusCode == 200 {
			t.Errorf("unencoded ../ path: 200")
		}
	}
}

// A task record (edited by hand, say) that names a file that is not that
// task's log is not served; nor is a log that is a symbolic link.
func TestTaskLogRefusesForeignFiles(t *testing.T) {
	run := "5f0c6c8e-1b1e-4c53-9a43-3a1d2c7b9e10"
	task := &model.Task{RunID: run, Name: "hello.sh", TaskIndex: 1, Attempt: 2, Status: model.TaskRunning,
		Attempts: []model.Attempt{{Attempt: 1, Status: model.TaskFailed}}}
	for _, c := range []struct {
		log     string
		attempt int
		ok      bool
	}{
		{"/o/.ork/logs/" + run + "/hello.sh.1.2.log", 2, true},
		{"/o/.ork/logs/" + run + "/hello.sh.1.2.log", 1, false}, // the current attempt's file for attempt 1
		{"/etc/passwd", 2, false},
		{"/o/.ork/logs/" + run + "/../../secret/hello.sh.1.2.log", 2, false},
		{"/o/.ork/logs/other-run/hello.sh.1.2.log", 2, false},
		{"/o/.ork/logs/" + run + "/hello.sh.0.2.log", 2, false},
		{"/o/.ork/logs/" + run + "/x/hello.sh.1.2.log/../../hello.sh.1.2.log", 2, true}, // cleans to the right file
	} {
		tk := *task
		tk.Log = c.log
		p, err := logFile(run, &tk, c.attempt)
		if c.ok && (err != nil || p == "") {
			t.Errorf("log %q attempt %d: %q, %v; want it served", c.log, c.attempt, p, err)
		}
		if !c.ok && p != "" {
			t.Errorf("log %q attempt %d: served %q; want it refused", c.log, c.attempt, p)
		}
	}
	// A task named by a path must not climb out either.
	bad := &model.Task{RunID: run, Name: "../../x", TaskIndex: 0, Attempt: 1, Log: "/o/.ork/logs/" + run + "/../../x.0.1.log"}
	if p, err := logFile(run, bad, 1); err == nil || p != "" {
		t.Errorf("task named ../../x: log %q served", p)
	}

	e := newEnv(t, Options{})
	secret := filepath.Join(t.TempDir(), "secret.txt")
	os.WriteFile(secret, []byte("TOP SECRET"), 0o644)
	r := e.trigger("hello")
	e.play(r, []model.TaskStatus{model.TaskRunning, model.TaskRunning}, "")
	lp := filepath.Join(e.db.LogDir(), r.ID, "hello.sh.1.1.log")
	os.Remove(lp)
	if err := os.Symlink(secret, lp); err != nil {
		t.Fatal(err)
	}
	res := e.do("GET", "/api/runs/"+r.ID+"/tasks/hello.sh/1/log", "")
	if res.code != 404 || strings.Contains(string(res.body), "TOP SECRET") {
		t.Errorf("log that is a symbolic link: %d %q; want 404", res.code, res.body)
	}
}

// follow=1 streams what a running attempt writes, and ends when it ends.
func TestTaskLogFollow(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.trigger("hello")
	ts := e.play(r, []model.TaskStatus{model.TaskRunning}, "")
	lp := filepath.Join(e.db.LogDir(), r.ID, "hello.sh.0.1.log")
	res, err := http.Get(e.srv.URL + "/api/runs/" + r.ID + "/tasks/hello.sh/0/log?follow=1")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	got := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := res.Body.Read(buf)
			if n > 0 {
				got <- string(buf[:n])
			}
			if err != nil {
				close(got)
				return
			}
		}
	}()
	var all strings.Builder
	readUntil := func(s string) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for !strings.Contains(all.String(), s) {
			select {
			case x, ok := <-got:
				if !ok {
					t.Fatalf("stream ended before %q; got %q", s, all.String())
				}
				all.WriteString(x)
			case <-deadline:
				t.Fatalf("no %q within 5s; got %q", s, all.String())
			}
		}
	}
	readUntil("attempt 1\n")
	f, _ := os.OpenFile(lp, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("more output\n")
	f.Close()
	readUntil("more output\n")
	if _, err := e.db.UpdateTasks(context.Background(), []model.TaskUpdate{{TaskID: ts[0].ID, RunID: r.ID, Attempt: 1, Status: model.TaskSuccess}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-got:
			if !ok {
				return // the stream ended with the attempt
			}
		case <-deadline:
			t.Fatal("the follow stream did not end when the task ended")
		}
	}
}
