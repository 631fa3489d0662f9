package model_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ork-run/ork/model"
)

// decoders runs a test against each of the three file decoders, which share
// DecodeJSON for everything about syntax.
var decoders = []struct {
	name   string
	decode func(path string, data []byte) error
}{
	{"workflow", func(p string, d []byte) error { _, err := model.DecodeWorkflow(p, d); return err }},
	{"run", func(p string, d []byte) error { _, err := model.DecodeRun(p, d); return err }},
	{"task", func(p string, d []byte) error { _, err := model.DecodeTask(p, d); return err }},
}

// wantFileError checks that err is a *FileError for path at line:col (0:0
// for none) whose message contains msg, and that its text says all that.
func wantFileError(t *testing.T, err error, path string, line, col int, msg string) *model.FileError {
	t.Helper()
	if err == nil {
		t.Fatalf("decoding %s: no error, want one containing %q", path, msg)
	}
	var fe *model.FileError
	if !errors.As(err, &fe) {
		t.Fatalf("decoding %s: error %q (%T) is not a *model.FileError", path, err, err)
	}
	if fe.Path != path {
		t.Errorf("FileError.Path = %q, want %q", fe.Path, path)
	}
	if fe.Line != line || fe.Column != col {
		t.Errorf("error %q is at line %d, column %d; want line %d, column %d", err, fe.Line, fe.Column, line, col)
	}
	prefix := path + ": "
	if line > 0 {
		prefix = fmt.Sprintf("%s: line %d, column %d: ", path, line, col)
	}
	if !strings.HasPrefix(err.Error(), prefix) {
		t.Errorf("error %q does not start with %q", err, prefix)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("error %q does not contain %q", err, msg)
	}
	if fe.Unwrap() == nil {
		t.Errorf("FileError %q wraps no error", err)
	}
	return fe
}

func TestDecodeSyntaxErrors(t *testing.T) {
	tests := []struct {
		desc      string
		data      string
		line, col int
		msg       string
	}{
		{
			desc: "missing colon on line 3",
			data: "{\n  \"id\": \"x\",\n  \"job_name\" \"hello.sh\"\n}\n",
			line: 3, col: 14, msg: `invalid character '"' after object key`,
		},
		{
			desc: "bad character in a value on line 3",
			data: "{\n  \"id\": \"x\",\n  \"task_count\": 3x\n}\n",
			line: 3, col: 18, msg: "invalid character 'x'",
		},
		{
			desc: "closing brace after a comma on line 3",
			data: "{\n  \"id\": \"x\",\n  \"job_name\": \"x\",}\n",
			line: 3, col: 19, msg: "invalid character '}'",
		},
		{
			desc: "bad literal on line 3",
			data: "{\n  \"id\": \"x\",\n  \"job_name\": nope\n}\n",
			line: 3, col: 16, msg: "invalid character 'o' in literal null",
		},
		{
			// Columns count bytes, as Go's own tools do: "é" is two.
			desc: "after multi-byte text on the same line",
			data: "{\n  \"id\": \"x\",\n  \"d\": \"é\", x\n}\n",
			line: 3, col: 14, msg: "invalid character 'x'",
		},
		{
			desc: "newline inside a string",
			data: "{\"id\": \"ab\ncd\"}",
			line: 1, col: 11, msg: `invalid character '\n' in string literal`,
		},
		{
			desc: "CRLF line ends",
			data: "{\r\n  \"id\": \"x\",\r\n  ]\r\n}",
			line: 3, col: 3, msg: "invalid character ']'",
		},
		{
			desc: "first byte",
			data: "x",
			line: 1, col: 1, msg: "invalid character 'x'",
		},
	}
	for _, d := range decoders {
		for _, tt := range tests {
			t.Run(d.name+"/"+tt.desc, func(t *testing.T) {
				path := ".ork/" + d.name + "s/x.json"
				wantFileError(t, d.decode(path, []byte(tt.data)), path, tt.line, tt.col, tt.msg)
			})
		}
	}
}

func TestDecodeTruncated(t *testing.T) {
	tests := []struct {
		desc      string
		data      string
		line, col int
	}{
		{"mid key", "{\n  \"id\": \"x\",\n  \"job_na", 3, 10},
		{"after a comma", "{\n  \"id\": \"x\",\n", 3, 1},
		{"mid nested object", "{\n  \"params\": {\"a\": {\"b\": 1}", 2, 27},
		{"just an opening brace", "{", 1, 2},
		{"mid literal", "{\"id\": tr", 1, 10},
	}
	for _, d := range decoders {
		for _, tt := range tests {
			t.Run(d.name+"/"+tt.desc, func(t *testing.T) {
				wantFileError(t, d.decode("x.json", []byte(tt.data)), "x.json", tt.line, tt.col, "cut short")
			})
		}
	}
}

func TestDecodeEmpty(t *testing.T) {
	for _, d := range decoders {
		for _, data := range []string{"", " ", "\n\n\t \r\n"} {
			t.Run(fmt.Sprintf("%s/%q", d.name, data), func(t *testing.T) {
				wantFileError(t, d.decode("e.json", []byte(data)), "e.json", 0, 0, "file is empty")
			})
		}
	}
}

func TestDecodeTrailingData(t *testing.T) {
	// One valid object for each decoder.
	objs := map[string]string{
		"workflow": `{"id": "x", "name": "hello", "job_name": "x.sh"}`,
		"run":      `{"id": "x", "status": "pending"}`,
		"task":     `{"id": "x", "run_id": "r", "status": "pending"}`,
	}
	tests := []struct {
		desc      string
		data      string
		line, col int // col < 0: counted from the end of the object on line 1
	}{
		{"word on a later line", "OBJ\n\n  garbage\n", 3, 3},
		{"second object", "OBJ {}", 1, -2},
		{"extra closing brace", "OBJ}", 1, -1},
		{"extra closing bracket", "OBJ\n]", 2, 1},
		{"a number", "OBJ\n1", 2, 1},
	}
	for _, d := range decoders {
		obj := objs[d.name]
		// The object is valid on its own, trailing white space too.
		if err := d.decode("x.json", []byte(obj+"\n \r\n\t")); err != nil {
			t.Fatalf("%s: decoding a valid object with trailing space: %v", d.name, err)
		}
		for _, tt := range tests {
			t.Run(d.name+"/"+tt.desc, func(t *testing.T) {
				data := strings.Replace(tt.data, "OBJ", obj, 1)
				col := tt.col
				if col < 0 {
					col = len(obj) - col
				}
				wantFileError(t, d.decode("x.json", []byte(data)), "x.json", tt.line, col, "unexpected data after the JSON value")
			})
		}
	}
}

func TestDecodeWrongType(t *testing.T) {
	tests := []struct {
		desc      string
		data      string
		decoders  []string // which decoders; nil for all
		line, col int
		msg       string
	}{
		{
			desc: "task_count a string",
			data: "{\n  \"name\": \"hello\",\n  \"task_count\": \"3\",\n  \"job_name\": \"x.sh\"\n}\n",
			// task_count is a field of workflows only.
			decoders: []string{"workflow"},
			line:     3, col: 17, msg: `field "task_count" must be a number, not string`,
		},
		{
			desc:     "task_count a fraction",
			data:     "{\"name\": \"hello\", \"job_name\": \"x.sh\",\n \"task_count\": 1.5}",
			decoders: []string{"workflow"},
			line:     2, col: 16, msg: `field "task_count" must be a number, not number 1.5`,
		},
		{
			desc: "params an array",
			data: "{\n  \"id\": \"x\",\n  \"params\": [1, 2]\n}\n",
			line: 3, col: 13, msg: `field "params" must be an object, not array`,
		},
		{
			desc: "params a string",
			data: "{\n  \"id\": \"x\",\n  \"params\": \"a=b\"\n}\n",
			line: 3, col: 13, msg: `field "params" must be an object, not string`,
		},
		{
			desc: "params a number",
			data: "{\"id\": \"x\", \"params\": 7}",
			line: 1, col: 23, msg: `field "params" must be an object, not number`,
		},
		{
			desc:     "status a number",
			data:     "{\"id\": \"x\",\n\"status\": 1}",
			decoders: []string{"run", "task"},
			line:     2, col: 11, msg: `field "status" must be a string, not number`,
		},
		{
			desc:     "task_index a bool",
			data:     "{\"id\": \"x\", \"run_id\": \"r\",\n\n  \"task_index\": true}",
			decoders: []string{"task"},
			line:     3, col: 17, msg: `field "task_index" must be a number, not bool`,
		},
		{
			desc:     "nested snapshot field",
			data:     "{\"id\": \"x\", \"status\": \"pending\",\n \"workflow\": {\"name\": \"a\",\n  \"task_count\": \"many\"}}",
			decoders: []string{"run"},
			line:     3, col: 17, msg: `task_count" must be a number, not string`,
		},
		{
			desc: "the file an array",
			data: "[\n  {\"id\": \"x\"}\n]",
			line: 1, col: 1, msg: "the file must be an object, not array",
		},
		{
			desc: "the file a string",
			data: "  \"x\"",
			line: 1, col: 3, msg: "the file must be an object, not string",
		},
	}
	for _, d := range decoders {
		for _, tt := range tests {
			if tt.decoders != nil && !contains(tt.decoders, d.name) {
				continue
			}
			t.Run(d.name+"/"+tt.desc, func(t *testing.T) {
				wantFileError(t, d.decode("x.json", []byte(tt.data)), "x.json", tt.line, tt.col, tt.msg)
			})
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestDecodeWorkflowUnknownField(t *testing.T) {
	tests := []struct {
		desc      string
		data      string
		line, col int
		field     string
	}{
		{
			desc: "typo on line 3",
			data: "{\n  \"name\": \"hello\",\n  \"job_nme\": \"x.sh\",\n  \"job_name\": \"x.sh\"\n}\n",
			line: 3, col: 3, field: "job_nme",
		},
		{
			desc: "same word used as a value and a param key first",
			data: "{\"description\": \"colour\", \"params\": {\"colour\": 1}, \"job_name\": \"x.sh\",\n \"colour\": \"red\"}",
			line: 2, col: 2, field: "colour",
		},
		{
			desc: "escaped key",
			data: "{\"job_name\": \"x.sh\",\n\t\"col\\u006fr\": 1}",
			line: 2, col: 2, field: "color",
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			_, err := model.DecodeWorkflow("w/hello.json", []byte(tt.data))
			wantFileError(t, err, "w/hello.json", tt.line, tt.col, fmt.Sprintf("unknown field %q", tt.field))
		})
	}

	// Run and task records allow unknown fields: a newer ork may add some.
	run := "{\"id\": \"r1\", \"status\": \"pending\", \"colour\": \"red\", \"workflow\": {\"name\": \"a\", \"extra\": 1}}"
	if _, err := model.DecodeRun("r1.json", []byte(run)); err != nil {
		t.Errorf("DecodeRun with unknown fields: %v, want nil", err)
	}
	task := "{\"id\": \"t1\", \"run_id\": \"r1\", \"status\": \"pending\", \"colour\": \"red\"}"
	if _, err := model.DecodeTask("t1.json", []byte(task)); err != nil {
		t.Errorf("DecodeTask with unknown fields: %v, want nil", err)
	}
}

func TestDecodeWorkflow(t *testing.T) {
	data := []byte(`{
  "name": "hello",
  "description": "says hello",
  "job_name": "sub/hello.sh",
  "params": {"greeting": "hi", "n": 2, "nested": {"list": [1, "two", true, null]}},
  "project": "p",
  "region": "europe-west1",
  "created_at": "2025-03-01T10:00:00.123456Z"
}`)
	w, err := model.DecodeWorkflow(".ork/workflows/hello.json", data)
	if err != nil {
		t.Fatalf("DecodeWorkflow: %v", err)
	}
	if w.ID != model.WorkflowID("hello") {
		t.Errorf("ID = %q, want WorkflowID(\"hello\") = %q", w.ID, model.WorkflowID("hello"))
	}
	if w.ExecutorType != model.ExecutorProcess || w.TaskCount != 1 {
		t.Errorf("defaults: executor_type %q, task_count %d; want %q, 1", w.ExecutorType, w.TaskCount, model.ExecutorProcess)
	}
	if w.Description != "says hello" || w.JobName != "sub/hello.sh" || w.Project != "p" || w.Region != "europe-west1" {
		t.Errorf("fields not decoded: %+v", w)
	}
	if got := w.CreatedAt.Nanosecond(); got != 123456000 {
		t.Errorf("created_at nanoseconds = %d, want 123456000", got)
	}
	nested, _ := w.Params["nested"].(map[string]any)
	if w.Params["greeting"] != "hi" || w.Params["n"] != json.Number("2") || nested == nil || len(nested["list"].([]any)) != 4 {
		t.Errorf("params = %#v", w.Params)
	}

	// The id derived from the name is stable across calls and distinct
	// between names.
	w2, err := model.DecodeWorkflow(".ork/workflows/hello.json", data)
	if err != nil {
		t.Fatal(err)
	}
	if w2.ID != w.ID {
		t.Errorf("second decode gave id %q, first %q: want the same", w2.ID, w.ID)
	}
	if model.WorkflowID("hello") == model.WorkflowID("hello2") {
		t.Errorf("WorkflowID is the same for different names")
	}

	// A given id is kept.
	w3, err := model.DecodeWorkflow("x.json", []byte(`{"id": "my-id", "name": "hello", "job_name": "x.sh", "task_count": 4}`))
	if err != nil {
		t.Fatal(err)
	}
	if w3.ID != "my-id" || w3.TaskCount != 4 {
		t.Errorf("id %q task_count %d, want my-id and 4", w3.ID, w3.TaskCount)
	}

	// A file without a name is named after the file.
	w4, err := model.DecodeWorkflow(".ork/workflows/from-file.json", []byte(`{"job_name": "x.sh"}`))
	if err != nil {
		t.Fatal(err)
	}
	if w4.Name != "from-file" || w4.ID != model.WorkflowID("from-file") {
		t.Errorf("name %q id %q, want the name from the file and its id", w4.Name, w4.ID)
	}
}

func TestDecodeWorkflowInvalid(t *testing.T) {
	data := []byte("{\"name\": \"hello\", \"job_name\": \"../escape.sh\", \"executor_type\": \"k8s\"}")
	_, err := model.DecodeWorkflow("w.json", data)
	fe := wantFileError(t, err, "w.json", 0, 0, "'..' is not allowed")
	if !strings.Contains(fe.Error(), `executor_type "k8s"`) {
		t.Errorf("error %q does not name every problem", fe)
	}
}

func TestDecodeRun(t *testing.T) {
	data := []byte(`{
  "id": "r1",
  "workflow_id": "w1",
  "workflow_name": "hello",
  "status": "running",
  "params": {"a": 1},
  "started_at": "2025-03-01T10:00:01Z",
  "created_at": "2025-03-01T10:00:00Z",
  "workflow": {"name": "hello", "job_name": "x.sh"}
}`)
	r, err := model.DecodeRun("r1.json", data)
	if err != nil {
		t.Fatalf("DecodeRun: %v", err)
	}
	if r.ID != "r1" || r.Status != model.RunRunning || r.StartedAt == nil || r.Params["a"] != json.Number("1") {
		t.Errorf("run = %+v", r)
	}
	// The snapshot is normalized like a workflow file.
	if r.Workflow == nil || r.Workflow.ID != model.WorkflowID("hello") || r.Workflow.TaskCount != 1 || r.Workflow.ExecutorType != model.ExecutorProcess {
		t.Errorf("workflow snapshot = %+v, want it normalized", r.Workflow)
	}

	for _, tt := range []struct{ data, msg string }{
		{`{"status": "pending"}`, "run has no id"},
		{`{"id": "r1"}`, `run status "" is unknown`},
		{`{"id": "r1", "status": "done"}`, `run status "done" is unknown`},
	} {
		_, err := model.DecodeRun("r.json", []byte(tt.data))
		wantFileError(t, err, "r.json", 0, 0, tt.msg)
	}
}

func TestDecodeTask(t *testing.T) {
	data := []byte(`{"id": "t1", "run_id": "r1", "name": "x.sh", "task_index": 2, "status": "success",
  "attempt": 1, "exit_code": 0, "output": {"rows": 3}}`)
	tk, err := model.DecodeTask("t1.json", data)
	if err != nil {
		t.Fatalf("DecodeTask: %v", err)
	}
	if tk.ID != "t1" || tk.RunID != "r1" || tk.TaskIndex != 2 || tk.Status != model.TaskSuccess || tk.ExitCode == nil || *tk.ExitCode != 0 || string(tk.Output) != `{"rows": 3}` {
		t.Errorf("task = %+v", tk)
	}

	for _, tt := range []struct{ data, msg string }{
		{`{"run_id": "r1", "status": "pending"}`, "task has no id or run_id"},
		{`{"id": "t1", "status": "pending"}`, "task has no id or run_id"},
		{`{"id": "t1", "run_id": "r1", "status": "queued"}`, `task status "queued" is unknown`},
		{`{"id": "t1", "run_id": "r1", "status": "pending", "task_index": -1}`, "task_index -1 is negative"},
	} {
		_, err := model.DecodeTask("t.json", []byte(tt.data))
		wantFileError(t, err, "t.json", 0, 0, tt.msg)
	}
}

func TestFileError(t *testing.T) {
	inner := errors.New("boom")
	err := error(&model.FileError{Path: "a/b.json", Line: 3, Column: 7, Err: inner})
	if got, want := err.Error(), "a/b.json: line 3, column 7: boom"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, inner) {
		t.Errorf("errors.Is(FileError, inner) = false")
	}
	wrapped := fmt.Errorf("load: %w", err)
	var fe *model.FileError
	if !errors.As(wrapped, &fe) || fe.Line != 3 {
		t.Errorf("errors.As through a wrap failed: %v", fe)
	}
	noLine := &model.FileError{Path: "a/b.json", Err: inner}
	if got, want := noLine.Error(), "a/b.json: boom"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
