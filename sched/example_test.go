//go:build unix

package sched_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/filedb"
	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/sched"
)

// Example embeds ork in a Go program: a file database in a temporary
// directory, a process executor, the scheduler in a goroutine, one
// workflow of four tasks, and a wait for its run.
func Example() {
	root, err := os.MkdirTemp("", "ork-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)

	// The job: a script that prints the square of its task index.
	scripts := filepath.Join(root, "scripts")
	if err := os.Mkdir(scripts, 0o755); err != nil {
		log.Fatal(err)
	}
	script := "#!/bin/sh\necho $((ORK_TASK_INDEX * ORK_TASK_INDEX))\n"
	if err := os.WriteFile(filepath.Join(scripts, "square.sh"), []byte(script), 0o755); err != nil {
		log.Fatal(err)
	}

	// The database: JSON files under .ork.
	dir := filepath.Join(root, ".ork")
	if err := filedb.Init(dir); err != nil {
		log.Fatal(err)
	}
	db, err := filedb.Open(dir, filedb.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	// The executor runs each task as a process; the scheduler drives it.
	updates := make(chan exec.StatusUpdate, 256)
	mgr := exec.NewManager(updates)
	mgr.Register(model.ExecutorProcess, exec.NewProcessExecutor(exec.ProcessConfig{
		ScriptDir: scripts, LogDir: db.LogDir(), Updates: updates,
	}))
	s := sched.New(db, mgr, sched.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	// A workflow, and a run of it.
	w := &model.Workflow{Name: "squares", JobName: "square.sh", TaskCount: 4}
	if err := db.CreateWorkflow(ctx, w); err != nil {
		log.Fatal(err)
	}
	run := model.NewRun(w, nil, "example", time.Now())
	if err := db.CreateRun(ctx, run); err != nil {
		log.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	got, err := s.WaitRun(wctx, run.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("run", got.Status)

	tasks, err := db.ListTasks(ctx, run.ID)
	if err != nil {
		log.Fatal(err)
	}
	slices.SortFunc(tasks, func(a, b *model.Task) int { return a.TaskIndex - b.TaskIndex })
	for _, t := range tasks {
		p, err := exec.LogPath(db.LogDir(), run.ID, t.Name, t.TaskIndex, t.Attempt)
		if err != nil {
			log.Fatal(err)
		}
		out, err := os.ReadFile(p)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("task %d %s: %s\n", t.TaskIndex, t.Status, strings.TrimSpace(string(out)))
	}

	// Stop the scheduler: Run returns nil on a clean stop.
	cancel()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	// Output:
	// run success
	// task 0 success: 0
	// task 1 success: 1
	// task 2 success: 4
	// task 3 success: 9
}
