package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary act as perf-test's status probe, which
// Measure starts as a process of its own executable.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == statusProbeArg {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		wantErr string
		check   func(t *testing.T, c *Config)
	}{
		{
			name: "defaults",
			json: `{"name":"x","workflows":2,"runs_per_workflow":3,"tasks_per_run":4}`,
			check: func(t *testing.T, c *Config) {
				if c.Executor != ExecNoop || c.Trigger != TriggerBatch || c.TriggerHandle != HandleOther {
					t.Errorf("defaults = %q %q %q", c.Executor, c.Trigger, c.TriggerHandle)
				}
				if c.Runs() != 6 || c.Tasks() != 24 {
					t.Errorf("runs, tasks = %d, %d; want 6, 24", c.Runs(), c.Tasks())
				}
				if c.BaselineEnabled() {
					t.Error("baseline for a no-op workload")
				}
				s := c.Scheduler.Sched()
				if s.PollInterval != time.Second || s.MaxTasksPerBatch != 100 || s.MaxRunningTasks < 4 {
					t.Errorf("scheduler defaults not filled in: %+v", s)
				}
			},
		},
		{
			name: "everything",
			json: `{"name":"x","workflows":1,"runs_per_workflow":1,"tasks_per_run":1,"task_duration":"10ms",
				"executor":"process","trigger":"spaced","latency_samples":4,"idle_seconds":1.5,
				"scheduler":{"poll_interval":"250ms","max_tasks_per_batch":7,"max_concurrent_dispatches":3,
				"max_concurrent_status_checks":2,"max_running_tasks":5,"shutdown_grace":"1s"}}`,
			check: func(t *testing.T, c *Config) {
				if time.Duration(c.TaskDuration) != 10*time.Millisecond || c.TriggerHandle != HandleAlternate || !c.BaselineEnabled() {
					t.Errorf("got %+v", c)
				}
				s := c.Scheduler.Sched()
				if s.PollInterval != 250*time.Millisecond || s.MaxTasksPerBatch != 7 || s.MaxConcurrentDispatches != 3 ||
					s.MaxConcurrentStatusChecks != 2 || s.MaxRunningTasks != 5 || s.ShutdownGrace != time.Second {
					t.Errorf("scheduler = %+v", s)
				}
			},
		},
		{name: "zero duration as a number", json: `{"name":"x","workflows":1,"runs_per_workflow":1,"tasks_per_run":1,"task_duration":0}`},
		{name: "unknown field", json: `{"name":"x","workflows":1,"runs_per_workflow":1,"tasks_per_run":1,"task_durations":"1s"}`, wantErr: "unknown field"},
		{name: "bad duration", json: `{"name":"x","workflows":1,"runs_per_workflow":1,"tasks_per_run":1,"task_duration":"fast"}`, wantErr: "invalid duration"},
		{name: "duration as a number", json: `{"name":"x","workflows":1,"runs_per_workflow":1,"tasks_per_run":1,"task_duration":10}`, wantErr: "a duration is text"},
		{name: "no tasks", json: `{"name":"x","workflows":1,"runs_per_workflow":1,"tasks_per_run":0}`, wantErr: "at least 1"},
		{name: "bad executor", json: `{"name":"x","workflows":1,"runs_per_workflow":1,"tasks_per_run":1,"executor":"lambda"}`, wantErr: `executor "lambda"`},
		{
			name: "cloudrun",
			json: `{"name":"x","workflows":1,"runs_per_workflow":1,"tasks_per_run":1,"executor":"cloudrun",
				"cloudrun":{"job":"etl","poll_interval":"1s","get_latency":"50ms"}}`,
			check: func(t *testing.T, c *Config) {
				cr := c.CloudRun.withDefaults()
				if cr.Project != defaultCloudRunProject || cr.Region != defaultCloudRunRegion || cr.Job != "etl" ||
					cr.PollInterval.std() != time.Second || cr.GetLatency.std() != 50*time.Millisecond || c.BaselineEnabled() {
					t.Errorf("got %+v, %+v", c, cr)
				}
			},
		},
		{name: "cloudrun settings for another executor", json: `{"name":"x","workflows":1,"runs_per_workflow":1,"tasks_per_run":1,"executor":"noop","cloudrun":{}}`, wantErr: `cloudrun settings are for the executor "cloudrun"`},
		{name: "negative cloudrun poll interval", json: `{"name":"x","workflows":1,"runs_per_workflow":1,"tasks_per_run":1,"executor":"cloudrun","cloudrun":{"poll_interval":"-1s"}}`, wantErr: "must not be negative"},
		{name: "bad trigger", json: `{"name":"x","workflows":1,"runs_per_workflow":1,"tasks_per_run":1,"trigger":"burst"}`, wantErr: `trigger "burst"`},
		{name: "short chain", json: `{"name":"x","workflows":1,"runs_per_workflow":1,"tasks_per_run":1,"dag":{"depth":1}}`, wantErr: "dag.depth"},
		{name: "no name", json: `{"workflows":1,"runs_per_workflow":1,"tasks_per_run":1}`, wantErr: "name is empty"},
		{name: "two values", json: `{"name":"x","workflows":1,"runs_per_workflow":1,"tasks_per_run":1} {}`, wantErr: "more than one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tt.json))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

// Every shipped workload parses.
func TestShippedConfigs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", configDirName, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no workloads found: %v", err)
	}
	names := map[string]bool{}
	for _, f := range files {
		c, err := LoadConfig(f)
		if err != nil {
			t.Error(err)
			continue
		}
		if want := strings.TrimSuffix(filepath.Base(f), ".json"); c.Name != want {
			t.Errorf("%s: name %q, want %q", f, c.Name, want)
		}
		names[c.Name] = true
	}
	for _, n := range []string{"quick", "standard", "heavy", "latency", "memory", "scale", "chain", "idle", "noisy", "cloudrun"} {
		if !names[n] {
			t.Errorf("workload %q is missing", n)
		}
	}
}

func TestResolveConfig(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, configDirName), 0o755)
	os.WriteFile(filepath.Join(root, configDirName, "mine.json"), []byte(`{}`), 0o644)
	sub := filepath.Join(root, "a", "b")
	os.MkdirAll(sub, 0o755)
	t.Chdir(sub)
	p, err := ResolveConfig("mine")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := filepath.EvalSymlinks(p); !strings.HasSuffix(got, filepath.Join(configDirName, "mine.json")) {
		t.Errorf("resolved to %s", p)
	}
	if _, err := ResolveConfig("nosuch"); err == nil || !strings.Contains(err.Error(), `"nosuch" not found`) {
		t.Errorf("err = %v", err)
	}
	if _, err := ResolveConfig("./nosuch.json"); err == nil {
		t.Error("a missing file resolved")
	}
}

func TestPercentile(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		out := make([]time.Duration, len(vs))
		for i, v := range vs {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		vals []time.Duration
		p    float64
		want time.Duration
	}{
		{ms(7), 50, 7 * time.Millisecond},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(1, 2), 50, 1 * time.Millisecond},
		{ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{ms(1, 2, 3, 4), 75, 3 * time.Millisecond},
		{ms(1, 2, 3, 4), 76, 4 * time.Millisecond},
		{ms(hundred...), 95, 95 * time.Millisecond},
		{ms(hundred...), 99, 99 * time.Millisecond},
		{ms(hundred...), 100, 100 * time.Millisecond},
		{ms(hundred...), 0, 1 * time.Millisecond},
		{nil, 50, 0},
	}
	for _, tt := range tests {
		if got := Percentile(tt.vals, tt.p); got != tt.want {
			t.Errorf("Percentile(%d values, %v) = %v, want %v", len(tt.vals), tt.p, got, tt.want)
		}
	}
	s := Summarize(ms(5, 1, 4, 2, 3))
	if s.N != 5 || s.P50 != 3 || s.P95 != 5 || s.P99 != 5 || s.Max != 5 {
		t.Errorf("Summarize = %+v", s)
	}
	if Summarize(nil) != nil {
		t.Error("Summarize(nil) is not nil")
	}
}

func TestFirstEnds(t *testing.T) {
	in := []taskSample{{task: 1, recorded: 1}, {task: 2, recorded: 2}, {task: 1, recorded: 3}}
	out, n := firstEnds(in)
	if n != 1 || len(out) != 2 || out[0].recorded != 1 || out[1].task != 2 {
		t.Errorf("firstEnds = %+v, %d", out, n)
	}
}

func TestPace(t *testing.T) {
	t0 := time.Unix(0, 0)
	var s []taskSample
	// 1,000 tasks: the first 900 at 1,000/s, the last 100 at 500/s.
	at := int64(0)
	for i := range 1000 {
		if i < 900 {
			at += int64(time.Millisecond)
		} else {
			at += int64(2 * time.Millisecond)
		}
		s = append(s, taskSample{task: uint64(i), recorded: at})
	}
	p := pace(s, t0)
	if p.Tasks != 100 || p.FirstTasksPerSec != 1000 || p.LastTasksPerSec != 500 || p.Ratio != 0.5 {
		t.Errorf("pace = %+v", p)
	}
	if len(p.Deciles) != 10 || p.Deciles[0] != 1000 || p.Deciles[9] != 500 {
		t.Errorf("deciles = %v", p.Deciles)
	}
	if pace(s[:50], t0) != nil {
		t.Error("pace of 50 tasks")
	}
}

// A small workload end to end: the shipped scheduler on a file database
// with the no-op executor, a few latency samples, and both outputs.
func TestMeasureSmall(t *testing.T) {
	cfg, err := ParseConfig([]byte(`{"name":"tiny","workflows":2,"runs_per_workflow":2,"tasks_per_run":30,
		"latency_samples":4,"scheduler":{"max_running_tasks":4}}`))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Measure(context.Background(), cfg, Options{Dir: t.TempDir(), Timeout: time.Minute, Logs: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if res.FailedTasks != 0 || res.TasksPerSec <= 0 || res.Latency.DispatchedToRunning == nil || res.Latency.DispatchedToRunning.N != 120 {
		t.Errorf("result = %+v", res)
	}
	if p := res.Latency.TriggerToFirstStartOtherDB; p == nil || p.N != 2 {
		t.Errorf("trigger latency through the other handle = %+v", p)
	}
	if res.Latency.DAGHop != nil || res.Resources.PeakRSSBytes <= 0 || res.Status == nil || res.Status.Runs != 4 {
		t.Errorf("result = %+v", res)
	}
	var table bytes.Buffer
	if err := WriteTable(&table, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"tasks/s", "trigger -> first start (other handle)", "DAG hop", "n/a", "peak RSS"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table has no %q:\n%s", want, table.String())
		}
	}
	data, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	var md bytes.Buffer
	if err := WriteMarkdown(&md, []*Result{&back}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "| tiny | noop | 4 x 30 |") {
		t.Errorf("markdown:\n%s", md.String())
	}
}

// A DAG workload measures the hop between nodes.
func TestChain(t *testing.T) {
	cfg, err := ParseConfig([]byte(`{"name":"chain","workflows":1,"runs_per_workflow":2,"tasks_per_run":1,"trigger":"spaced","dag":{"depth":3}}`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Tasks() != 6 {
		t.Fatalf("Tasks() = %d, want 6", cfg.Tasks())
	}
	res, err := Measure(context.Background(), cfg, Options{Dir: t.TempDir(), Timeout: time.Minute, Logs: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if p := res.Latency.DAGHop; p == nil || p.N != 4 {
		t.Fatalf("DAG hop = %+v, want 4 hops", p)
	}
	var dag *Target
	for i := range res.Targets {
		if res.Targets[i].Name == "DAG hop p50" {
			dag = &res.Targets[i]
		}
	}
	if dag == nil || dag.Met == nil {
		t.Errorf("targets = %+v", res.Targets)
	}
}
