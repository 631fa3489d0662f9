//go:build unix

package exec_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/model"
)

func ExampleProcessExecutor() {
	dir, err := os.MkdirTemp("", "ork-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// A script is any executable file with a #! line in the script directory.
	scripts := filepath.Join(dir, "scripts")
	if err := os.Mkdir(scripts, 0o755); err != nil {
		log.Fatal(err)
	}
	script := "#!/bin/sh\necho \"hello, $name, from task $ORK_TASK_INDEX of $ORK_WORKFLOW\"\n"
	if err := os.WriteFile(filepath.Join(scripts, "hello.sh"), []byte(script), 0o755); err != nil {
		log.Fatal(err)
	}

	updates := make(chan exec.StatusUpdate, 16)
	e := exec.NewProcessExecutor(exec.ProcessConfig{
		ScriptDir: scripts,
		LogDir:    filepath.Join(dir, "logs"),
		Updates:   updates,
	})
	defer e.Shutdown(context.Background())

	w := &model.Workflow{Name: "greet", JobName: "hello.sh", TaskCount: 1}
	task := &model.Task{
		ID: "task-1", RunID: "run-1", Name: w.JobName, TaskIndex: 0, Attempt: 1,
		Params: map[string]any{"name": "world"},
	}
	if _, err := e.Execute(context.Background(), model.TaskWithWorkflow{Task: task, Workflow: w}); err != nil {
		log.Fatal(err)
	}

	// The executor reports the start, then exactly one end.
	for u := range updates {
		fmt.Println(u.Status)
		if u.Status.Terminal() {
			fmt.Println("exit code", *u.ExitCode)
			break
		}
	}

	logFile, err := exec.LogPath(filepath.Join(dir, "logs"), task.RunID, task.Name, task.TaskIndex, task.Attempt)
	if err != nil {
		log.Fatal(err)
	}
	out, err := os.ReadFile(logFile)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(out))
	// Output:
	// running
	// success
	// exit code 0
	// hello, world, from task 0 of greet
}
