//go:build !cloudrun

package main

import (
	"errors"

	"github.com/ork-run/ork/exec"
)

// errNoCloudRun is the one line a "cloudrun" workload fails with in a
// perf-test built without the executor.
var errNoCloudRun = errors.New(`executor "cloudrun": this perf-test was built without Cloud Run; build it with ` + "`go build -tags cloudrun ./cmd/perf-test`")

// cloudRunFake has nothing to hold without the tag.
type cloudRunFake struct{}

func (h *harness) registerCloudRun(mgr *exec.Manager, updates chan exec.StatusUpdate) error {
	return errNoCloudRun
}

func (f *cloudRunFake) close() {}

func (f *cloudRunFake) counts() cloudRunCounts { return cloudRunCounts{} }

func (f *cloudRunFake) job() CloudRunConfig { return CloudRunConfig{}.withDefaults() }
