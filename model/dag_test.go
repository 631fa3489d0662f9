package model_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ork-run/ork/model"
)

// decodeDAG decodes a workflow file that must be valid.
func decodeDAG(t *testing.T, data string) *model.Workflow {
	t.Helper()
	w, err := model.DecodeWorkflow(".ork/workflows/dag.json", []byte(data))
	if err != nil {
		t.Fatalf("DecodeWorkflow: %v\n%s", err, data)
	}
	return w
}

// dagNode is the part of a Node that the DAG structure decides.
type dagNode struct {
	Name, JobName, ExecutorType string
	DependsOn                   []string
	TaskCount                   int
	Params                      map[string]any
}

func dagNodes(nodes []model.Node) []dagNode {
	out := make([]dagNode, len(nodes))
	for i, nd := range nodes {
		out[i] = dagNode{nd.Name, nd.JobName, nd.ExecutorType, nd.DependsOn, nd.TaskCount, nd.Params}
	}
	return out
}

// nodeNames returns the names of the nodes, in order.
func nodeNames(nodes []model.Node) []string {
	out := make([]string, len(nodes))
	for i, nd := range nodes {
		out[i] = nd.Name
	}
	return out
}

const etlJSON = `{
  "name": "etl",
  "params": {"date": "2026-01-01"},
  "tasks": {
    "extract":   {"job_name": "extract.sh"},
    "transform": {"job_name": "transform.sh", "depends_on": ["extract"], "task_count": 4},
    "load":      {"job_name": "load.sh", "depends_on": ["transform"], "params": {"target": "warehouse"}}
  }
}`

func TestNodesOrder(t *testing.T) {
	tests := []struct {
		desc string
		data string
		want []string
	}{
		{"chain", etlJSON, []string{"extract", "transform", "load"}},
		{"independent roots by name", `{"name": "w", "tasks": {
			"c": {"job_name": "x.sh"}, "a": {"job_name": "x.sh"}, "b": {"job_name": "x.sh"}}}`,
			[]string{"a", "b", "c"}},
		{"upstream before a smaller name", `{"name": "w", "tasks": {
			"zeta": {"job_name": "x.sh"},
			"alpha": {"job_name": "x.sh", "depends_on": ["zeta"]},
			"beta": {"job_name": "x.sh"},
			"mid": {"job_name": "x.sh", "depends_on": ["alpha", "beta"]}}}`,
			[]string{"beta", "zeta", "alpha", "mid"}},
		{"diamond", `{"name": "w", "tasks": {
			"top": {"job_name": "x.sh"},
			"right": {"job_name": "x.sh", "depends_on": ["top"]},
			"left": {"job_name": "x.sh", "depends_on": ["top"]},
			"bottom": {"job_name": "x.sh", "depends_on": ["right", "left"]}}}`,
			[]string{"top", "left", "right", "bottom"}},
		{"a ready node waits for its turn by name", `{"name": "w", "tasks": {
			"b": {"job_name": "x.sh"},
			"d": {"job_name": "x.sh"},
			"c": {"job_name": "x.sh", "depends_on": ["b"]}}}`,
			[]string{"b", "c", "d"}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			w := decodeDAG(t, tt.data)
			if !w.IsDAG() {
				t.Errorf("IsDAG() = false for a workflow with tasks")
			}
			if got := nodeNames(w.Nodes()); !slices.Equal(got, tt.want) {
				t.Errorf("Nodes() order = %q, want %q", got, tt.want)
			}
			// Stable across calls.
			if got := nodeNames(w.Nodes()); !slices.Equal(got, tt.want) {
				t.Errorf("second Nodes() order = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNodesDefaults(t *testing.T) {
	w := decodeDAG(t, etlJSON)
	nodes := dagNodes(w.Nodes())
	want := []dagNode{
		{Name: "extract", JobName: "extract.sh", ExecutorType: model.ExecutorProcess, TaskCount: 1},
		{Name: "transform", JobName: "transform.sh", ExecutorType: model.ExecutorProcess, DependsOn: []string{"extract"}, TaskCount: 4},
		{Name: "load", JobName: "load.sh", ExecutorType: model.ExecutorProcess, DependsOn: []string{"transform"}, TaskCount: 1,
			Params: map[string]any{"target": "warehouse"}},
	}
	if !reflect.DeepEqual(nodes, want) {
		t.Errorf("Nodes() =\n %+v\nwant\n %+v", nodes, want)
	}
	if w.TaskCount != 0 || w.JobName != "" {
		t.Errorf("a DAG workflow got job_name %q, task_count %d from Normalize; want none", w.JobName, w.TaskCount)
	}

	// executor_type: the node's, else the workflow's, else process.
	w2 := decodeDAG(t, `{"name": "w", "executor_type": "process", "tasks": {
		"a": {"job_name": "a.sh", "executor_type": "process"}, "b": {"job_name": "b.sh"}}}`)
	for _, nd := range w2.Nodes() {
		if nd.ExecutorType != model.ExecutorProcess {
			t.Errorf("node %s: executor_type %q, want %q", nd.Name, nd.ExecutorType, model.ExecutorProcess)
		}
	}
	// A workflow built in Go, without Normalize, defaults too.
	w3 := &model.Workflow{Name: "w", Tasks: map[string]*model.TaskSpec{"a": {JobName: "a.sh", TaskCount: 0}}}
	if nd := w3.Nodes()[0]; nd.ExecutorType != model.ExecutorProcess || nd.TaskCount != 1 {
		t.Errorf("node without executor_type and task_count: %+v, want process and 1", nd)
	}

	// Node(name).
	nd, ok := w.Node("transform")
	if !ok || nd.Name != "transform" || nd.TaskCount != 4 || nd.JobName != "transform.sh" {
		t.Errorf("Node(\"transform\") = %+v, %v", nd, ok)
	}
	if nd, ok := w.Node("nosuch"); ok || nd.Name != "" {
		t.Errorf("Node(\"nosuch\") = %+v, %v; want the zero Node and false", nd, ok)
	}

	// A condition is parsed into the node.
	w4 := decodeDAG(t, `{"name": "w", "tasks": {
		"check": {"job_name": "c.sh"},
		"go": {"job_name": "g.sh", "depends_on": ["check"], "when": "check.ok == true"}}}`)
	g, _ := w4.Node("go")
	if g.When == nil || g.When.Upstream != "check" || g.When.Op != "==" || g.When.Value != true || g.When.Text != "check.ok == true" {
		t.Errorf("node go: When = %+v, want check.ok == true parsed", g.When)
	}
	if c, _ := w4.Node("check"); c.When != nil {
		t.Errorf("node check: When = %+v, want nil", c.When)
	}
}

func TestNodesFlat(t *testing.T) {
	tests := []struct {
		desc string
		w    *model.Workflow
		want dagNode
	}{
		{"decoded", nil, dagNode{Name: "sub/hello.sh", JobName: "sub/hello.sh", ExecutorType: model.ExecutorProcess, TaskCount: 3}},
		{"task_count 0 is 1", &model.Workflow{Name: "x", JobName: "x.sh"},
			dagNode{Name: "x.sh", JobName: "x.sh", ExecutorType: model.ExecutorProcess, TaskCount: 1}},
		{"negative task_count is 1", &model.Workflow{Name: "x", JobName: "x.sh", TaskCount: -2, ExecutorType: "process"},
			dagNode{Name: "x.sh", JobName: "x.sh", ExecutorType: model.ExecutorProcess, TaskCount: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			w := tt.w
			if w == nil {
				w = decodeDAG(t, `{"name": "hello", "job_name": "sub/hello.sh", "task_count": 3}`)
			}
			if w.IsDAG() {
				t.Errorf("IsDAG() = true for a flat workflow")
			}
			nodes := dagNodes(w.Nodes())
			if len(nodes) != 1 || !reflect.DeepEqual(nodes[0], tt.want) {
				t.Fatalf("Nodes() = %+v, want [%+v]", nodes, tt.want)
			}
			if nd, ok := w.Node(tt.want.Name); !ok || !reflect.DeepEqual(dagNodes([]model.Node{nd})[0], tt.want) {
				t.Errorf("Node(%q) = %+v, %v", tt.want.Name, nd, ok)
			}
		})
	}
}

// wantDAGError checks that decoding data fails with a *FileError for path
// whose message contains every fragment.
func wantDAGError(t *testing.T, path, data string, line, col int, fragments ...string) error {
	t.Helper()
	_, err := model.DecodeWorkflow(path, []byte(data))
	wantFileError(t, err, path, line, col, fragments[0])
	for _, f := range fragments[1:] {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not contain %q", err, f)
		}
	}
	return err
}

func TestDecodeWorkflowDAGErrors(t *testing.T) {
	const path = ".ork/workflows/etl.json"
	tests := []struct {
		desc      string
		data      string
		line, col int
		want      []string
	}{
		{"unknown upstream", `{"name": "etl", "tasks": {
			"extract": {"job_name": "e.sh"},
			"transform": {"job_name": "t.sh", "depends_on": ["extract"]},
			"load": {"job_name": "l.sh", "depends_on": ["transfrom"]}}}`, 0, 0,
			[]string{`task "load": depends_on names "transfrom", which is not a task of this workflow`}},
		{"self dependency", `{"name": "etl", "tasks": {
			"a": {"job_name": "a.sh", "depends_on": ["a"]}}}`, 0, 0,
			[]string{`task "a": depends on itself`}},
		{"upstream named twice", `{"name": "etl", "tasks": {
			"a": {"job_name": "a.sh"},
			"b": {"job_name": "b.sh", "depends_on": ["a", "a"]}}}`, 0, 0,
			[]string{`task "b": depends_on names "a" twice`}},
		{"2-cycle", `{"name": "etl", "tasks": {
			"a": {"job_name": "a.sh", "depends_on": ["b"]},
			"b": {"job_name": "b.sh", "depends_on": ["a"]}}}`, 0, 0,
			[]string{"tasks form a cycle: ", "a -> b -> a"}},
		{"duplicate task name", "{\n  \"name\": \"etl\",\n  \"tasks\": {\n    \"a\": {\"job_name\": \"a.sh\"},\n    \"a\": {\"job_name\": \"b.sh\"}\n  }\n}\n", 5, 5,
			[]string{`task "a" is defined twice`}},
		{"duplicate task name on one line", `{"name": "etl", "tasks": {"a": {"job_name": "a.sh"},"b": {"job_name": "b.sh"}, "a": {"job_name": "c.sh"}}}`, 1, 80,
			[]string{`task "a" is defined twice`}},
		{"invalid task name", `{"name": "etl", "tasks": {"bad name!": {"job_name": "a.sh"}}}`, 0, 0,
			[]string{`task "bad name!": name "bad name!" has ' '`}},
		{"empty task name", `{"name": "etl", "tasks": {"": {"job_name": "a.sh"}}}`, 0, 0,
			[]string{`task "": name is empty`}},
		{"job_name leaves the script directory", `{"name": "etl", "tasks": {"x": {"job_name": "../x.sh"}}}`, 0, 0,
			[]string{`task "x": job_name "../x.sh" leaves the script directory`}},
		{"absolute job_name", `{"name": "etl", "tasks": {"x": {"job_name": "/abs"}}}`, 0, 0,
			[]string{`task "x": job_name "/abs" is an absolute path`}},
		{"missing job_name", `{"name": "etl", "tasks": {"x": {"depends_on": []}}}`, 0, 0,
			[]string{`task "x": job_name is empty`}},
		{"unknown executor_type", `{"name": "etl", "tasks": {"x": {"job_name": "x.sh", "executor_type": "k8s"}}}`, 0, 0,
			[]string{`task "x": executor_type "k8s" is unknown`, model.ExecutorProcess}},
		{"negative task_count", `{"name": "etl", "tasks": {"x": {"job_name": "x.sh", "task_count": -1}}}`, 0, 0,
			[]string{`task "x": task_count -1 is less than 1`}},
		{"job_name and tasks", `{"name": "etl", "job_name": "x.sh", "tasks": {"x": {"job_name": "x.sh"}}}`, 0, 0,
			[]string{"either job_name and task_count (one job) or tasks (a DAG), not both"}},
		{"task_count and tasks", `{"name": "etl", "task_count": 3, "tasks": {"x": {"job_name": "x.sh"}}}`, 0, 0,
			[]string{"not both"}},
		{"empty tasks", `{"name": "etl", "tasks": {}}`, 0, 0,
			[]string{"tasks is empty"}},
		{"null task", `{"name": "etl", "tasks": {"x": null}}`, 0, 0,
			[]string{`task "x": is null`}},
		{"when on a task not in depends_on", `{"name": "etl", "tasks": {
			"check": {"job_name": "c.sh"},
			"other": {"job_name": "o.sh"},
			"go": {"job_name": "g.sh", "depends_on": ["other"], "when": "check.ok == true"}}}`, 0, 0,
			[]string{`task "go": when: "check" is not in depends_on`}},
		{"when without depends_on", `{"name": "etl", "tasks": {
			"check": {"job_name": "c.sh"},
			"go": {"job_name": "g.sh", "when": "check.ok == true"}}}`, 0, 0,
			[]string{`task "go": when: "check" is not in depends_on`}},
		{"unparsable when", `{"name": "etl", "tasks": {
			"check": {"job_name": "c.sh"},
			"go": {"job_name": "g.sh", "depends_on": ["check"], "when": "check.ok"}}}`, 0, 0,
			[]string{`task "go": when: "check.ok" has no comparison`}},
		{"when with a bare word", `{"name": "etl", "tasks": {
			"check": {"job_name": "c.sh"},
			"go": {"job_name": "g.sh", "depends_on": ["check"], "when": "check.q == good"}}}`, 0, 0,
			[]string{`task "go": when: `, "is not a JSON value"}},
		{"unknown field in a task", "{\"name\": \"etl\", \"tasks\": {\n  \"x\": {\"job_name\": \"x.sh\", \"depend_on\": [\"y\"]}}}", 2, 29,
			[]string{`unknown field "depend_on"`}},
		{"depends_on not an array", `{"name": "etl", "tasks": {"x": {"job_name": "x.sh", "depends_on": "y"}}}`, 1, 67,
			[]string{"must be an array"}},
		{"invalid workflow name", `{"name": "bad name", "tasks": {"x": {"job_name": "x.sh"}}}`, 0, 0,
			[]string{`name "bad name" has ' '`}},
		{"unknown workflow executor_type", `{"name": "etl", "executor_type": "k8s", "tasks": {"x": {"job_name": "x.sh"}}}`, 0, 0,
			[]string{`executor_type "k8s" is unknown`}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			wantDAGError(t, path, tt.data, tt.line, tt.col, tt.want...)
		})
	}
}

func TestDecodeWorkflowDAGCycle(t *testing.T) {
	const path = "w/cycle.json"
	data := `{"name": "cyc", "tasks": {
		"a": {"job_name": "a.sh", "depends_on": ["c"]},
		"b": {"job_name": "b.sh", "depends_on": ["a"]},
		"c": {"job_name": "c.sh", "depends_on": ["b"]},
		"d": {"job_name": "d.sh"},
		"e": {"job_name": "e.sh", "depends_on": ["d", "c"]}}}`
	err := wantDAGError(t, path, data, 0, 0, "tasks form a cycle: ")
	_, cyc, _ := strings.Cut(err.Error(), "tasks form a cycle: ")
	path3 := strings.Split(strings.TrimSpace(cyc), " -> ")
	if len(path3) != 4 || path3[0] != path3[3] {
		t.Fatalf("cycle %q: want 4 names, starting and ending with the same one", cyc)
	}
	if got := slices.Sorted(slices.Values(path3[:3])); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("cycle %q: names %q, want a, b and c once each", cyc, path3[:3])
	}
	// Each step goes from an upstream to a task that depends on it.
	deps := map[string]string{"a": "c", "b": "a", "c": "b"}
	for i := 0; i < 3; i++ {
		if deps[path3[i+1]] != path3[i] {
			t.Errorf("cycle %q: %s does not depend on %s", cyc, path3[i+1], path3[i])
		}
	}
	if strings.Contains(cyc, "d") || strings.Contains(cyc, "e") {
		t.Errorf("cycle %q names tasks outside it", cyc)
	}

	// Only the nodes outside the cycle can be ordered.
	var w model.Workflow
	if err := json.Unmarshal([]byte(data), &w); err != nil {
		t.Fatal(err)
	}
	if got := nodeNames(w.Nodes()); !slices.Equal(got, []string{"d"}) {
		t.Errorf("Nodes() of a cyclic workflow = %q, want only [d]", got)
	}
}

// TestDecodeWorkflowDAGEveryProblem checks that one error names every
// problem, each with its task.
func TestDecodeWorkflowDAGEveryProblem(t *testing.T) {
	data := `{"name": "w", "tasks": {
		"a": {"job_name": "../a.sh", "executor_type": "k8s"},
		"b": {"job_name": "b.sh", "depends_on": ["nosuch"]}}}`
	wantDAGError(t, "w.json", data, 0, 0,
		`task "a": job_name "../a.sh"`, `task "a": executor_type "k8s"`, `task "b": depends_on names "nosuch"`)
}

func TestParseCondition(t *testing.T) {
	tests := []struct {
		text     string
		upstream string
		index    int
		keys     []string
		op       string
		value    any
	}{
		{`check.quality == "good"`, "check", -1, []string{"quality"}, "==", "good"},
		{`check.rows > 1000`, "check", -1, []string{"rows"}, ">", 1000.0},
		{`check.rows>=1000`, "check", -1, []string{"rows"}, ">=", 1000.0},
		{`check.rows <= -1.5`, "check", -1, []string{"rows"}, "<=", -1.5},
		{`check.rows < 3`, "check", -1, []string{"rows"}, "<", 3.0},
		{`check.ok != true`, "check", -1, []string{"ok"}, "!=", true},
		{`  check.x == null  `, "check", -1, []string{"x"}, "==", nil},
		{`a.b.c == 1`, "a", -1, []string{"b", "c"}, "==", 1.0},
		{`parts[2].ok != true`, "parts", 2, []string{"ok"}, "!=", true},
		{`parts[0] == null`, "parts", 0, nil, "==", nil},
		{`check == {"a": 1}`, "check", -1, nil, "==", map[string]any{"a": 1.0}},
		{`check.s == "a==b"`, "check", -1, []string{"s"}, "==", "a==b"},
		{`check.s != "x < y >= z"`, "check", -1, []string{"s"}, "!=", "x < y >= z"},
		{`check.s == "say \"hi\" != bye"`, "check", -1, []string{"s"}, "==", `say "hi" != bye`},
		{`check.list == [1, "two"]`, "check", -1, []string{"list"}, "==", []any{1.0, "two"}},
		{`my-task_2.k == 0`, "my-task_2", -1, []string{"k"}, "==", 0.0},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			c, err := model.ParseCondition(tt.text)
			if err != nil {
				t.Fatalf("ParseCondition(%q): %v", tt.text, err)
			}
			if c.Text != tt.text || c.Upstream != tt.upstream || c.Index != tt.index || !slices.Equal(c.Keys, tt.keys) ||
				c.Op != tt.op || !reflect.DeepEqual(c.Value, tt.value) {
				t.Errorf("ParseCondition(%q) = %+v\nwant upstream %q, index %d, keys %q, op %q, value %#v",
					tt.text, c, tt.upstream, tt.index, tt.keys, tt.op, tt.value)
			}
		})
	}
}

func TestParseConditionInvalid(t *testing.T) {
	tests := []struct {
		text string
		want string
	}{
		{"", "has no comparison"},
		{"check.ok", "has no comparison"},
		{"check.ok = true", "has no comparison"},
		{`check.q == good`, `the right side "good" is not a JSON value`},
		{`check.q ==`, "is not a JSON value"},
		{`check.q == "open`, "is not a JSON value"},
		{`check.q == 1 2`, "is not a JSON value"},
		{`== 1`, "must start with an upstream task name"},
		{`.x == 1`, "must start with an upstream task name"},
		{`bad name.x == 1`, "must start with an upstream task name"},
		{`a..b == 1`, "empty key"},
		{`a.b. == 1`, "empty key"},
		{`parts[x].ok == 1`, "is not name[index]"},
		{`parts[-1].ok == 1`, "is not name[index]"},
		{`parts[1.ok == 1`, "is not name[index]"},
		{`parts[].ok == 1`, "is not name[index]"},
		{`[1].ok == 1`, "must start with an upstream task name"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			c, err := model.ParseCondition(tt.text)
			if err == nil {
				t.Fatalf("ParseCondition(%q) = %+v, want an error containing %q", tt.text, c, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseCondition(%q): error %q, want it to contain %q", tt.text, err, tt.want)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.text)) {
				t.Errorf("ParseCondition(%q): error %q does not quote the condition", tt.text, err)
			}
		})
	}
}

func TestConditionEval(t *testing.T) {
	const upstream = `{
		"check": {"quality": "good", "rows": 1500, "ok": true, "ratio": 0.5, "none": null,
		          "a": {"b": {"c": 7, "s": "x"}}, "list": [1, "two"], "obj": {"k": 1, "j": [true]}},
		"parts": [{"ok": true, "n": 1}, null, {"ok": false, "n": 3}],
		"skipped": null
	}`
	var up map[string]any
	if err := json.Unmarshal([]byte(upstream), &up); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		text string
		want bool
	}{
		// == and != on every JSON kind.
		{`check.quality == "good"`, true},
		{`check.quality == "bad"`, false},
		{`check.quality != "good"`, false},
		{`check.quality != "bad"`, true},
		{`check.rows == 1500`, true},
		{`check.rows == 1500.0`, true},
		{`check.rows != 1500`, false},
		{`check.ok == true`, true},
		{`check.ok == false`, false},
		{`check.none == null`, true},
		{`check.list == [1, "two"]`, true},
		{`check.list == ["two", 1]`, false},
		{`check.obj == {"j": [true], "k": 1}`, true},
		{`check.obj == {"k": 1}`, false},
		// Ordering of numbers.
		{`check.rows > 1000`, true},
		{`check.rows > 1500`, false},
		{`check.rows >= 1500`, true},
		{`check.rows >= 1501`, false},
		{`check.rows < 1501`, true},
		{`check.rows < 1500`, false},
		{`check.rows <= 1500`, true},
		{`check.rows <= 1499.9`, false},
		{`check.ratio < 1`, true},
		{`check.ratio > -1`, true},
		// Ordering of strings.
		{`check.quality > "bad"`, true},
		{`check.quality < "bad"`, false},
		{`check.quality >= "good"`, true},
		{`check.quality <= "good"`, true},
		{`check.quality < "goodness"`, true},
		{`check.quality > "z"`, false},
		// Nested keys.
		{`check.a.b.c == 7`, true},
		{`check.a.b.c > 6`, true},
		{`check.a.b.s == "x"`, true},
		{`check.a.b == {"c": 7, "s": "x"}`, true},
		// Fan-out indexes.
		{`parts[0].ok == true`, true},
		{`parts[2].ok == false`, true},
		{`parts[2].ok != true`, true},
		{`parts[2].n >= 3`, true},
		{`parts[1] == null`, true},
		{`parts[1].ok == null`, true},
		{`parts[9].ok == null`, true},
		{`parts[9] == null`, true},
		{`check[0].quality == null`, true}, // not an array
		{`parts.ok == null`, true},         // an array has no keys
		// Missing keys, upstreams and skipped upstreams are null.
		{`check.missing == null`, true},
		{`check.missing != null`, false},
		{`check.missing.deeper == null`, true},
		{`check.quality.deeper == null`, true},
		{`nosuch.x == null`, true},
		{`skipped.x == null`, true},
		{`skipped == null`, true},
		{`check.missing == 0`, false},
		{`check.missing == ""`, false},
		{`check.missing == false`, false},
		// Type mismatches are false for every ordering, and not equal.
		{`check.rows == "1500"`, false},
		{`check.rows != "1500"`, true},
		{`check.quality == 1`, false},
		{`check.ok == 1`, false},
		{`check.rows < "2000"`, false},
		{`check.rows > "1"`, false},
		{`check.rows <= "1500"`, false},
		{`check.rows >= "1500"`, false},
		{`check.quality < 1`, false},
		{`check.quality >= 0`, false},
		{`check.ok > false`, false},
		{`check.ok >= true`, false},
		{`check.none <= null`, false},
		{`check.missing < 1`, false},
		{`check.missing > 1`, false},
		{`check.list >= [1]`, false},
		// Operators inside a quoted string are part of the value.
		{`check.quality == "a==b"`, false},
		{`check.quality != "a==b"`, true},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			c, err := model.ParseCondition(tt.text)
			if err != nil {
				t.Fatalf("ParseCondition(%q): %v", tt.text, err)
			}
			if got := c.Eval(up); got != tt.want {
				t.Errorf("Eval(%q) = %v, want %v", tt.text, got, tt.want)
			}
		})
	}

	// A string with operators in it, compared to a value holding them.
	c, err := model.ParseCondition(`check.s == "a==b"`)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Eval(map[string]any{"check": map[string]any{"s": "a==b"}}) {
		t.Errorf(`Eval(check.s == "a==b") on {"s": "a==b"} = false, want true`)
	}
	// Nil and empty upstream maps: everything is null.
	c, _ = model.ParseCondition(`check.x == null`)
	if !c.Eval(nil) || !c.Eval(map[string]any{}) {
		t.Errorf("Eval(check.x == null) on no upstream = false, want true")
	}
}

// dagRun makes a run of the etl workflow with the given trigger params.
func dagRun(t *testing.T, params map[string]any) *model.Run {
	t.Helper()
	w := decodeDAG(t, `{"name": "etl",
	  "params": {"date": "2026-01-01", "target": "lake", "level": 1},
	  "tasks": {
	    "extract":   {"job_name": "extract.sh"},
	    "transform": {"job_name": "transform.sh", "depends_on": ["extract"], "task_count": 4, "params": {"level": 2}},
	    "load":      {"job_name": "load.sh", "depends_on": ["transform"], "params": {"target": "warehouse", "level": 3}}
	  }}`)
	return model.NewRun(w, params, "test", t0)
}

func TestRunTaskCountDAG(t *testing.T) {
	r := dagRun(t, nil)
	if got := r.TaskCount(); got != 6 {
		t.Errorf("TaskCount() = %d, want 1 + 4 + 1", got)
	}
	flat := model.NewRun(testWorkflow(), nil, "test", t0)
	if got := flat.TaskCount(); got != 3 {
		t.Errorf("TaskCount() of a flat run = %d, want 3", got)
	}
	if got := (&model.Run{ID: "r"}).TaskCount(); got != 1 {
		t.Errorf("TaskCount() of a run without a workflow = %d, want 1", got)
	}
}

func TestNewTasksDAG(t *testing.T) {
	r := dagRun(t, map[string]any{"date": "2026-02-02", "extra": true})
	tasks := model.NewTasks(r, t1)
	type key struct {
		name  string
		index int
	}
	var got []key
	for _, tk := range tasks {
		got = append(got, key{tk.Name, tk.TaskIndex})
		if tk.ID != model.TaskID(r.ID, tk.Name, tk.TaskIndex) || tk.RunID != r.ID || tk.Status != model.TaskPending || !tk.CreatedAt.Equal(t1) {
			t.Errorf("task %s: %+v", tk.Label(), tk)
		}
	}
	want := []key{{"extract", 0}, {"transform", 0}, {"transform", 1}, {"transform", 2}, {"transform", 3}, {"load", 0}}
	if !slices.Equal(got, want) {
		t.Errorf("NewTasks made %v, want %v", got, want)
	}

	// workflow < node < run.
	wantParams := map[string]map[string]any{
		"extract":   {"date": "2026-02-02", "target": "lake", "level": json.Number("1"), "extra": true},
		"transform": {"date": "2026-02-02", "target": "lake", "level": json.Number("2"), "extra": true},
		"load":      {"date": "2026-02-02", "target": "warehouse", "level": json.Number("3"), "extra": true},
	}
	for _, tk := range tasks {
		if !reflect.DeepEqual(tk.Params, wantParams[tk.Name]) {
			t.Errorf("task %s: params %v, want %v", tk.Label(), tk.Params, wantParams[tk.Name])
		}
	}
	// The run's params win over a node's too.
	r2 := dagRun(t, map[string]any{"target": "cli", "level": 9})
	for _, tk := range model.NewTasks(r2, t1) {
		if tk.Params["target"] != "cli" || tk.Params["level"] != 9 {
			t.Errorf("task %s: params %v, want target cli and level 9 from the run", tk.Label(), tk.Params)
		}
	}
	// The workflow's and nodes' params are not changed by merging.
	if nd, _ := r.Workflow.Node("load"); !reflect.DeepEqual(nd.Params, map[string]any{"target": "warehouse", "level": json.Number("3")}) {
		t.Errorf("node load params changed to %v", nd.Params)
	}
	if !reflect.DeepEqual(r.Workflow.Params, map[string]any{"date": "2026-01-01", "target": "lake", "level": json.Number("1")}) {
		t.Errorf("workflow params changed to %v", r.Workflow.Params)
	}

	// NewNodeTasks: a range of one node.
	nd, _ := r.Workflow.Node("transform")
	part := model.NewNodeTasks(r, nd, 1, 3, t1)
	if len(part) != 2 || part[0].TaskIndex != 1 || part[1].TaskIndex != 2 || part[0].Name != "transform" {
		t.Errorf("NewNodeTasks(transform, 1, 3) = %v", part)
	}
	if part[0].ID != tasks[2].ID {
		t.Errorf("NewNodeTasks id %q, NewTasks id %q for transform[1]: want the same", part[0].ID, tasks[2].ID)
	}
	if got := model.NewNodeTasks(r, nd, 2, 2, t1); got != nil {
		t.Errorf("NewNodeTasks of an empty range = %v, want nil", got)
	}
	// Task ids differ between nodes with the same index.
	if tasks[0].ID == tasks[1].ID {
		t.Errorf("extract[0] and transform[0] share id %q", tasks[0].ID)
	}
}

func labels(ts []*model.Task) []string {
	out := make([]string, len(ts))
	for i, tk := range ts {
		out[i] = tk.Label()
	}
	return out
}

func TestCompleteTasksDAG(t *testing.T) {
	r := dagRun(t, nil)
	all := model.NewTasks(r, t1)
	want := []string{"extract[0]", "transform[0]", "transform[1]", "transform[2]", "transform[3]", "load[0]"}

	// Recorded: extract done, two transforms running, out of order.
	rec := func(name string, i int, st model.TaskStatus) *model.Task {
		tk := model.NewNodeTasks(r, func() model.Node { nd, _ := r.Workflow.Node(name); return nd }(), i, i+1, t2)[0]
		tk.Status = st
		return tk
	}
	recorded := []*model.Task{
		rec("transform", 2, model.TaskRunning),
		rec("extract", 0, model.TaskSuccess),
		rec("transform", 0, model.TaskRunning),
	}
	got := model.CompleteTasks(r, recorded)
	if !slices.Equal(labels(got), want) {
		t.Fatalf("CompleteTasks order %q, want %q", labels(got), want)
	}
	wantStatus := []model.TaskStatus{model.TaskSuccess, model.TaskRunning, model.TaskPending, model.TaskRunning, model.TaskPending, model.TaskPending}
	for i, tk := range got {
		if tk.Status != wantStatus[i] {
			t.Errorf("%s: status %s, want %s", tk.Label(), tk.Status, wantStatus[i])
		}
		if tk.Status == model.TaskPending && (tk.ID != all[i].ID || !tk.CreatedAt.Equal(r.CreatedAt)) {
			t.Errorf("%s: a task not created yet is %+v, want id %s created at the run's creation", tk.Label(), tk, all[i].ID)
		}
	}
	// No tasks recorded: every task, pending.
	got = model.CompleteTasks(r, nil)
	if !slices.Equal(labels(got), want) {
		t.Errorf("CompleteTasks(nil) order %q, want %q", labels(got), want)
	}
	for _, tk := range got {
		if tk.Status != model.TaskPending {
			t.Errorf("CompleteTasks(nil): %s is %s, want pending", tk.Label(), tk.Status)
		}
	}

	// All recorded: the same tasks, sorted.
	shuffled := slices.Clone(all)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	got = model.CompleteTasks(r, shuffled)
	if !slices.Equal(labels(got), want) {
		t.Errorf("CompleteTasks(all, shuffled) order %q, want %q", labels(got), want)
	}
}

func TestSortTasks(t *testing.T) {
	w := decodeDAG(t, `{"name": "w", "tasks": {
		"zeta": {"job_name": "x.sh"},
		"alpha": {"job_name": "x.sh", "depends_on": ["zeta"], "task_count": 12},
		"beta": {"job_name": "x.sh"}}}`)
	mk := func(name string, i int) *model.Task { return &model.Task{Name: name, TaskIndex: i} }
	ts := []*model.Task{
		mk("alpha", 10), mk("gone", 1), mk("alpha", 2), mk("zeta", 0), mk("beta", 0),
		mk("another", 0), mk("alpha", 0), mk("gone", 0),
	}
	model.SortTasks(w, ts)
	want := []string{"beta[0]", "zeta[0]", "alpha[0]", "alpha[2]", "alpha[10]", "another[0]", "gone[0]", "gone[1]"}
	if got := labels(ts); !slices.Equal(got, want) {
		t.Errorf("SortTasks = %q, want %q", got, want)
	}

	// Without a workflow: by name, then index.
	ts = []*model.Task{mk("b", 1), mk("a", 3), mk("b", 0), mk("a", 1)}
	model.SortTasks(nil, ts)
	if got, want := labels(ts), []string{"a[1]", "a[3]", "b[0]", "b[1]"}; !slices.Equal(got, want) {
		t.Errorf("SortTasks(nil) = %q, want %q", got, want)
	}
}

// TestNodesTopologicalProperty checks, on random small DAGs, that Nodes()
// lists every node once, after all its upstreams, and breaks ties by name:
// the order is the smallest by name among the topological orders.
func TestNodesTopologicalProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(2026, 1))
	letters := "abcdefghijklmnopqrstuvwxyz"
	for iter := 0; iter < 300; iter++ {
		n := 1 + rng.IntN(10)
		// Random distinct names, in a random creation order; edges only go
		// from an earlier node to a later one, so the graph has no cycle.
		names := make([]string, 0, n)
		seen := map[string]bool{}
		for len(names) < n {
			name := string(letters[rng.IntN(len(letters))]) + fmt.Sprint(rng.IntN(3))
			if !seen[name] {
				seen[name] = true
				names = append(names, name)
			}
		}
		tasks := map[string]*model.TaskSpec{}
		for i, name := range names {
			spec := &model.TaskSpec{JobName: name + ".sh", TaskCount: 1 + rng.IntN(3)}
			for j := 0; j < i; j++ {
				if rng.IntN(3) == 0 {
					spec.DependsOn = append(spec.DependsOn, names[j])
				}
			}
			rng.Shuffle(len(spec.DependsOn), func(a, b int) { spec.DependsOn[a], spec.DependsOn[b] = spec.DependsOn[b], spec.DependsOn[a] })
			tasks[name] = spec
		}
		data, err := json.Marshal(map[string]any{"name": "rand", "tasks": tasks})
		if err != nil {
			t.Fatal(err)
		}
		w, err := model.DecodeWorkflow("rand.json", data)
		if err != nil {
			t.Fatalf("iteration %d: DecodeWorkflow: %v\n%s", iter, err, data)
		}
		got := nodeNames(w.Nodes())

		pos := map[string]int{}
		for i, name := range got {
			if _, dup := pos[name]; dup {
				t.Fatalf("iteration %d: Nodes() lists %s twice: %q\n%s", iter, name, got, data)
			}
			pos[name] = i
		}
		if len(got) != n {
			t.Fatalf("iteration %d: Nodes() lists %d nodes, want %d: %q\n%s", iter, len(got), n, got, data)
		}
		for name, spec := range tasks {
			for _, up := range spec.DependsOn {
				if pos[up] > pos[name] {
					t.Errorf("iteration %d: Nodes() = %q puts %s before its upstream %s\n%s", iter, got, name, up, data)
				}
			}
			nd, _ := w.Node(name)
			if nd.TaskCount != spec.TaskCount || nd.JobName != spec.JobName {
				t.Errorf("iteration %d: node %s = %+v, want task_count %d, job_name %s", iter, name, nd, spec.TaskCount, spec.JobName)
			}
		}
		// Ties by name: at each step, the smallest name whose upstreams
		// are all placed.
		var want []string
		placed := map[string]bool{}
		for len(want) < n {
			best := ""
			for name, spec := range tasks {
				if placed[name] || (best != "" && name > best) {
					continue
				}
				ready := true
				for _, up := range spec.DependsOn {
					ready = ready && placed[up]
				}
				if ready {
					best = name
				}
			}
			placed[best] = true
			want = append(want, best)
		}
		if !slices.Equal(got, want) {
			t.Errorf("iteration %d: Nodes() = %q, want %q (ties by name)\n%s", iter, got, want, data)
		}
	}
}
