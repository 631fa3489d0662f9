package model_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ork-run/ork/model"
)

// TestDecodeKeepsEveryDigit checks that numbers in params keep the digits
// they were written with through decoding and encoding again: through
// float64, 12345678901234567890 became 12345678901234567000 and 1.10 became
// 1.1.
func TestDecodeKeepsEveryDigit(t *testing.T) {
	data := []byte(`{"job_name": "x.sh", "params": {"big": 12345678901234567890, "dec": 1.10, "nested": {"list": [1.10, 1e400]}}}`)
	w, err := model.DecodeWorkflow("keep.json", data)
	if err != nil {
		t.Fatal(err)
	}
	if got := w.Params["big"]; got != json.Number("12345678901234567890") {
		t.Errorf("big = %#v, want json.Number 12345678901234567890", got)
	}
	if got := w.Params["dec"]; got != json.Number("1.10") {
		t.Errorf("dec = %#v, want json.Number 1.10", got)
	}
	out, err := json.Marshal(w.Params)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"big":12345678901234567890,"dec":1.10,"nested":{"list":[1.10,1e400]}}`; string(out) != want {
		t.Errorf("params encode to %s, want %s", out, want)
	}

	run := []byte(`{"id": "r1", "status": "pending", "params": {"big": 12345678901234567890}, "created_at": "2025-03-01T10:00:00Z",
	  "workflow": {"name": "keep", "job_name": "x.sh", "params": {"dec": 1.10}}}`)
	r, err := model.DecodeRun("r1.json", run)
	if err != nil {
		t.Fatal(err)
	}
	tasks := model.NewTasks(r, r.CreatedAt)
	if len(tasks) != 1 {
		t.Fatalf("NewTasks: %d tasks", len(tasks))
	}
	out, _ = json.Marshal(tasks[0].Params)
	if want := `{"big":12345678901234567890,"dec":1.10}`; string(out) != want {
		t.Errorf("task params encode to %s, want %s", out, want)
	}
}

// TestDecodeWorkflowFileName checks the rule `ork validate` and `ork
// trigger` share: a name field must be the file's name.
func TestDecodeWorkflowFileName(t *testing.T) {
	for _, tt := range []struct {
		path, data, err string
	}{
		{"wf/hello.json", `{"job_name": "x.sh"}`, ""},
		{"wf/hello.json", `{"name": "hello", "job_name": "x.sh"}`, ""},
		{`wf\hello.json`, `{"name": "hello", "job_name": "x.sh"}`, ""},
		{"wf/hello.json", `{"name": "other", "job_name": "x.sh"}`, `the file is named "hello" but its name field says "other"`},
	} {
		_, err := model.DecodeWorkflowFile(tt.path, []byte(tt.data))
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%s %s: %v, want ok", tt.path, tt.data, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err) || !strings.HasPrefix(err.Error(), tt.path+": ")):
			t.Errorf("%s %s: error %v, want one naming the file and saying %q", tt.path, tt.data, err, tt.err)
		}
	}
}

// TestWhenThatCanNeverHold checks that conditions no upstream output can
// make true are validation errors, and that the possible ones still pass.
func TestWhenThatCanNeverHold(t *testing.T) {
	wf := func(when string) string {
		return `{"tasks": {
		  "one": {"job_name": "one.sh"},
		  "parts": {"job_name": "p.sh", "task_count": 4},
		  "next": {"job_name": "n.sh", "depends_on": ["one", "parts"], "when": ` + strings.ReplaceAll(jsonString(when), "\n", "") + `}}}`
	}
	for _, tt := range []struct{ when, err string }{
		{`parts.ok == true`, "parts is a fan-out of 4 tasks"},
		{`parts[4].ok == true`, "index 4 is past the end of the fan-out parts"},
		{`one[0].ok == true`, "one is not a fan-out"},
		{`one.n > "5"`, `"5" is a string, and > compares two numbers or two strings`},
		{`one.n <= true`, "<= compares two numbers or two strings, not true or false"},
		{`one.n < null`, "not null"},
		{`one.n >= [1]`, "not an array"},
	} {
		_, err := model.DecodeWorkflow("w.json", []byte(wf(tt.when)))
		if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), `task "next": when:`) {
			t.Errorf("when %s: error %v, want one for task next saying %q", tt.when, err, tt.err)
		}
	}
	for _, when := range []string{`parts[3].ok == true`, `one.n > 5`, `one.s < "b"`, `one.x == "5"`, `parts[0] != null`} {
		if _, err := model.DecodeWorkflow("w.json", []byte(wf(when))); err != nil {
			t.Errorf("when %s: %v, want it valid", when, err)
		}
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
