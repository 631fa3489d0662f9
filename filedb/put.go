package filedb

import (
	"context"
	"fmt"
	"time"

	"github.com/ork-run/ork/model"
)

// PutWorkflow writes workflows/<name>.json, replacing the workflow of that
// name if there is one (`ork apply`); the write is atomic and durable like
// every other. A replaced workflow keeps its creation time.
func (d *DB) PutWorkflow(ctx context.Context, w *model.Workflow) error {
	w.Normalize()
	if err := w.Validate(); err != nil {
		return fmt.Errorf("workflow %q: %w", w.Name, err)
	}
	now := time.Now().UTC()
	if old, err := d.GetWorkflow(ctx, w.Name); err == nil {
		w.CreatedAt = old.CreatedAt
	} else if w.CreatedAt.IsZero() {
		w.CreatedAt = now
	}
	if w.UpdatedAt.IsZero() {
		w.UpdatedAt = now
	}
	data, err := encode(w)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.commitAll([]fileWrite{{path: d.workflowPath(w.Name), data: data}}, nil); err != nil {
		return fmt.Errorf("write workflow %q: %w", w.Name, err)
	}
	return nil
}

// SchedulerHolder describes the process that holds the directory's
// scheduler lock, or returns "" when none does (see LockHolder).
func (d *DB) SchedulerHolder(ctx context.Context) (string, error) {
	return LockHolder(d.root), nil
}
