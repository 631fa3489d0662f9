//go:build cloudrun

package cli

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/exec/cloudrun"
	"github.com/ork-run/ork/model"
)

// cloudRunPollEnv sets how often a running Cloud Run execution is looked
// at (a Go duration, like 5s). Default cloudrun.DefaultPollInterval.
const cloudRunPollEnv = "ORK_CLOUDRUN_POLL_INTERVAL"

// registerBuiltExecutors registers the executors of build tags: here, the
// Cloud Run Jobs executor (endpoint from ORK_CLOUDRUN_ENDPOINT, credentials
// from Application Default Credentials, looked up at the first task).
func registerBuiltExecutors(c *cli.Context, mgr *exec.Manager, updates chan exec.StatusUpdate, log *slog.Logger) error {
	var interval time.Duration
	if v := os.Getenv(cloudRunPollEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("%s=%q: want a duration like 5s", cloudRunPollEnv, v)
		}
		interval = d
	}
	mgr.Register(model.ExecutorCloudRun, cloudrun.New(cloudrun.Config{
		Updates:                   updates,
		PollInterval:              interval,
		MaxConcurrentStatusChecks: c.Int("max-concurrent-status-checks"),
		Logger:                    log,
	}))
	return nil
}

// executorsBuilt reports whether this binary has the executors workflow w
// needs: with the cloudrun tag, it has all of them.
func executorsBuilt(w *model.Workflow) error { return nil }
