package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/filedb"
	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/sched"
)

// TestEmbeddingOrk shows ork embedded in a Go test: a file database on
// t.TempDir(), a process executor, the scheduler in a goroutine, one
// workflow, and a wait for its run.
func TestEmbeddingOrk(t *testing.T) {
	root := t.TempDir()
	scripts := filepath.Join(root, "scripts")
	os.MkdirAll(scripts, 0o755)
	os.WriteFile(filepath.Join(scripts, "square.sh"), []byte("#!/bin/sh\necho $((ORK_TASK_INDEX * ORK_TASK_INDEX))\n"), 0o755)

	dir := filepath.Join(root, ".ork")
	if err := filedb.Init(dir); err != nil {
		t.Fatal(err)
	}
	db, err := filedb.Open(dir, filedb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	updates := make(chan exec.StatusUpdate, 256)
	mgr := exec.NewManager(updates)
	mgr.Register(model.ExecutorProcess, exec.NewProcessExecutor(exec.ProcessConfig{
		ScriptDir: scripts, LogDir: db.LogDir(), Updates: updates,
	}))
	s := sched.New(db, mgr, sched.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("scheduler: %v", err)
		}
	}()

	w := &model.Workflow{Name: "squares", JobName: "square.sh", TaskCount: 4}
	if err := db.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	run := model.NewRun(w, nil, "test", time.Now())
	if err := db.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	got, err := s.WaitRun(wctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != model.RunSuccess {
		t.Fatalf("run %s: %s", got.Status, got.Error)
	}
	tasks, _ := db.ListTasks(ctx, run.ID)
	for _, task := range tasks {
		log, _ := os.ReadFile(filepath.Join(db.LogDir(), run.ID, fmt.Sprintf("square.sh.%d.1.log", task.TaskIndex)))
		if want := fmt.Sprintf("%d\n", task.TaskIndex*task.TaskIndex); string(log) != want {
			t.Errorf("task %d printed %q, want %q", task.TaskIndex, log, want)
		}
	}
}
