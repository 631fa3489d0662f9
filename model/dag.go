package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// TaskSpec is one node of a DAG workflow, as written in its file.
type TaskSpec struct {
	JobName      string         `json:"job_name"`
	ExecutorType string         `json:"executor_type,omitempty"`
	DependsOn    []string       `json:"depends_on,omitempty"`
	TaskCount    int            `json:"task_count,omitempty"`
	Params       map[string]any `json:"params,omitempty"`
	// When is a condition on the upstream outputs; false skips the node.
	// See ParseCondition.
	When string `json:"when,omitempty"`
	// Retries, RetryBackoff and Timeout override the workflow's.
	Retries      *int      `json:"retries,omitempty"`
	RetryBackoff *Duration `json:"retry_backoff,omitempty"`
	Timeout      *Duration `json:"timeout,omitempty"`
	// MaxParallel bounds this node's tasks running at once. 0: no bound.
	MaxParallel int `json:"max_parallel,omitempty"`
}

// Node is a task node of a workflow with its defaults filled in. A flat
// workflow (job_name and task_count at the top) is a DAG of one node named
// after its job.
type Node struct {
	Name         string
	JobName      string
	ExecutorType string
	DependsOn    []string
	TaskCount    int
	Params       map[string]any
	When         *Condition
	Retries      int           // retries after a failed attempt
	RetryBackoff time.Duration // base of the exponential backoff
	Timeout      time.Duration // 0: none
	MaxParallel  int           // 0: no bound
}

// Nodes returns the workflow's nodes in a topological order: every node
// after all its upstream nodes, ties broken by name. A workflow that does
// not validate may give a partial list. They are computed at each call
// (DAGs are small); hold on to the result where it is used often.
func (w *Workflow) Nodes() []Node {
	if w.Tasks == nil {
		n := w.TaskCount
		if n < 1 {
			n = 1
		}
		typ := w.ExecutorType
		if typ == "" {
			typ = ExecutorProcess
		}
		return []Node{{Name: w.JobName, JobName: w.JobName, ExecutorType: typ, TaskCount: n,
			Retries: w.Retries, RetryBackoff: w.RetryBackoff.Std(), Timeout: w.Timeout.Std(), MaxParallel: w.MaxParallel}}
	}
	order, _ := topoOrder(w.Tasks)
	nodes := make([]Node, 0, len(order))
	for _, name := range order {
		spec := w.Tasks[name]
		nd := Node{Name: name, JobName: spec.JobName, ExecutorType: spec.ExecutorType,
			DependsOn: spec.DependsOn, TaskCount: spec.TaskCount, Params: spec.Params,
			Retries: w.Retries, RetryBackoff: w.RetryBackoff.Std(), Timeout: w.Timeout.Std(), MaxParallel: spec.MaxParallel}
		if spec.Retries != nil {
			nd.Retries = *spec.Retries
		}
		if spec.RetryBackoff != nil {
			nd.RetryBackoff = spec.RetryBackoff.Std()
		}
		if spec.Timeout != nil {
			nd.Timeout = spec.Timeout.Std()
		}
		if nd.ExecutorType == "" {
			nd.ExecutorType = w.ExecutorType
		}
		if nd.ExecutorType == "" {
			nd.ExecutorType = ExecutorProcess
		}
		if nd.TaskCount < 1 {
			nd.TaskCount = 1
		}
		if spec.When != "" {
			nd.When, _ = ParseCondition(spec.When)
		}
		nodes = append(nodes, nd)
	}
	return nodes
}

// Node returns the node with that name.
func (w *Workflow) Node(name string) (Node, bool) {
	for _, nd := range w.Nodes() {
		if nd.Name == name {
			return nd, true
		}
	}
	return Node{}, false
}

// IsDAG reports whether the workflow is written as a DAG of tasks.
func (w *Workflow) IsDAG() bool { return w.Tasks != nil }

// topoOrder orders the nodes upstream first (Kahn's algorithm, by name
// among the ready ones). It returns the nodes it could order, and false
// when a cycle or an unknown upstream kept some out.
func topoOrder(tasks map[string]*TaskSpec) ([]string, bool) {
	indeg := make(map[string]int, len(tasks))
	down := make(map[string][]string, len(tasks))
	for name, spec := range tasks {
		if spec == nil {
			continue
		}
		indeg[name] += 0
		for _, up := range uniq(spec.DependsOn) {
			indeg[name]++
			down[up] = append(down[up], name)
		}
	}
	var ready []string
	for name, d := range indeg {
		if d == 0 {
			ready = append(ready, name)
		}
	}
	sort.Strings(ready)
	var out []string
	for len(ready) > 0 {
		n := ready[0]
		ready = ready[1:]
		out = append(out, n)
		next := down[n]
		sort.Strings(next)
		for _, m := range next {
			indeg[m]--
			if indeg[m] == 0 {
				i, _ := slices.BinarySearch(ready, m)
				ready = slices.Insert(ready, i, m)
			}
		}
	}
	return out, len(out) == len(indeg)
}

func uniq(xs []string) []string {
	seen := make(map[string]bool, len(xs))
	out := xs[:0:0]
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// validateDAG checks the tasks of a DAG workflow: names, job names,
// executor types, counts, upstream names, cycles and conditions. Every
// error names its task.
func (w *Workflow) validateDAG() []error {
	var errs []error
	if len(w.Tasks) == 0 {
		return []error{errors.New("tasks is empty: give at least one task")}
	}
	if w.JobName != "" || w.TaskCount != 0 {
		errs = append(errs, errors.New("a workflow has either job_name and task_count (one job) or tasks (a DAG), not both"))
	}
	names := make([]string, 0, len(w.Tasks))
	for name := range w.Tasks {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		spec := w.Tasks[name]
		fail := func(err error) { errs = append(errs, fmt.Errorf("task %q: %w", name, err)) }
		if err := ValidateName(name); err != nil {
			fail(err)
		}
		if spec == nil {
			fail(errors.New("is null: give it at least a job_name"))
			continue
		}
		if err := ValidateJobName(spec.JobName); err != nil {
			fail(err)
		}
		if spec.ExecutorType != "" {
			if err := ValidateExecutorType(spec.ExecutorType); err != nil {
				fail(err)
			}
		}
		if spec.TaskCount < 0 {
			fail(fmt.Errorf("task_count %d is less than 1", spec.TaskCount))
		}
		if spec.Retries != nil && *spec.Retries < 0 {
			fail(fmt.Errorf("retries %d is negative", *spec.Retries))
		}
		if spec.MaxParallel < 0 {
			fail(fmt.Errorf("max_parallel %d is negative", spec.MaxParallel))
		}
		seen := map[string]bool{}
		for _, up := range spec.DependsOn {
			switch {
			case up == name:
				fail(errors.New("depends on itself"))
			case seen[up]:
				fail(fmt.Errorf("depends_on names %q twice", up))
			case w.Tasks[up] == nil:
				fail(fmt.Errorf("depends_on names %q, which is not a task of this workflow", up))
			}
			seen[up] = true
		}
		if spec.When != "" {
			c, err := ParseCondition(spec.When)
			if err != nil {
				fail(fmt.Errorf("when: %w", err))
			} else if !seen[c.Upstream] {
				fail(fmt.Errorf("when: %q is not in depends_on: a condition can only look at upstream tasks", c.Upstream))
			} else if err := c.possible(w.Tasks[c.Upstream]); err != nil {
				fail(fmt.Errorf("when: %q %w", spec.When, err))
			}
		}
	}
	if len(errs) == 0 {
		if cyc := findCycle(w.Tasks); cyc != nil {
			errs = append(errs, fmt.Errorf("tasks form a cycle: %s", strings.Join(cyc, " -> ")))
		}
	}
	return errs
}

// findCycle returns one cycle of the dependency graph, as a path that ends
// where it starts, or nil.
func findCycle(tasks map[string]*TaskSpec) []string {
	const (
		white = iota
		grey
		black
	)
	color := make(map[string]int, len(tasks))
	var stack []string
	var cycle []string
	var visit func(n string) bool
	visit = func(n string) bool {
		color[n] = grey
		stack = append(stack, n)
		ups := append([]string(nil), tasks[n].DependsOn...)
		sort.Strings(ups)
		for _, up := range ups {
			switch color[up] {
			case grey:
				i := slices.Index(stack, up)
				cycle = append(append([]string(nil), stack[i:]...), up)
				slices.Reverse(cycle) // upstream first: a -> b means b depends on a
				return true
			case white:
				if tasks[up] != nil && visit(up) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return false
	}
	names := make([]string, 0, len(tasks))
	for n := range tasks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if color[n] == white && visit(n) {
			return cycle
		}
	}
	return nil
}

// duplicateTaskNames finds names written twice in the "tasks" object of a
// workflow file (JSON decoding would silently keep the last one). It
// returns the first duplicate and its byte offset.
func duplicateTaskNames(data []byte) (string, int64, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return "", 0, false
	}
	// encoding/json matches field names without regard to case, and merges
	// a second "tasks" into the first: names are checked across all.
	seen := map[string]bool{}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return "", 0, false
		}
		k, _ := key.(string)
		if !strings.EqualFold(k, "tasks") {
			var skip json.RawMessage
			if dec.Decode(&skip) != nil {
				return "", 0, false
			}
			continue
		}
		if t, err := dec.Token(); err != nil || t != json.Delim('{') {
			return "", 0, false
		}
		for dec.More() {
			off := dec.InputOffset()
			k, err := dec.Token()
			if err != nil {
				return "", 0, false
			}
			name, _ := k.(string)
			if seen[name] {
				// Point at the key itself, past the separator before it.
				rest := data[off:]
				i := bytes.IndexByte(rest, '"')
				return name, off + int64(max(i, 0)), true
			}
			seen[name] = true
			var skip json.RawMessage
			if dec.Decode(&skip) != nil {
				return "", 0, false
			}
		}
		if _, err := dec.Token(); err != nil { // the closing brace
			return "", 0, false
		}
	}
	return "", 0, false
}

// ---- conditions ----

// Condition is a `when` condition: a path into one upstream task's output,
// a comparison, and a JSON value. Written as
//
//	check.quality == "good"
//	check.rows > 1000
//	parts[2].ok != true
//
// The path starts with an upstream task name, with [i] to pick one index
// of a fan-out, then .key steps into the output object. A missing key is
// null. == and != compare JSON values; <, <=, >, >= compare two numbers or
// two strings (anything else is false).
type Condition struct {
	Text     string
	Upstream string
	Index    int // -1: the whole node (one task, or the array of a fan-out)
	Keys     []string
	Op       string
	Value    any
}

var condOps = []string{"==", "!=", "<=", ">=", "<", ">"}

// ParseCondition parses a `when` condition.
func ParseCondition(text string) (*Condition, error) {
	s := strings.TrimSpace(text)
	op, at := "", -1
	inString := false
	for i := 0; i < len(s) && at < 0; i++ {
		if s[i] == '"' && (i == 0 || s[i-1] != '\\') {
			inString = !inString
		}
		if inString {
			continue
		}
		for _, o := range condOps {
			if strings.HasPrefix(s[i:], o) {
				op, at = o, i
				break
			}
		}
	}
	if at < 0 {
		return nil, fmt.Errorf("%q has no comparison: write it like check.ok == true", text)
	}
	lhs, rhs := strings.TrimSpace(s[:at]), strings.TrimSpace(s[at+len(op):])
	c := &Condition{Text: text, Op: op, Index: -1}
	if err := json.Unmarshal([]byte(rhs), &c.Value); err != nil {
		return nil, fmt.Errorf("%q: the right side %q is not a JSON value (quote strings: \"good\")", text, rhs)
	}
	parts := strings.Split(lhs, ".")
	head := parts[0]
	if i := strings.IndexByte(head, '['); i >= 0 {
		if !strings.HasSuffix(head, "]") {
			return nil, fmt.Errorf("%q: %q is not name[index]", text, head)
		}
		n, err := strconv.Atoi(head[i+1 : len(head)-1])
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q: %q is not name[index]", text, head)
		}
		c.Index, head = n, head[:i]
	}
	if err := ValidateName(head); err != nil {
		return nil, fmt.Errorf("%q: the left side must start with an upstream task name: %v", text, err)
	}
	c.Upstream = head
	for _, k := range parts[1:] {
		if k == "" {
			return nil, fmt.Errorf("%q: empty key in %q", text, lhs)
		}
		c.Keys = append(c.Keys, k)
	}
	return c, nil
}

// possible returns an error when the condition can never hold, whatever
// the upstream outputs: a fan-out named without an index (its outputs are
// an array), an index on a task that is not a fan-out or past the end of
// one, or an ordering (<, <=, >, >=) against a value that is neither a
// number nor a string, or against a number written as a string.
func (c *Condition) possible(up *TaskSpec) error {
	n := max(up.TaskCount, 1)
	switch {
	case n > 1 && c.Index < 0:
		return fmt.Errorf("can never hold: %s is a fan-out of %d tasks, whose outputs are an array; pick one with %s[i], i from 0 to %d", c.Upstream, n, c.Upstream, n-1)
	case n == 1 && c.Index >= 0:
		return fmt.Errorf("can never hold: %s is not a fan-out (task_count 1), so it has no [%d]; write %s without an index", c.Upstream, c.Index, c.Upstream)
	case c.Index >= n:
		return fmt.Errorf("can never hold: index %d is past the end of the fan-out %s (task_count %d: indexes 0 to %d)", c.Index, c.Upstream, n, n-1)
	}
	if c.Op == "==" || c.Op == "!=" {
		return nil
	}
	switch v := c.Value.(type) {
	case float64:
	case string:
		if _, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			return fmt.Errorf("can never hold for a number: %q is a string, and %s compares two numbers or two strings; write %s without quotes to compare numbers", v, c.Op, strings.TrimSpace(v))
		}
	default:
		return fmt.Errorf("can never hold: %s compares two numbers or two strings, not %s", c.Op, jsonKindOf(v))
	}
	return nil
}

func jsonKindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "true or false"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// Eval evaluates the condition on the upstream outputs (the ORK_UPSTREAM
// object).
func (c *Condition) Eval(upstream map[string]any) bool {
	v := upstream[c.Upstream]
	if c.Index >= 0 {
		arr, _ := v.([]any)
		if c.Index < len(arr) {
			v = arr[c.Index]
		} else {
			v = nil
		}
	}
	for _, k := range c.Keys {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	switch c.Op {
	case "==":
		return jsonEqual(v, c.Value)
	case "!=":
		return !jsonEqual(v, c.Value)
	}
	cmp, ok := compare(v, c.Value)
	if !ok {
		return false
	}
	switch c.Op {
	case "<":
		return cmp < 0
	case "<=":
		return cmp <= 0
	case ">":
		return cmp > 0
	default:
		return cmp >= 0
	}
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func compare(a, b any) (int, bool) {
	switch x := a.(type) {
	case float64:
		if y, ok := b.(float64); ok {
			switch {
			case x < y:
				return -1, true
			case x > y:
				return 1, true
			}
			return 0, true
		}
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y), true
		}
	}
	return 0, false
}
