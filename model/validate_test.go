package model_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ork-run/ork/model"
)

func TestValidateName(t *testing.T) {
	tests := []struct {
		name    string
		wantErr string // "" for valid
	}{
		{"hello", ""},
		{"Hello-World_2", ""},
		{"a", ""},
		{"0", ""},
		{strings.Repeat("x", 100), ""},
		{"", "empty"},
		{strings.Repeat("x", 101), "longer than 100"},
		{"has space", "use only letters"},
		{"dot.json", "use only letters"},
		{"sub/dir", "use only letters"},
		{"..", "use only letters"},
		{"ünïcode", "use only letters"},
		{"tab\t", "use only letters"},
	}
	for _, tt := range tests {
		err := model.ValidateName(tt.name)
		checkErr(t, fmt.Sprintf("ValidateName(%q)", tt.name), err, tt.wantErr)
	}
}

func TestValidateJobName(t *testing.T) {
	tests := []struct {
		job     string
		wantErr string
	}{
		{"x.sh", ""},
		{"sub/dir/x.sh", ""},
		{"./x.sh", ""},
		{"a..b.sh", ""},
		{"..x", ""},
		{"x..", ""},
		{"sub//x.sh", ""},
		{"", "empty"},
		{".", "names no file"},
		{"./", "names no file"},
		{"sub/..", "'..' is not allowed"},
		{"..", "'..' is not allowed"},
		{"../x.sh", "'..' is not allowed"},
		{"a/../b", "'..' is not allowed"},
		{"a/b/../../../etc/passwd", "'..' is not allowed"},
		{"/abs", "absolute path"},
		{"/", "absolute path"},
		{"/usr/bin/env", "absolute path"},
		{"x\x00.sh", "NUL"},
	}
	for _, tt := range tests {
		err := model.ValidateJobName(tt.job)
		checkErr(t, fmt.Sprintf("ValidateJobName(%q)", tt.job), err, tt.wantErr)
	}
}

func TestValidateExecutorType(t *testing.T) {
	tests := []struct {
		typ     string
		wantErr string
	}{
		{model.ExecutorProcess, ""},
		{"", "unknown"},
		{"Process", "unknown"},
		{"cloudrun-typo", "unknown"},
	}
	for _, tt := range tests {
		err := model.ValidateExecutorType(tt.typ)
		checkErr(t, fmt.Sprintf("ValidateExecutorType(%q)", tt.typ), err, tt.wantErr)
	}
	// Every listed type is accepted.
	for _, typ := range model.ExecutorTypes {
		if err := model.ValidateExecutorType(typ); err != nil {
			t.Errorf("ValidateExecutorType(%q) = %v, want nil for a listed type", typ, err)
		}
	}
}

func TestWorkflowNormalize(t *testing.T) {
	tests := []struct {
		desc string
		in   model.Workflow
		want model.Workflow
	}{
		{
			desc: "defaults",
			in:   model.Workflow{Name: "hello", JobName: "hello.sh"},
			want: model.Workflow{ID: model.WorkflowID("hello"), Name: "hello", JobName: "hello.sh", ExecutorType: model.ExecutorProcess, TaskCount: 1},
		},
		{
			desc: "given values stay",
			in:   model.Workflow{ID: "my-id", Name: "hello", JobName: "hello.sh", ExecutorType: "other", TaskCount: 7},
			want: model.Workflow{ID: "my-id", Name: "hello", JobName: "hello.sh", ExecutorType: "other", TaskCount: 7},
		},
		{
			desc: "negative task count is left for Validate",
			in:   model.Workflow{Name: "hello", JobName: "hello.sh", TaskCount: -2},
			want: model.Workflow{ID: model.WorkflowID("hello"), Name: "hello", JobName: "hello.sh", ExecutorType: model.ExecutorProcess, TaskCount: -2},
		},
		{
			desc: "no name, no id",
			in:   model.Workflow{JobName: "x.sh"},
			want: model.Workflow{JobName: "x.sh", ExecutorType: model.ExecutorProcess, TaskCount: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			got := tt.in
			got.Normalize()
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Normalize:\n got  %+v\n want %+v", got, tt.want)
			}
			again := got
			again.Normalize()
			if !reflect.DeepEqual(again, got) {
				t.Errorf("Normalize is not idempotent:\n once  %+v\n twice %+v", got, again)
			}
		})
	}
}

func TestWorkflowValidate(t *testing.T) {
	valid := func() model.Workflow {
		w := model.Workflow{Name: "hello", JobName: "sub/hello.sh"}
		w.Normalize()
		return w
	}
	tests := []struct {
		desc     string
		edit     func(w *model.Workflow)
		wantErrs []string // every substring must appear; nil for valid
	}{
		{"valid", func(w *model.Workflow) {}, nil},
		{"bad name", func(w *model.Workflow) { w.Name = "a b" }, []string{`name "a b"`}},
		{"escaping job", func(w *model.Workflow) { w.JobName = "../x" }, []string{"'..' is not allowed"}},
		{"unknown executor", func(w *model.Workflow) { w.ExecutorType = "k8s" }, []string{`executor_type "k8s" is unknown`}},
		{"zero task count", func(w *model.Workflow) { w.TaskCount = 0 }, []string{"task_count 0 is less than 1"}},
		{"every problem at once", func(w *model.Workflow) {
			w.Name = ""
			w.JobName = "/abs"
			w.ExecutorType = "k8s"
			w.TaskCount = -1
		}, []string{"name is empty", "absolute path", `executor_type "k8s"`, "task_count -1"}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			w := valid()
			tt.edit(&w)
			err := w.Validate()
			if tt.wantErrs == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors containing %q", tt.wantErrs)
			}
			msg := err.Error()
			for _, want := range tt.wantErrs {
				if !strings.Contains(msg, want) {
					t.Errorf("Validate() = %q, want it to contain %q", msg, want)
				}
			}
			if lines := strings.Count(msg, "\n") + 1; lines != len(tt.wantErrs) {
				t.Errorf("Validate() = %q: %d lines, want one line per problem (%d)", msg, lines, len(tt.wantErrs))
			}
		})
	}
}

func checkErr(t *testing.T, call string, err error, wantErr string) {
	t.Helper()
	switch {
	case wantErr == "" && err != nil:
		t.Errorf("%s = %v, want nil", call, err)
	case wantErr != "" && err == nil:
		t.Errorf("%s = nil, want an error containing %q", call, wantErr)
	case wantErr != "" && !strings.Contains(err.Error(), wantErr):
		t.Errorf("%s = %q, want an error containing %q", call, err, wantErr)
	}
}
