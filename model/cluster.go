package model

import (
	"context"
	"errors"
	"slices"
	"time"
)

// Several schedulers may serve one database (PostgreSQL); the file
// database has one per directory. Everything a scheduler decides alone on
// one database becomes a claim on a shared one:
//
//   - A run is advanced — its tasks created and dispatched, its end
//     recorded — only by the scheduler that holds the run's lease
//     (Run.Scheduler). A scheduler's leases last as long as its heartbeat.
//   - Tasks are claimed (ClaimTasks): marked dispatched, with their next
//     attempt number and the claiming scheduler's id, in the statement that
//     picks them; a scheduler claims only tasks of runs it holds.
//   - A status report names the attempt and the scheduler it is about
//     (TaskUpdate.Attempt, TaskUpdate.Scheduler): a late report from a
//     scheduler that was thought dead never lands on a later attempt, nor
//     on the attempt another scheduler rescued.
//   - One scheduler at a time is the leader, on a term that expires. The
//     leader reaps schedulers whose heartbeat stopped: their runs become
//     free, and the next scheduler to claim them recovers their tasks as a
//     restarted scheduler recovers its own (through the executor's Check).

// ErrFenced is returned (wrapped) to a scheduler that is no longer what it
// thinks it is: its heartbeat stopped long enough that it was reaped (its
// runs may be another's now), or its leader term has ended. It must stop
// acting on what it held.
var ErrFenced = errors.New("fenced: lease lost")

// SchedulerInfo describes one scheduler serving a database.
type SchedulerInfo struct {
	ID        string    `json:"id"` // unique: host, pid and a random suffix
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"started_at"`
	// Heartbeat is when it last said it was alive; Expires, when its leases
	// end unless it says so again.
	Heartbeat time.Time `json:"heartbeat"`
	Expires   time.Time `json:"expires"`
	Leader    bool      `json:"leader,omitempty"`
	Term      int64     `json:"term,omitempty"` // its leader term, when it leads
	Runs      int       `json:"runs"`           // unfinished runs it holds
	Tasks     int       `json:"tasks"`          // tasks dispatched or running under it
}

// Expired reports whether s's leases have ended by now: it said it was
// alive too long ago (killed, or cut off), and serves the database no more
// — though, until a live scheduler reaps it, it is still listed.
func (s SchedulerInfo) Expired(now time.Time) bool { return s.Expires.Before(now) }

// Cluster is implemented by databases that several schedulers may serve at
// once. A scheduler on a database without it is the only one (the database
// makes sure with SchedulerLocker) and holds every run.
type Cluster interface {
	// Heartbeat records that scheduler s is alive until now + lease, and
	// renews the leases of its runs as long. The first call joins. It
	// returns ErrFenced if s was reaped meanwhile: s must stop.
	Heartbeat(ctx context.Context, s SchedulerInfo, lease time.Duration) error
	// Leave removes scheduler id at once (a clean stop): its unfinished
	// runs become free for others to claim.
	Leave(ctx context.Context, id string) error
	// Schedulers returns the schedulers that have not been reaped, oldest
	// first, with what each holds.
	Schedulers(ctx context.Context) ([]SchedulerInfo, error)
	// Lead makes id the leader, or keeps it leader, until now + lease. term
	// is the term id holds (0 if none). It returns id's term when id leads
	// (a new term, higher than every earlier one, when it just became
	// leader), or 0 when another scheduler's term is still running. A term
	// that has expired is never renewed: its holder gets 0 or a new term.
	Lead(ctx context.Context, id string, term int64, lease time.Duration) (int64, error)
	// Reap is the leader's work: it removes the schedulers whose lease has
	// expired, which frees their runs, and returns their ids. term must be
	// the leader's current term, else ErrFenced.
	Reap(ctx context.Context, id string, term int64) ([]string, error)
	// ClaimRuns leases to scheduler id up to limit runs that no live
	// scheduler holds: running runs whose scheduler was reaped or left
	// first, then pending runs, oldest first. Each run is leased to one
	// scheduler only, however many claim at once. A pending run whose
	// workflow (the run's copy) has MaxActiveRuns is not leased while that
	// many runs of the workflow are active — running, or pending and
	// leased — whoever holds them. A scheduler that is not live (reaped,
	// left, or never joined by Heartbeat) gets ErrFenced.
	ClaimRuns(ctx context.Context, id string, limit int) ([]*Run, error)
}

// NodeRef names one node of one run.
type NodeRef struct {
	RunID string
	Name  string
}

// Claim is one scheduler's turn at the task queue (see ClaimTasks).
type Claim struct {
	// Scheduler is the claiming scheduler's id; tasks are claimed only from
	// runs it holds, and named for it. "" on a database with one scheduler.
	// A scheduler that is not live (reaped, left, never joined) claims
	// nothing and gets ErrFenced; its updates are applied, each fenced on
	// its own (see TaskUpdate.Scheduler).
	Scheduler string
	// Limit is the most pending tasks to claim; 0 claims none (Updates are
	// still applied).
	Limit int
	// Updates are applied first, in the same batch, as by UpdateTasks.
	Updates []TaskUpdate
	// Create are new task records, created as by CreateTasks: in the same
	// durable batch as the updates and the claim when the database is a
	// TaskBatchWriter (one sync for all), else just before them. A task
	// may be created dispatched (its first attempt counted durably before
	// it starts). Whether the claim may take a task created pending in the
	// same call depends on the database: create tasks dispatched or
	// skipped.
	// Updates apply to tasks that existed before the batch.
	Create []*Task
	// Last are tasks claimed only after every other pending task.
	Last []string
	// Skip are tasks not to claim now, SkipNodes nodes none of whose
	// tasks to claim now.
	Skip      []string
	SkipNodes []NodeRef
	// At is the time recorded as the claimed tasks' dispatch.
	At time.Time
}

// Claimed is what ClaimTasks did.
type Claimed struct {
	// Changed are the tasks the updates changed, as they are now (as
	// UpdateTasks returns them). A task that the updates put back in the
	// queue and the claim then took (a TaskClaimer's claim sees its own
	// batch's updates) is in Tasks only.
	Changed []*Task
	// Tasks are the tasks claimed: dispatched, their attempt number taken,
	// named for the claiming scheduler, with their workflows.
	Tasks []TaskWithWorkflow
	// Skipped are the ids of the tasks of Claim.Create that have no record
	// after the call: a TaskClaimer creates tasks only in runs that exist
	// and, on a cluster, that the claimer holds. A run whose creates were
	// skipped is not the claimer's (any more): it must start none of their
	// tasks, and forget the run. A task of Create that existed already is
	// left as it is and not counted here.
	Skipped []string
}

// TaskClaimer is implemented by databases that claim tasks in one
// statement, and create the claim's new tasks (Claim.Create) in the same
// batch: only in runs that exist and, on a cluster, that the claimer
// holds. Databases without it are served by ClaimTasks's read and write,
// which is safe only with one scheduler.
type TaskClaimer interface {
	ClaimTasks(ctx context.Context, c Claim) (Claimed, error)
}

// TaskBatchWriter is implemented by databases that create tasks and apply
// updates in one durable write (one sync for both). The result and the
// errors are those of CreateTasks and UpdateTasks together: the tasks the
// updates changed, and one *PartialError naming every record, created or
// updated, that failed on its own account.
type TaskBatchWriter interface {
	WriteTasks(ctx context.Context, create []*Task, updates []TaskUpdate) ([]*Task, error)
}

// ClaimTasks creates c.Create, applies c.Updates and claims up to c.Limit pending tasks — the
// oldest run first, then by task index, those in c.Last after the others,
// not those in c.Skip or c.SkipNodes, nor those whose RetryAt is still to
// come — marking them dispatched with their next attempt number, all in
// one durable batch. It uses db's own claim when db is a TaskClaimer (which
// creates c.Create in its batch); otherwise it reads the
// queue (PendingTasks) and writes once (WriteTasks of a TaskBatchWriter,
// else CreateTasks then UpdateTasks). A *PartialError is returned as
// CreateTasks and UpdateTasks return it, with what was done.
func ClaimTasks(ctx context.Context, db Database, c Claim) (Claimed, error) {
	if tc, ok := db.(TaskClaimer); ok {
		return tc.ClaimTasks(ctx, c)
	}
	bw, batch := db.(TaskBatchWriter)
	if len(c.Create) > 0 && !batch {
		cerr := db.CreateTasks(ctx, c.Create)
		var pe *PartialError
		if cerr != nil && !errors.As(cerr, &pe) {
			return Claimed{}, cerr
		}
		c.Create = nil
		out, err := ClaimTasks(ctx, db, c)
		return out, joinPartial(cerr, err)
	}
	var pending []TaskWithWorkflow
	if c.Limit > 0 {
		ps, err := db.PendingTasks(ctx, c.Limit+len(c.Last)+len(c.Skip))
		if err != nil {
			return Claimed{}, err
		}
		pending = pickClaims(ps, c)
	}
	at := c.At
	if at.IsZero() {
		at = time.Now()
	}
	ups := slices.Clip(c.Updates)
	byID := make(map[string]TaskWithWorkflow, len(pending))
	for _, p := range pending {
		byID[p.Task.ID] = p
		ups = append(ups, TaskUpdate{TaskID: p.Task.ID, RunID: p.Task.RunID, Attempt: p.Task.Attempt + 1,
			Status: TaskDispatched, Scheduler: c.Scheduler, At: at})
	}
	if len(ups) == 0 && len(c.Create) == 0 {
		return Claimed{}, nil
	}
	var changed []*Task
	var err error
	if batch {
		changed, err = bw.WriteTasks(ctx, c.Create, ups)
	} else {
		changed, err = db.UpdateTasks(ctx, ups)
	}
	var out Claimed
	for _, t := range changed {
		if p, ok := byID[t.ID]; ok && t.Status == TaskDispatched && t.Attempt == p.Task.Attempt+1 {
			p.Task = t
			out.Tasks = append(out.Tasks, p)
			delete(byID, t.ID)
			continue
		}
		out.Changed = append(out.Changed, t)
	}
	return out, err
}

// pickClaims orders and filters the pending tasks ps (in the database's
// order) as c asks, up to c.Limit.
func pickClaims(ps []TaskWithWorkflow, c Claim) []TaskWithWorkflow {
	skip := make(map[string]bool, len(c.Skip))
	for _, id := range c.Skip {
		skip[id] = true
	}
	nodes := make(map[NodeRef]bool, len(c.SkipNodes))
	for _, n := range c.SkipNodes {
		nodes[n] = true
	}
	last := make(map[string]int, len(c.Last))
	for i, id := range c.Last {
		last[id] = i + 1
	}
	var front, back []TaskWithWorkflow
	for _, p := range ps {
		switch {
		case skip[p.Task.ID] || nodes[NodeRef{p.Task.RunID, p.Task.Name}]:
		case last[p.Task.ID] > 0:
			back = append(back, p)
		default:
			front = append(front, p)
		}
	}
	// The tasks of Last in the order given.
	slices.SortStableFunc(back, func(a, b TaskWithWorkflow) int { return last[a.Task.ID] - last[b.Task.ID] })
	out := append(front, back...)
	if len(out) > c.Limit {
		out = out[:c.Limit]
	}
	return out
}

// joinPartial merges the *PartialError of a creation (cerr, nil or a
// *PartialError) into the result err of the write that followed it.
func joinPartial(cerr, err error) error {
	var a *PartialError
	if !errors.As(cerr, &a) {
		return err
	}
	if err == nil {
		return a
	}
	var b *PartialError
	if !errors.As(err, &b) {
		return err
	}
	return &PartialError{Records: append(slices.Clip(a.Records), b.Records...)}
}
