//go:build !linux

package exec

import (
	"context"

	"github.com/ork-run/ork/model"
)

// Sweep would kill the processes a dead scheduler's tasks left behind. It
// finds them through /proc, which only Linux has here: elsewhere it does
// nothing and returns 0.
func (e *ProcessExecutor) Sweep(ctx context.Context, unfinished []model.TaskWithWorkflow) (int, error) {
	return 0, nil
}
