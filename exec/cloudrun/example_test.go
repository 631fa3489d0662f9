//go:build cloudrun

package cloudrun_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/exec/cloudrun"
	"github.com/ork-run/ork/exec/cloudrun/cloudruntest"
	"github.com/ork-run/ork/model"
)

func ExampleExecutor() {
	// A fake Cloud Run service with one job, and a service-account key for
	// it: the credentials are found as in production, through
	// GOOGLE_APPLICATION_CREDENTIALS.
	fake := cloudruntest.New()
	defer fake.Close()
	fake.AddJob("acme-prod", "europe-west1", "nightly-export", cloudruntest.Job{Duration: 100 * time.Millisecond})
	dir, err := os.MkdirTemp("", "ork-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	key, err := fake.WriteKey(dir)
	if err != nil {
		log.Fatal(err)
	}
	old, had := os.LookupEnv("GOOGLE_APPLICATION_CREDENTIALS")
	os.Setenv("GOOGLE_APPLICATION_CREDENTIALS", key)
	defer func() {
		if had {
			os.Setenv("GOOGLE_APPLICATION_CREDENTIALS", old)
		} else {
			os.Unsetenv("GOOGLE_APPLICATION_CREDENTIALS")
		}
	}()

	updates := make(chan exec.StatusUpdate, 16)
	e := cloudrun.New(cloudrun.Config{
		Updates:      updates,
		Endpoint:     fake.URL, // default: $ORK_CLOUDRUN_ENDPOINT, else https://run.googleapis.com
		PollInterval: 50 * time.Millisecond,
	})
	defer e.Shutdown(context.Background())

	w := &model.Workflow{Name: "export", JobName: "nightly-export", ExecutorType: model.ExecutorCloudRun,
		Project: "acme-prod", Region: "europe-west1", TaskCount: 1}
	task := &model.Task{ID: "task-1", RunID: "run-1", Name: w.JobName, Attempt: 1,
		Params: map[string]any{"day": "2026-11-27"}}
	if _, err := e.Execute(context.Background(), model.TaskWithWorkflow{Task: task, Workflow: w}); err != nil {
		log.Fatal(err)
	}
	for u := range updates {
		fmt.Println(u.Status)
		if u.Status.Terminal() {
			break
		}
	}
	x := fake.Executions()[0]
	fmt.Println("the container got day =", x.Env["day"], "and ORK_TASK_ID =", x.Env["ORK_TASK_ID"])
	// Output:
	// running
	// success
	// the container got day = 2026-11-27 and ORK_TASK_ID = task-1
}
