//go:build !cloudrun

package cli

import (
	"fmt"
	"log/slog"

	"github.com/urfave/cli/v2"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/model"
)

// registerBuiltExecutors registers the executors of build tags: without
// the cloudrun tag there are none.
func registerBuiltExecutors(c *cli.Context, mgr *exec.Manager, updates chan exec.StatusUpdate, log *slog.Logger) error {
	return nil
}

// executorsBuilt reports whether this binary has the executors workflow w
// needs; one built without the cloudrun tag refuses a cloudrun workflow, or
// a DAG with a cloudrun task, in one line that says how to build one.
func executorsBuilt(w *model.Workflow) error {
	for _, nd := range w.Nodes() {
		if nd.ExecutorType != model.ExecutorCloudRun {
			continue
		}
		what := fmt.Sprintf("workflow %q", w.Name)
		if w.IsDAG() {
			what = fmt.Sprintf("task %q of workflow %q", nd.Name, w.Name)
		}
		return fmt.Errorf("%s runs on executor_type cloudrun, which this ork was built without: build ork with `go build -tags cloudrun` to run Cloud Run jobs", what)
	}
	return nil
}
