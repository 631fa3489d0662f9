package sched

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ork-run/ork/model"
)

// runState is the scheduler's view of an unfinished run: for each node of
// its workflow, which task records exist and how its tasks ended. The
// scheduler creates a node's task records only once the node is ready —
// when every upstream task has ended — and then as running slots free up,
// not all at once: a run of 100,000 tasks starts at once and holds memory
// for its counters only.
//
// The rules, in decide: a node runs when every upstream node has ended,
// none failed, and at least one was not skipped, and its `when` condition
// (if any) holds on the upstream outputs. Otherwise every task of the node
// is recorded skipped, with the reason: "upstream task X failed" (the run
// then fails, because of X), "every upstream task was skipped", or
// "condition ... is false". A run whose tasks all succeeded or were skipped
// succeeds.
type runState struct {
	run    *model.Run
	nodes  []*nodeState // upstream first
	byName map[string]*nodeState
}

type nodeState struct {
	node  model.Node
	up    []*nodeState
	down  bool  // some node depends on this one: keep its outputs
	next  int   // every index below next has a record, but for holes
	holes []int // indexes below next without a record (after a restart)

	ended, success, failed, skipped int
	active                          int               // dispatched here and not ended
	blocked                         int               // tasks whose record could not be created: the run waits
	outputs                         []json.RawMessage // by index, if down

	decided    bool
	skip       string // why the node is skipped; "" when it runs
	failedRoot string // the failed task this node was skipped for, if any
	upstream   json.RawMessage
}

func (n *nodeState) missing() int { return n.node.TaskCount - n.next + len(n.holes) }

// newRunState makes the state of run r from the task records that exist.
func newRunState(r *model.Run, existing []*model.Task) *runState {
	rs := &runState{run: r, byName: map[string]*nodeState{}}
	for _, nd := range r.Workflow.Nodes() {
		ns := &nodeState{node: nd}
		rs.nodes = append(rs.nodes, ns)
		rs.byName[nd.Name] = ns
	}
	for _, ns := range rs.nodes {
		for _, up := range ns.node.DependsOn {
			if u := rs.byName[up]; u != nil {
				ns.up = append(ns.up, u)
				u.down = true
			}
		}
	}
	for _, ns := range rs.nodes {
		if ns.down {
			ns.outputs = make([]json.RawMessage, ns.node.TaskCount)
		}
	}
	have := map[*nodeState]map[int]bool{}
	for _, t := range existing {
		ns := rs.byName[t.Name]
		if ns == nil || t.TaskIndex >= ns.node.TaskCount {
			continue
		}
		if have[ns] == nil {
			have[ns] = map[int]bool{}
		}
		have[ns][t.TaskIndex] = true
		if t.TaskIndex >= ns.next {
			ns.next = t.TaskIndex + 1
		}
		if t.Status.Terminal() {
			ns.observe(t)
		}
		if t.Status == model.TaskSkipped {
			ns.decided, ns.skip = true, t.Error
		}
	}
	for ns, idx := range have {
		for i := 0; i < ns.next; i++ {
			if !idx[i] {
				ns.holes = append(ns.holes, i)
			}
		}
	}
	return rs
}

// observe counts a task of the node that ended.
func (n *nodeState) observe(t *model.Task) {
	n.ended++
	switch t.Status {
	case model.TaskSuccess:
		n.success++
		if n.down && t.TaskIndex < len(n.outputs) {
			n.outputs[t.TaskIndex] = t.Output
		}
	case model.TaskSkipped:
		n.skipped++
		if n.failedRoot == "" && t.Error != "" {
			n.failedRoot = failedRootOf(t.Error)
		}
	default: // failed, cancelled
		n.failed++
	}
}

// The error of a task skipped for a failure upstream, and how to read the
// failed task's name back from it after a restart.
const upstreamFailedFmt = "upstream task %s failed"

func failedRootOf(reason string) string {
	var name string
	if _, err := fmt.Sscanf(reason, upstreamFailedFmt, &name); err == nil {
		return name
	}
	return ""
}

// allCreated reports whether every task of the run has a record.
func (rs *runState) allCreated() bool {
	for _, ns := range rs.nodes {
		if ns.missing() > 0 || ns.blocked > 0 {
			return false
		}
	}
	return true
}

// decide settles whether node ns runs or is skipped, once every upstream
// node has ended. It reports whether the node is decided.
func (rs *runState) decide(ns *nodeState) bool {
	if ns.decided {
		return true
	}
	allSkipped := len(ns.up) > 0
	for _, u := range ns.up {
		if u.ended < u.node.TaskCount {
			return false
		}
		if u.skipped < u.node.TaskCount {
			allSkipped = false
		}
	}
	ns.decided = true
	for _, u := range ns.up {
		switch {
		case u.failed > 0:
			ns.failedRoot = u.node.Name
		case u.failedRoot != "":
			ns.failedRoot = u.failedRoot
		}
		if ns.failedRoot != "" {
			ns.skip = fmt.Sprintf(upstreamFailedFmt, ns.failedRoot)
			return true
		}
	}
	if allSkipped {
		ns.skip = "every upstream task was skipped"
		return true
	}
	ns.upstream = rs.upstreamJSON(ns)
	if ns.node.When != nil {
		var up map[string]any
		json.Unmarshal(ns.upstream, &up)
		if !ns.node.When.Eval(up) {
			ns.skip = fmt.Sprintf("condition `%s` is false", ns.node.When.Text)
		}
	}
	return true
}

// upstreamJSON is what the node's tasks get as ORK_UPSTREAM: each upstream
// name mapped to its output, an array by index for a fan-out, null where
// skipped or without output.
func (rs *runState) upstreamJSON(ns *nodeState) json.RawMessage {
	if len(ns.up) == 0 {
		return nil
	}
	m := make(map[string]any, len(ns.up))
	for _, u := range ns.up {
		if u.node.TaskCount == 1 {
			m[u.node.Name] = orNull(u.outputs[0])
			continue
		}
		arr := make([]json.RawMessage, len(u.outputs))
		for i, o := range u.outputs {
			arr[i] = orNull(o)
		}
		m[u.node.Name] = arr
	}
	b, _ := json.Marshal(m)
	return b
}

func orNull(o json.RawMessage) json.RawMessage {
	if len(o) == 0 {
		return json.RawMessage("null")
	}
	return o
}

// upstreamOf returns ORK_UPSTREAM for a task dispatched from the pending
// queue (a task created before a restart, or put back in the queue).
func (s *Scheduler) upstreamOf(t *model.Task) json.RawMessage {
	rs := s.runs[t.RunID]
	if rs == nil {
		return nil
	}
	ns := rs.byName[t.Name]
	if ns == nil || !rs.decide(ns) {
		return nil
	}
	return ns.upstream
}

// observe feeds tasks that ended into the run states.
func (s *Scheduler) observe(t *model.Task) {
	if rs := s.runs[t.RunID]; rs != nil {
		if ns := rs.byName[t.Name]; ns != nil {
			ns.observe(t)
		}
	}
}

// materialize creates the next task records, in one batch: for nodes that
// run, up to room tasks, created dispatched in their first attempt and
// returned to be started; for nodes that are skipped, their tasks, created
// skipped. It reports whether it created anything.
func (s *Scheduler) materialize(ctx context.Context, room int) ([]model.TaskWithWorkflow, bool) {
	mp := s.planTasks(room, time.Now(), nil)
	if len(mp.tasks) == 0 {
		return nil, false
	}
	// The attempt of a task created dispatched is durable before it starts,
	// as for any dispatch.
	failed, err := s.written("create tasks", s.db.CreateTasks(ctx, mp.tasks))
	if err != nil {
		s.writeFailed("create tasks", err)
		return nil, false
	}
	return s.applyPlan(mp, failed), true
}

// taskPlan is the next task records to create (see planTasks).
type taskPlan struct {
	nodes  []nodePlan
	tasks  []*model.Task
	starts []model.TaskWithWorkflow
}

type nodePlan struct {
	ns    *nodeState
	rs    *runState
	take  []int // indexes to create
	skip  bool
	holes int // how many of take came from holes
}

// planTasks decides the next task records: for nodes that run, up to room
// tasks, dispatched in their first attempt; for nodes that are skipped,
// their tasks, skipped — of every node, or of the nodes only accepts (if
// not nil). Nothing is counted as created until applyPlan, once they are
// written.
func (s *Scheduler) planTasks(room int, now time.Time, only func(*nodeState) bool) *taskPlan {
	at := now.UTC()
	mp := &taskPlan{}
	budget := s.cfg.MaxTasksPerBatch // skipped records per batch
	for _, rs := range s.order {
		for _, ns := range rs.nodes {
			if ns.missing() == 0 || only != nil && !only(ns) || !rs.decide(ns) {
				continue
			}
			skip := ns.skip != ""
			n := ns.missing()
			if skip {
				n = min(n, budget)
			} else {
				n = min(n, room)
				if mp := ns.node.MaxParallel; mp > 0 {
					n = min(n, mp-ns.active)
				}
			}
			if n <= 0 {
				continue
			}
			p := nodePlan{ns: ns, rs: rs, skip: skip}
			for _, i := range ns.holes {
				if len(p.take) == n {
					break
				}
				p.take = append(p.take, i)
				p.holes++
			}
			for i := ns.next; len(p.take) < n; i++ {
				p.take = append(p.take, i)
			}
			for _, i := range p.take {
				t := model.NewNodeTasks(rs.run, ns.node, i, i+1, now)[0]
				if skip {
					t.Status, t.Error, t.FinishedAt = model.TaskSkipped, ns.skip, &at
				} else {
					t.Status, t.Attempt, t.DispatchedAt, t.Scheduler = model.TaskDispatched, 1, &at, s.id
					mp.starts = append(mp.starts, model.TaskWithWorkflow{Task: t, Workflow: rs.run.Workflow, Upstream: ns.upstream})
				}
				mp.tasks = append(mp.tasks, t)
			}
			if skip {
				budget -= n
			} else {
				room -= n
			}
			mp.nodes = append(mp.nodes, p)
		}
	}
	return mp
}

// applyPlan counts the tasks of mp as created, once written (but those in
// failed), and returns those to start.
func (s *Scheduler) applyPlan(mp *taskPlan, failed map[string]bool) []model.TaskWithWorkflow {
	if len(mp.tasks) == 0 {
		return nil
	}
	starts := mp.starts
	if len(failed) > 0 {
		starts = s.blocked(slices.Clone(starts), mp.tasks, failed)
	}
	for _, p := range mp.nodes {
		p.ns.holes = p.ns.holes[p.holes:]
		if last := p.take[len(p.take)-1]; last >= p.ns.next {
			p.ns.next = last + 1
		}
		s.touched[p.rs.run.ID] = true
	}
	for _, t := range mp.tasks {
		if t.Status == model.TaskSkipped && !failed[t.ID] {
			s.observe(t)
		}
	}
	return starts
}

// speculation is what a batch counted on before it was written: the ends
// of tasks in flight, observed ahead so that the tasks they unblock are
// created in the same batch. If the batch is not written, undo puts the
// run states back as they were.
type speculation struct {
	ends    map[string]model.TaskStatus // task id → the end counted
	saved   map[*nodeState]nodeState
	outputs []savedOutput
}

type savedOutput struct {
	ns  *nodeState
	i   int
	out json.RawMessage
}

// predict observes the ends in the buffer of tasks in flight — the
// attempt in flight, reported by the scheduler that dispatched it — as
// they will be recorded. It returns nil if there are none.
func (s *Scheduler) predict() *speculation {
	var sp *speculation
	for _, u := range s.buf {
		if !u.Status.Terminal() {
			continue
		}
		f, ok := s.ends(u)
		if !ok || u.Scheduler != f.sched && f.sched != "" {
			continue
		}
		rs := s.runs[u.RunID]
		if rs == nil || rs.byName[f.name] == nil {
			continue
		}
		if sp == nil {
			sp = &speculation{ends: map[string]model.TaskStatus{}, saved: map[*nodeState]nodeState{}}
		}
		if _, seen := sp.ends[u.TaskID]; seen {
			continue
		}
		for _, ns := range rs.nodes {
			if _, ok := sp.saved[ns]; !ok {
				sp.saved[ns] = *ns
			}
		}
		ns := rs.byName[f.name]
		if ns.down && f.index < len(ns.outputs) {
			sp.outputs = append(sp.outputs, savedOutput{ns, f.index, ns.outputs[f.index]})
		}
		sp.ends[u.TaskID] = u.Status
		ns.observe(&model.Task{ID: u.TaskID, RunID: u.RunID, Name: f.name, TaskIndex: f.index, Status: u.Status, Output: u.Output, Error: u.Error})
	}
	return sp
}

// undo puts the run states back as they were before predict (the batch was
// not written).
func (sp *speculation) undo() {
	if sp == nil {
		return
	}
	for i := len(sp.outputs) - 1; i >= 0; i-- {
		o := sp.outputs[i]
		o.ns.outputs[o.i] = o.out
	}
	for ns, v := range sp.saved {
		*ns = v
	}
}

// unblocked reports whether node ns was not decided before the ends were
// observed ahead: the nodes whose first tasks go with those ends. (The
// rest of a node decided earlier is created after the claim, as ever, so
// that the queue's pending tasks keep their turn.)
func (sp *speculation) unblocked(ns *nodeState) bool {
	v, ok := sp.saved[ns]
	return ok && !v.decided
}

// predicted reports whether t's end was observed ahead, as it landed.
func (sp *speculation) predicted(t *model.Task) bool {
	if sp == nil {
		return false
	}
	st, ok := sp.ends[t.ID]
	return ok && st == t.Status
}

// landed reports whether every end counted on was recorded as counted.
func (sp *speculation) landed(changed []*model.Task, failed map[string]bool) bool {
	n := 0
	for _, t := range changed {
		if st, ok := sp.ends[t.ID]; ok {
			if st != t.Status || failed[t.ID] {
				return false
			}
			n++
		}
	}
	return n == len(sp.ends)
}

// hop returns the ids of the tasks of created whose node the ends observed
// ahead unblocked (see unblocked): those that wait on an end not recorded.
func (sp *speculation) hop(s *Scheduler, created []model.TaskWithWorkflow) map[string]bool {
	out := map[string]bool{}
	for _, p := range created {
		if rs := s.runs[p.Task.RunID]; rs != nil && sp.unblocked(rs.byName[p.Task.Name]) {
			out[p.Task.ID] = true
		}
	}
	return out
}

// skipped takes out of starts the tasks whose records the claim did not
// create (skipped, ids of some of tasks): their run is no longer this
// scheduler's (another holds it, or it is gone). It returns the rest, and
// the runs lost.
func (s *Scheduler) skipped(starts []model.TaskWithWorkflow, tasks []*model.Task, skipped []string) ([]model.TaskWithWorkflow, map[string]bool) {
	if len(skipped) == 0 {
		return starts, nil
	}
	ids := make(map[string]bool, len(skipped))
	for _, id := range skipped {
		ids[id] = true
	}
	lost := map[string]bool{}
	for _, t := range tasks {
		if ids[t.ID] {
			lost[t.RunID] = true
		}
	}
	out := starts[:0]
	for _, p := range starts {
		if !lost[p.Task.RunID] {
			out = append(out, p)
		}
	}
	return out, lost
}

// lose forgets run id, which is no longer this scheduler's: a claim did not
// create its tasks (another scheduler holds it, or it is gone). Nothing
// more of it is created or claimed here, and its end is not written here;
// the tasks of it already dispatched here go on, and their reports are
// fenced by the database (TaskUpdate.Scheduler).
func (s *Scheduler) lose(id string) {
	if s.runs[id] == nil {
		return
	}
	s.log.Warn("a run is no longer this scheduler's: its new tasks were not created; it is left to its holder", "run", id, "scheduler", s.id)
	s.untrack(id)
	s.gone[id] = true
	delete(s.touched, id)
	delete(s.counted, id)
	s.wake(id)
}

// track starts keeping the state of run r, from the task records it has.
func (s *Scheduler) track(r *model.Run, existing []*model.Task) {
	if s.runs[r.ID] != nil || r.Workflow == nil {
		return
	}
	delete(s.gone, r.ID) // held again: this scheduler finishes it
	rs := newRunState(r, existing)
	s.runs[r.ID] = rs
	s.order = append(s.order, rs)
	for _, t := range existing {
		// Tasks in flight before their run is tracked (attempts adopted
		// at recovery) hold their places in their node's max_parallel,
		// as land counts them out.
		if f, ok := s.inflight[t.ID]; ok && f.runID == r.ID {
			if ns := rs.byName[f.name]; ns != nil {
				ns.active++
			}
		}
		// Tasks a dying scheduler interrupted start after the others.
		if t.Status == model.TaskPending {
			s.queueDry = false // the claim takes them before new ones
		}
		if t.Status == model.TaskPending && diedLast(t) {
			s.behind[t.ID] = behindTask{runID: t.RunID, k: t.Interruptions(), end: lastEnd(t)}
		}
	}
}

// behindTask is a task put back in the queue because its scheduler died
// while it ran.
type behindTask struct {
	runID string
	k     int       // its attempts interrupted so far
	end   time.Time // when its last attempt ended
}

// behindOrder returns the tasks whose last attempt a dying scheduler
// interrupted, for the claim: they are claimed after every other pending
// task (last), the least interrupted and the longest waiting first — and
// not at all while their run has other tasks to create (skip) — so that a
// scheduler that crashes again and again does not find the same tasks
// running each time.
func (s *Scheduler) behindOrder() (last, skip []string) {
	if len(s.behind) == 0 {
		return nil, nil
	}
	ids := make([]string, 0, len(s.behind))
	for id := range s.behind {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int {
		x, y := s.behind[a], s.behind[b]
		if c := cmp.Compare(x.k, y.k); c != 0 {
			return c
		}
		if c := x.end.Compare(y.end); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	creating := map[string]bool{}
	for _, id := range ids {
		run := s.behind[id].runID
		c, ok := creating[run]
		if !ok {
			c = s.toCreate(run)
			creating[run] = c
		}
		if c {
			skip = append(skip, id)
		} else {
			last = append(last, id)
		}
	}
	return last, skip
}

// untrack forgets a run that ended.
func (s *Scheduler) untrack(id string) {
	if s.runs[id] == nil {
		return
	}
	delete(s.runs, id)
	for tid, b := range s.behind {
		if b.runID == id {
			delete(s.behind, tid)
		}
	}
	for i, rs := range s.order {
		if rs.run.ID == id {
			s.order = append(s.order[:i], s.order[i+1:]...)
			break
		}
	}
}

// fullNodes are the nodes of the runs this scheduler holds that have as
// many tasks in flight as their max_parallel allows: none of their tasks
// is claimed now.
func (s *Scheduler) fullNodes() []model.NodeRef {
	var out []model.NodeRef
	for _, rs := range s.order {
		for _, ns := range rs.nodes {
			if mp := ns.node.MaxParallel; mp > 0 && ns.active >= mp {
				out = append(out, model.NodeRef{RunID: rs.run.ID, Name: ns.node.Name})
			}
		}
	}
	return out
}

// withinMaxParallel returns the claimed tasks that may start within their
// node's max_parallel. A claim may take more of a node's tasks than it has
// room for; those go back to the queue with their attempt withdrawn (they
// never started).
func (s *Scheduler) withinMaxParallel(ps []model.TaskWithWorkflow) []model.TaskWithWorkflow {
	var extra map[*nodeState]int
	var out []model.TaskWithWorkflow
	for _, p := range ps {
		ns := s.nodeState(p.Task.RunID, p.Task.Name)
		if ns != nil && ns.node.MaxParallel > 0 {
			if extra == nil {
				extra = map[*nodeState]int{}
			}
			if ns.active+extra[ns] >= ns.node.MaxParallel {
				s.buf = append(s.buf, unstarted(p.Task, ""))
				continue
			}
			extra[ns]++
		}
		out = append(out, p)
	}
	return out
}
