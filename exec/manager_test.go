package exec

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ork-run/ork/model"
)

// fakeExecutor counts Shutdown calls and fails them with err.
type fakeExecutor struct {
	err       error
	shutdowns atomic.Int32
}

func (f *fakeExecutor) Execute(context.Context, model.TaskWithWorkflow) (string, error) {
	return "fake", nil
}

func (f *fakeExecutor) Check(context.Context, model.TaskWithWorkflow) (StatusUpdate, bool, error) {
	return StatusUpdate{}, false, nil
}

func (f *fakeExecutor) Shutdown(context.Context) error {
	f.shutdowns.Add(1)
	return f.err
}

func TestManagerFor(t *testing.T) {
	updates := make(chan StatusUpdate, 1)
	m := NewManager(updates)
	proc := NewProcessExecutor(ProcessConfig{ScriptDir: t.TempDir(), LogDir: t.TempDir(), Updates: updates})
	other := &fakeExecutor{}
	m.Register(model.ExecutorProcess, proc)
	m.Register("other", other)

	tests := []struct {
		typ     string
		want    Executor
		wantErr string
	}{
		{model.ExecutorProcess, proc, ""},
		{"", proc, ""}, // an unnormalized workflow means a process
		{"other", other, ""},
		{"cloudrun", nil, `no executor for executor_type "cloudrun" in this build of ork: build it with ` + "`go build -tags cloudrun`"},
		{"Process", nil, `no executor for executor_type "Process"`},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			got, err := m.For(&model.Workflow{Name: "wf", JobName: "job.sh", ExecutorType: tt.typ})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("For = %v, %v; want an error containing %q", got, err, tt.wantErr)
				}
				if got != nil {
					t.Errorf("For returned executor %v with its error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("For = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	if m.Updates() != (<-chan StatusUpdate)(updates) {
		t.Error("Updates is not the channel given to NewManager")
	}
	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	tw := model.TaskWithWorkflow{
		Task:     &model.Task{ID: "t", RunID: "r", Name: "job.sh", Attempt: 1},
		Workflow: &model.Workflow{Name: "wf", JobName: "job.sh", TaskCount: 1},
	}
	if _, err := proc.Execute(context.Background(), tw); !errors.Is(err, ErrShutdown) {
		t.Errorf("Execute after Manager.Shutdown = %v, want ErrShutdown", err)
	}
}

func TestManagerRegisterReplaces(t *testing.T) {
	m := NewManager(make(chan StatusUpdate))
	first, second := &fakeExecutor{}, &fakeExecutor{}
	m.Register("x", first)
	m.Register("x", second)
	if got, err := m.For(&model.Workflow{ExecutorType: "x"}); err != nil || got != second {
		t.Errorf("For = %v, %v; want the executor registered last", got, err)
	}
}

func TestManagerShutdown(t *testing.T) {
	m := NewManager(make(chan StatusUpdate))
	boom := errors.New("boom")
	a, b, c := &fakeExecutor{}, &fakeExecutor{err: boom}, &fakeExecutor{}
	m.Register("a", a)
	m.Register("b", b)
	m.Register("c", c)
	if err := m.Shutdown(context.Background()); !errors.Is(err, boom) {
		t.Errorf("Shutdown = %v, want the failing executor's error", err)
	}
	for name, e := range map[string]*fakeExecutor{"a": a, "b": b, "c": c} {
		if n := e.shutdowns.Load(); n != 1 {
			t.Errorf("executor %s shut down %d times, want once even when another fails", name, n)
		}
	}
}
