package sched

import (
	"errors"

	"github.com/ork-run/ork/model"
)

// written sorts out the error of a batch write. A *model.PartialError means
// that every record but the failed ones was written: the batch counts as
// written, and each failed record (a file damaged or removed by hand) is
// reported and left as it is — its update is dropped, not retried, so one
// bad record never holds up the rest. failed holds the ids of the failed
// records: task ids, or run ids for run records. Any other error is
// returned as it is (nothing was written).
func (s *Scheduler) written(what string, err error) (failed map[string]bool, _ error) {
	var pe *model.PartialError
	if !errors.As(err, &pe) {
		return nil, err
	}
	failed = make(map[string]bool, len(pe.Records))
	for _, r := range pe.Records {
		id := r.TaskID
		if id == "" {
			id = r.RunID
		}
		failed[id] = true
		s.log.Error(what+": record left as it is, its run waits for a repair (see `ork doctor`); the rest goes on",
			"run", r.RunID, "task", r.TaskID, "err", r.Err)
	}
	return failed, nil
}

// blocked takes the tasks whose creation failed out of starts: they do not
// start, are not created again, and their run cannot end (see allCreated).
func (s *Scheduler) blocked(starts []model.TaskWithWorkflow, tasks []*model.Task, failed map[string]bool) []model.TaskWithWorkflow {
	for _, t := range tasks {
		if failed[t.ID] {
			if ns := s.nodeState(t.RunID, t.Name); ns != nil {
				ns.blocked++
			}
		}
	}
	out := starts[:0]
	for _, p := range starts {
		if !failed[p.Task.ID] {
			out = append(out, p)
		}
	}
	return out
}
