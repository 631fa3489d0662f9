package model

import (
	"errors"
	"fmt"
	"strings"
)

// ErrDamaged is returned (wrapped) when a record's file is damaged — it
// does not parse, or it was changed behind the writer's back — and is
// therefore left as it is rather than written over.
var ErrDamaged = errors.New("damaged record")

// RecordError is the failure of one record of a batch write.
type RecordError struct {
	RunID  string
	TaskID string // "" for the run's own record
	Err    error
}

func (e *RecordError) Error() string {
	if e.TaskID != "" {
		return fmt.Sprintf("task %s of run %s: %v", e.TaskID, e.RunID, e.Err)
	}
	return fmt.Sprintf("run %s: %v", e.RunID, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

// PartialError is returned by a batch method (CreateTasks, UpdateTasks,
// UpdateRuns) when some records could not be written for reasons of their
// own — a file damaged or removed by hand, the directory of a run's tasks
// gone — while every other record of the batch was written, as durably as
// for a nil error. The failed records are left as they are on disk; a
// caller reports them and goes on with everything else. A failure of the
// disk itself (full, read-only) is never a PartialError: then nothing of
// the batch was written.
type PartialError struct {
	Records []*RecordError
}

func (e *PartialError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d record(s) of the batch not written", len(e.Records))
	for i, r := range e.Records {
		if i == 5 {
			fmt.Fprintf(&b, "; and %d more", len(e.Records)-5)
			break
		}
		b.WriteString("; ")
		b.WriteString(r.Error())
	}
	return b.String()
}

// Unwrap returns the records' errors, so errors.Is sees ErrDamaged or
// ErrNotFound in them.
func (e *PartialError) Unwrap() []error {
	out := make([]error, len(e.Records))
	for i, r := range e.Records {
		out[i] = r
	}
	return out
}
