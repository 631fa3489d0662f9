package cli

import (
	"fmt"

	"github.com/ork-run/ork/model"
)

// noOutputNote says why attempt attempt of task t has no output, for `ork
// logs`: "(no output)" alone when there is nothing to add (the task is
// running and printed nothing yet, or printed nothing at all).
func noOutputNote(t *model.Task, attempt int) string {
	why := ""
	for _, a := range t.Attempts {
		if a.Attempt == attempt && a.Error != "" {
			why = a.Error
		}
	}
	if why == "" && t.Attempt == attempt && t.Error != "" {
		why = t.Error
	}
	switch {
	case why != "":
		return fmt.Sprintf("(no output: %s %s: %s)", t.Label(), t.Status, why)
	case t.Attempt == attempt && t.Status.Active():
		return "(no output yet: the task is " + string(t.Status) + ")"
	}
	return "(no output)"
}
