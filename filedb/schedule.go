package filedb

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ork-run/ork/model"
)

// SchedulesDir holds the state of workflows' schedules:
//
//	schedules/<name>.json    the ticks dealt with (written by the scheduler only)
//	schedules/<name>.paused  present while the schedule is paused (written by `ork pause`)
//
// The claim of a tick is not here: it is the run file of the tick, whose
// id is model.ScheduledRunID(workflow, tick). CreateRun makes it with
// link(2), which fails if the file exists, so a tick makes one run however
// often it is claimed — after a kill -9 and a restart, too. The state file
// only tells the scheduler which ticks it need not look at again; when a
// crash leaves it behind the run files, ClaimTick finds the tick's run and
// brings the state up to date.
//
// Only one scheduler runs per directory (scheduler.lock), and the state file
// has one writer: the scheduler. The pause marker is a file of its own, so
// `ork pause` never rewrites a file the scheduler writes.
const SchedulesDir = "schedules"

var _ model.ScheduleStore = (*DB)(nil)

// scheduleFile is the contents of schedules/<name>.json.
type scheduleFile struct {
	Workflow  string     `json:"workflow"`
	Through   time.Time  `json:"through"`
	LastTick  *time.Time `json:"last_tick,omitempty"`
	LastRunID string     `json:"last_run_id,omitempty"`
	Spec      string     `json:"spec,omitempty"`
}

// pauseFile is the contents of schedules/<name>.paused.
type pauseFile struct {
	Workflow string    `json:"workflow"`
	PausedAt time.Time `json:"paused_at"`
}

func (d *DB) scheduleDir() string { return filepath.Join(d.root, SchedulesDir) }

func (d *DB) schedulePath(name string) string {
	return filepath.Join(d.scheduleDir(), name+".json")
}

func (d *DB) pausePath(name string) string {
	return filepath.Join(d.scheduleDir(), name+".paused")
}

// ensureScheduleDir creates schedules/ if needed and returns it in newDirs
// form for commit (so that its parent is synced) when it made it.
func (d *DB) ensureScheduleDir() ([]string, error) {
	dir := d.scheduleDir()
	if _, err := os.Stat(dir); err == nil {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return []string{dir}, nil
}

func (d *DB) readSchedule(name string) (scheduleFile, error) {
	var sf scheduleFile
	p := d.schedulePath(name)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return sf, nil
	}
	if err != nil {
		return sf, err
	}
	if err := model.DecodeJSON(p, data, &sf, false); err != nil {
		d.report(p, err)
		return sf, err
	}
	return sf, nil
}

func (d *DB) writeSchedule(name string, sf scheduleFile) error {
	sf.Workflow = name
	newDirs, err := d.ensureScheduleDir()
	if err != nil {
		return err
	}
	data, err := encode(sf)
	if err != nil {
		return err
	}
	// Durability: commit writes a temporary file, syncs it, renames it over
	// the state file and syncs the directory.
	return d.commitAll([]fileWrite{{path: d.schedulePath(name), data: data}}, newDirs)
}

// ClaimTick stores r, the run of a schedule's tick, unless the tick is
// claimed already (see model.ScheduleStore). The run file's exclusive
// create is the claim.
func (d *DB) ClaimTick(ctx context.Context, r *model.Run) (bool, error) {
	if r.ScheduledAt == nil {
		return false, fmt.Errorf("claim tick: run %s has no scheduled_at", r.ID)
	}
	if err := model.ValidateName(r.WorkflowName); err != nil {
		return false, fmt.Errorf("claim tick: %w", err)
	}
	tick := r.ScheduledAt.UTC()
	if want := model.ScheduledRunID(r.WorkflowName, tick); r.ID != want {
		return false, fmt.Errorf("claim tick: run id %s is not the id of the tick %s of %s (%s)", r.ID, tick.Format(time.RFC3339), r.WorkflowName, want)
	}
	d.schedMu.Lock()
	defer d.schedMu.Unlock()
	sf, err := d.readSchedule(r.WorkflowName)
	if err != nil {
		return false, err
	}
	if !tick.After(sf.Through) {
		return false, nil
	}
	claimed := true
	if err := d.CreateRun(ctx, r); errors.Is(err, model.ErrExists) {
		// Claimed before: a scheduler made the run and died before it
		// recorded the state below.
		claimed = false
	} else if err != nil {
		return false, err
	}
	sf.Through = tick
	if sf.LastTick == nil || tick.After(*sf.LastTick) {
		sf.LastTick, sf.LastRunID = &tick, r.ID
	}
	if err := d.writeSchedule(r.WorkflowName, sf); err != nil {
		return claimed, fmt.Errorf("record the tick %s of %s: %w", tick.Format(time.RFC3339), r.WorkflowName, err)
	}
	return claimed, nil
}

// AdvanceSchedule records that the ticks up to through passed without runs.
func (d *DB) AdvanceSchedule(ctx context.Context, workflow string, through time.Time, spec string) error {
	if err := model.ValidateName(workflow); err != nil {
		return err
	}
	d.schedMu.Lock()
	defer d.schedMu.Unlock()
	sf, err := d.readSchedule(workflow)
	if err != nil {
		return err
	}
	through = through.UTC()
	moved, respec := through.After(sf.Through), spec != "" && spec != sf.Spec
	if !moved && !respec {
		return nil
	}
	if moved {
		sf.Through = through
	}
	if respec {
		sf.Spec = spec
	}
	return d.writeSchedule(workflow, sf)
}

// ScheduleState reads the state of workflow's schedule.
func (d *DB) ScheduleState(ctx context.Context, workflow string) (model.ScheduleState, error) {
	var st model.ScheduleState
	if err := model.ValidateName(workflow); err != nil {
		return st, err
	}
	sf, err := d.readSchedule(workflow)
	if err != nil {
		return st, err
	}
	st.Through, st.LastTick, st.LastRunID, st.Spec = sf.Through, sf.LastTick, sf.LastRunID, sf.Spec
	p := d.pausePath(workflow)
	data, err := os.ReadFile(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return st, err
	default:
		// The marker's presence is the pause; its contents only say since
		// when, so a damaged marker still pauses.
		st.Paused = true
		var pf pauseFile
		if model.DecodeJSON(p, data, &pf, false) == nil && !pf.PausedAt.IsZero() {
			at := pf.PausedAt
			st.PausedAt = &at
		}
	}
	return st, nil
}

// SetPaused creates or removes the pause marker of workflow's schedule.
func (d *DB) SetPaused(ctx context.Context, workflow string, paused bool) error {
	if err := model.ValidateName(workflow); err != nil {
		return err
	}
	p := d.pausePath(workflow)
	if !paused {
		if err := os.Remove(p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		// Durability: the removal survives a crash.
		return d.ops.syncFile(d.scheduleDir())
	}
	if _, err := os.Stat(p); err == nil {
		return nil // paused already: keep the time of the first pause
	}
	newDirs, err := d.ensureScheduleDir()
	if err != nil {
		return err
	}
	data, err := encode(pauseFile{Workflow: workflow, PausedAt: time.Now().UTC()})
	if err != nil {
		return err
	}
	// Durability: temporary file, sync, rename, directory sync (commit).
	return d.commitAll([]fileWrite{{path: p, data: data}}, newDirs)
}

// checkScheduleFile reports whether the state file at p loads (for Doctor).
func checkScheduleFile(p string) error {
	data, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	var sf scheduleFile
	return model.DecodeJSON(p, data, &sf, false)
}
