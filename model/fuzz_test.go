package model_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/ork-run/ork/model"
)

// Seeds shared by the three targets: broken documents of every kind the
// decoders report. Each target adds valid documents of its own.
var brokenSeeds = []string{
	"",
	" \n\t",
	"{",
	"}",
	"[]",
	"null",
	"\"x\"",
	"42",
	"{\n  \"id\": \"x\",\n  \"job_name\" \"hello.sh\"\n}\n",
	"{\n  \"id\": \"x\",\n  \"job_na",
	"{\n  \"id\": \"x\",\n",
	"{\"id\": \"x\"} garbage",
	"{\"id\": \"x\"}}",
	"{\"id\": \"x\"}\n{\"id\": \"y\"}",
	"{\"id\": \"x\", \"params\": [1, 2]}",
	"{\"id\": \"x\", \"params\": \"a=b\"}",
	"{\"id\": \"ab\ncd\"}",
	"{\"id\": \"x\", \"task_count\": \"3\"}",
	"{\"id\": \"x\", \"created_at\": \"yesterday\"}",
	"{\"id\": \"x\", \"created_at\": 5}",
	"{\"id\": \"x\", \"status\": 1}",
	"{\"id\": \"x\", \"colour\": \"red\"}",
	"\xef\xbb\xbf{\"id\": \"x\"}",
	"{\"id\": \"\xff\xfe\"}",
}

func FuzzDecodeWorkflow(f *testing.F) {
	for _, s := range brokenSeeds {
		f.Add([]byte(s))
	}
	for _, s := range []string{
		`{"name": "hello", "job_name": "hello.sh"}`,
		`{"job_name": "hello.sh"}`,
		`{"id": "w1", "name": "hello", "description": "d <&>", "job_name": "sub/hello.sh", "executor_type": "process",
		  "task_count": 4, "params": {"a": 1, "b": [true, null, 1.5e300, "x"], "c": {"d": {}}, "e": -0},
		  "project": "p", "region": "r", "created_at": "2025-03-01T10:00:00.123456789+01:00", "updated_at": "2025-03-01T10:00:00Z"}`,
		`{"name": "hello", "job_name": "../escape.sh"}`,
		`{"name": "hello", "job_name": "x.sh", "task_count": -1}`,
		`{"name": "hello", "job_name": "x.sh", "executor_type": "k8s"}`,
		`{"NAME": "hello", "Job_Name": "x.sh"}`,
		`{"name": "hello", "name": "again", "job_name": "x.sh"}`,
		`{"name": "hello", "job_name": "x.sh", "params": null}`,
		`{"name": "hello", "job_name": "x.sh", "task_count": 1e2}`,
		`{"name": "hello", "job_name": "x.sh", "task_count": 99999999999999999999}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const path = ".ork/workflows/fuzz.json"
		w, err := model.DecodeWorkflow(path, data)
		if err != nil {
			checkDecodeError(t, path, data, err)
			return
		}
		if err := w.Validate(); err != nil {
			t.Fatalf("DecodeWorkflow returned a workflow that does not validate: %v\ninput: %q", err, data)
		}
		checkRoundTrip(t, data, w, func(b []byte) (any, error) { return model.DecodeWorkflow(path, b) })
	})
}

func FuzzDecodeRun(f *testing.F) {
	for _, s := range brokenSeeds {
		f.Add([]byte(s))
	}
	for _, s := range []string{
		`{"id": "r1", "status": "pending"}`,
		`{"id": "r1", "workflow_id": "w1", "workflow_name": "hello", "status": "running", "triggered_by": "cli",
		  "params": {"a": {"b": [1, "2"]}}, "started_at": "2025-03-01T10:00:01Z", "created_at": "2025-03-01T10:00:00-07:00",
		  "workflow": {"name": "hello", "job_name": "x.sh", "task_count": 2}, "future_field": [1]}`,
		`{"id": "r1", "status": "failed", "error": "boom", "finished_at": "2025-03-01T10:00:01Z", "workflow": null}`,
		`{"id": "r1", "status": "done"}`,
		`{"status": "pending"}`,
		`{"id": "r1", "status": "pending", "workflow": {"task_count": "x"}}`,
		`{"id": "r1", "status": "pending", "workflow": []}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const path = ".ork/runs/fuzz.json"
		r, err := model.DecodeRun(path, data)
		if err != nil {
			checkDecodeError(t, path, data, err)
			return
		}
		if r.ID == "" || !r.Status.Valid() {
			t.Fatalf("DecodeRun returned a run without id or with a bad status: %+v\ninput: %q", r, data)
		}
		checkRoundTrip(t, data, r, func(b []byte) (any, error) { return model.DecodeRun(path, b) })
	})
}

func FuzzDecodeTask(f *testing.F) {
	for _, s := range brokenSeeds {
		f.Add([]byte(s))
	}
	for _, s := range []string{
		`{"id": "t1", "run_id": "r1", "status": "pending"}`,
		`{"id": "t1", "run_id": "r1", "name": "x.sh", "task_index": 3, "status": "success", "execution_name": "pid 9",
		  "params": {"a": 1}, "output": { "rows" : [1, 2] }, "error": "", "attempt": 2, "exit_code": 0,
		  "dispatched_at": "2025-03-01T10:00:00Z", "started_at": "2025-03-01T10:00:01Z",
		  "finished_at": "2025-03-01T10:00:02Z", "created_at": "2025-03-01T09:00:00+05:30"}`,
		`{"id": "t1", "run_id": "r1", "status": "failed", "output": "just text", "exit_code": -1}`,
		`{"id": "t1", "run_id": "r1", "status": "failed", "output": null}`,
		`{"id": "t1", "run_id": "r1", "status": "pending", "task_index": -1}`,
		`{"id": "t1", "status": "pending"}`,
		`{"id": "t1", "run_id": "r1", "status": "pending", "output": {"html": "<b>&</b>"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const path = ".ork/tasks/r1/fuzz.json"
		tk, err := model.DecodeTask(path, data)
		if err != nil {
			checkDecodeError(t, path, data, err)
			return
		}
		if tk.ID == "" || tk.RunID == "" || !tk.Status.Valid() || tk.TaskIndex < 0 {
			t.Fatalf("DecodeTask returned a task it should have refused: %+v\ninput: %q", tk, data)
		}
		checkRoundTrip(t, data, tk, func(b []byte) (any, error) { return model.DecodeTask(path, b) })
	})
}

// checkDecodeError checks that err, from decoding data read from path, is
// a *FileError for path whose line and column, when set, lie inside data.
func checkDecodeError(t *testing.T, path string, data []byte, err error) {
	t.Helper()
	var fe *model.FileError
	if !errors.As(err, &fe) {
		t.Fatalf("error %q (%T) is not a *model.FileError\ninput: %q", err, err, data)
	}
	if fe.Path != path {
		t.Fatalf("FileError.Path = %q, want %q", fe.Path, path)
	}
	if fe.Err == nil {
		t.Fatalf("FileError %q wraps no error", err)
	}
	if fe.Line == 0 {
		if fe.Column != 0 {
			t.Fatalf("error %q has a column (%d) but no line", err, fe.Column)
		}
		return
	}
	lines := bytes.Split(data, []byte("\n"))
	if fe.Line < 1 || fe.Line > len(lines) {
		t.Fatalf("error %q: line %d outside the data's %d lines\ninput: %q", err, fe.Line, len(lines), data)
	}
	// Column len+1 is the end of the line (a file cut short points there).
	if n := len(lines[fe.Line-1]); fe.Column < 1 || fe.Column > n+1 {
		t.Fatalf("error %q: column %d outside line %d (%d bytes)\ninput: %q", err, fe.Column, fe.Line, n, data)
	}
	if !strings.HasPrefix(err.Error(), path+": line ") {
		t.Fatalf("error %q does not start with its path and line", err)
	}
}

// checkRoundTrip checks that v, decoded from data, encodes, and that what
// it encodes to decodes again to the same value: a record ork loads, it can
// save and load again unchanged.
func checkRoundTrip(t *testing.T, data []byte, v any, decode func([]byte) (any, error)) {
	t.Helper()
	enc, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("decoded value does not encode: %v\ninput: %q", err, data)
	}
	v2, err := decode(enc)
	if err != nil {
		t.Fatalf("re-encoded value does not decode: %v\ninput:      %q\nre-encoded: %s", err, data, enc)
	}
	enc2, err := json.Marshal(v2)
	if err != nil {
		t.Fatalf("value decoded a second time does not encode: %v\ninput: %q", err, data)
	}
	if !bytes.Equal(enc, enc2) {
		t.Fatalf("round trip changed the value\ninput:  %q\nfirst:  %s\nsecond: %s", data, enc, enc2)
	}
}
