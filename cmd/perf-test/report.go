package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Goals of ork on a 2-core machine.
const (
	goalTasksPerSec   = 3000 // scheduler only, file database, durable writes
	goalXargsRatio    = 1.2  // process workloads against xargs -P N
	goalTriggerP50Ms  = 10   // trigger → first task start
	goalDAGHopP50Ms   = 5    // a task's end → its dependent's start
	goalPaceRatio     = 0.8  // the last 10% of a 100,000-task run against the first 10%
	goalRSSBytes      = 200 << 20
	goalStatusSeconds = 0.5 // `ork status RUN` on a 100,000-task run
	goalIdlePercent   = 1.0 // idle scheduler, 1,000 finished runs on disk
	scaleTasks        = 100000
	// throughputMinTasksPerRun: the throughput goal is judged on workloads
	// whose runs have at least this many tasks; below, the cost of
	// triggering runs is what is measured.
	throughputMinTasksPerRun = 50
)

func met(ok bool) *bool { return &ok }

// evaluate fills in the targets this measurement speaks to.
func (r *Result) evaluate() {
	w := r.Workload
	add := func(name, goal, value string, ok *bool) {
		r.Targets = append(r.Targets, Target{Name: name, Goal: goal, Value: value, Met: ok})
	}
	if w.Executor == ExecNoop && w.Trigger == TriggerBatch && w.TaskDuration == 0 && w.TasksPerRun >= throughputMinTasksPerRun {
		add("scheduler-only throughput", fmt.Sprintf(">= %d tasks/s", goalTasksPerSec),
			fmt.Sprintf("%.0f tasks/s", r.TasksPerSec), met(r.TasksPerSec >= goalTasksPerSec))
	}
	if b := r.Baseline; b != nil {
		add("process workload vs xargs", fmt.Sprintf("<= %.1fx", goalXargsRatio),
			fmt.Sprintf("%.2fx (%.2f s vs %.2f s)", b.Ratio, r.TotalSeconds, b.Seconds), met(b.Ratio <= goalXargsRatio))
	}
	if p := r.Latency.TriggerToFirstStartOtherDB; p != nil {
		add("trigger -> first start p50 (other process, fsnotify)", fmt.Sprintf("< %d ms", goalTriggerP50Ms),
			fmt.Sprintf("%.2f ms", p.P50), met(p.P50 < goalTriggerP50Ms))
	}
	if p := r.Latency.TriggerToFirstStart; p != nil {
		add("trigger -> first start p50 (scheduler's own handle)", fmt.Sprintf("< %d ms", goalTriggerP50Ms),
			fmt.Sprintf("%.2f ms", p.P50), met(p.P50 < goalTriggerP50Ms))
	}
	if w.DAGDepth > 0 {
		if p := r.Latency.DAGHop; p != nil {
			add("DAG hop p50", fmt.Sprintf("< %d ms", goalDAGHopP50Ms), fmt.Sprintf("%.2f ms", p.P50), met(p.P50 < goalDAGHopP50Ms))
		} else {
			add("DAG hop p50", fmt.Sprintf("< %d ms", goalDAGHopP50Ms), "n/a", nil)
		}
	}
	if w.Tasks >= scaleTasks {
		if p := r.Pace; p != nil {
			add("pace of a 100,000-task workload (last 10% / first 10%)", fmt.Sprintf(">= %.1f", goalPaceRatio),
				fmt.Sprintf("%.2f (%.0f vs %.0f tasks/s)", p.Ratio, p.LastTasksPerSec, p.FirstTasksPerSec), met(p.Ratio >= goalPaceRatio))
		}
		add("peak RSS of the scheduler's process", fmt.Sprintf("< %d MB", goalRSSBytes>>20),
			mb(r.Resources.PeakRSSBytes), met(r.Resources.PeakRSSBytes < goalRSSBytes))
	}
	if s := r.Status; s != nil && w.RunTasks >= scaleTasks {
		add("`ork status RUN` on a 100,000-task run", fmt.Sprintf("< %.1f s", goalStatusSeconds),
			fmt.Sprintf("%.3f s", s.RunSeconds), met(s.RunSeconds < goalStatusSeconds))
	}
	if i := r.Idle; i != nil {
		add(fmt.Sprintf("idle scheduler, %d finished runs", i.FinishedRuns), fmt.Sprintf("< %.0f%% of a core", goalIdlePercent),
			fmt.Sprintf("%.2f%%", i.CPUPercentOfACore), met(i.FinishedRuns >= 1000 && i.CPUPercentOfACore < goalIdlePercent))
	}
}

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }

func yesNo(b *bool) string {
	switch {
	case b == nil:
		return "n/a"
	case *b:
		return "yes"
	}
	return "NO"
}

func pct(p *Percentiles) []string {
	f := func(v float64) string { return fmt.Sprintf("%.3f", v) }
	return []string{fmt.Sprint(p.N), f(p.P50), f(p.P95), f(p.P99), f(p.Max)}
}

// WriteTable prints a result for people.
func WriteTable(out io.Writer, r *Result) error {
	var b strings.Builder
	w := r.Workload
	fmt.Fprintf(&b, "ork perf-test: %s", r.Config)
	if r.Description != "" {
		fmt.Fprintf(&b, " - %s", r.Description)
	}
	fmt.Fprintf(&b, "\nmachine:   %d CPUs (%s), %s/%s, kernel %s, %s, load average %s at the start\n", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.OS, r.Machine.Arch, r.Machine.Kernel, r.Machine.GoVersion, r.Machine.LoadAvg)
	fmt.Fprintf(&b, "workload:  %d workflows x %d runs x %d tasks = %d tasks in %d runs; task %s; executor %s; trigger %s (%s handle)",
		w.Workflows, w.RunsPerWorkflow, w.RunTasks, w.Tasks, w.Runs, time.Duration(w.TaskDuration), w.Executor, w.Trigger, w.TriggerHandle)
	if w.LatencySamples > 0 {
		fmt.Fprintf(&b, "; %d latency samples", w.LatencySamples)
	}
	if w.IdleSeconds > 0 {
		fmt.Fprintf(&b, "; idle %gs", w.IdleSeconds)
	}
	if w.BackgroundMBps > 0 {
		fmt.Fprintf(&b, "; a background writer of %d MB/s", w.BackgroundMBps)
	}
	if w.DAGDepth > 0 {
		fmt.Fprintf(&b, "; each run a DAG chain of %d nodes of %d tasks", w.DAGDepth, w.TasksPerRun)
	}
	s := r.Scheduler
	fmt.Fprintf(&b, "\nscheduler: poll-interval=%s max-tasks-per-batch=%d max-concurrent-dispatches=%d max-concurrent-status-checks=%d max-running-tasks=%d\n",
		time.Duration(s.PollInterval), s.MaxTasksPerBatch, s.MaxConcurrentDispatches, s.MaxConcurrentStatusChecks, s.MaxRunningTasks)
	if r.Dir != "" {
		fmt.Fprintf(&b, "directory: %s (kept)\n", r.Dir)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note:      %s\n", n)
	}
	if _, err := io.WriteString(out, b.String()); err != nil {
		return err
	}

	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\nTHROUGHPUT\n")
	fmt.Fprintf(tw, "  total time\t%.3f s\n", r.TotalSeconds)
	if r.CreateRunsSeconds > 0 {
		fmt.Fprintf(tw, "  of which creating the runs\t%.3f s\n", r.CreateRunsSeconds)
	}
	fmt.Fprintf(tw, "  runs/s\t%.1f\n", r.RunsPerSec)
	fmt.Fprintf(tw, "  tasks/s\t%.1f\n", r.TasksPerSec)
	if p := r.Pace; p != nil {
		fmt.Fprintf(tw, "  pace, first 10%% of tasks\t%.1f tasks/s\n", p.FirstTasksPerSec)
		fmt.Fprintf(tw, "  pace, last 10%% of tasks\t%.1f tasks/s (%.2f of the first)\n", p.LastTasksPerSec, p.Ratio)
		ds := make([]string, len(p.Deciles))
		for i, d := range p.Deciles {
			ds[i] = fmt.Sprintf("%.0f", d)
		}
		fmt.Fprintf(tw, "  pace of each tenth\t%s tasks/s\n", strings.Join(ds, " "))
	}
	if b := r.Baseline; b != nil {
		fmt.Fprintf(tw, "  baseline: xargs -P %d -n 1\t%.3f s (%.1f tasks/s; mean of %.3f s before ork and %.3f s after)\n", b.Parallelism, b.Seconds, b.TasksPerSec, b.SecondsBefore, b.SecondsAfter)
		fmt.Fprintf(tw, "  ratio ork / xargs\t%.2f\n", b.Ratio)
	}
	fmt.Fprintf(tw, "\nLATENCY (ms)\tsamples\tp50\tp95\tp99\tmax\n")
	row := func(name string, p *Percentiles) {
		if p == nil {
			fmt.Fprintf(tw, "  %s\tn/a\n", name)
			return
		}
		fmt.Fprintf(tw, "  %s\t%s\n", name, strings.Join(pct(p), "\t"))
	}
	l := r.Latency
	row("created -> dispatched", l.CreatedToDispatched)
	row("run created -> task dispatched", l.RunCreatedToDispatched)
	row("dispatched -> running", l.DispatchedToRunning)
	row("finished -> recorded", l.FinishedToRecorded)
	row("trigger -> first start (same handle)", l.TriggerToFirstStart)
	row("trigger -> first start (other handle)", l.TriggerToFirstStartOtherDB)
	row("DAG hop", l.DAGHop)
	fmt.Fprintf(tw, "\nRESOURCES\n")
	fmt.Fprintf(tw, "  peak RSS\t%s\t(%s)\n", mb(r.Resources.PeakRSSBytes), r.Resources.PeakRSSNote)
	c := r.Resources.SchedulerCPU
	note := ""
	if r.Resources.SchedulerCPUNote != "" {
		note = "; " + r.Resources.SchedulerCPUNote
	}
	fmt.Fprintf(tw, "  CPU, scheduler process\t%.3f s\t(user %.3f + sys %.3f; %.1f%% of a core%s)\n", c.Total(), c.User, c.Sys, r.Resources.SchedulerCPUPercent, note)
	if cc := r.Resources.ChildrenCPU; cc != nil {
		fmt.Fprintf(tw, "  CPU, task processes\t%.3f s\t(user %.3f + sys %.3f)\n", cc.Total(), cc.User, cc.Sys)
	}
	if b := r.Baseline; b != nil {
		fmt.Fprintf(tw, "  CPU, xargs and its processes\t%.3f s\t(user %.3f + sys %.3f)\n", b.ChildrenCPU.Total(), b.ChildrenCPU.User, b.ChildrenCPU.Sys)
	}
	if st := r.Status; st != nil {
		fmt.Fprintf(tw, "\nSTATUS (what `ork status` reads, in a process of its own)\n")
		fmt.Fprintf(tw, "  ork status RUN (%d tasks)\t%.3f s\n", st.RunTasks, st.RunSeconds)
		if st.MidRunDone > 0 {
			fmt.Fprintf(tw, "  ork status RUN, mid-run (%d done)\t%.3f s\n", st.MidRunDone, st.MidRunSeconds)
		}
		fmt.Fprintf(tw, "  ork status (%d runs)\t%.3f s\n", st.Runs, st.ListRunsSeconds)
	}
	if c := r.CloudRun; c != nil {
		fmt.Fprintf(tw, "\nCLOUD RUN (fake service; job projects/%s/locations/%s/jobs/%s)\n", c.Project, c.Region, c.Job)
		fmt.Fprintf(tw, "  poll interval\t%s\t(GET latency added by the fake: %s)\n", time.Duration(c.PollInterval), time.Duration(c.GetLatency))
		fmt.Fprintf(tw, "  executions started\t%d\n", c.Executions)
		fmt.Fprintf(tw, "  status checks (GET of an execution)\t%d\t(the executor counted %d)\n", c.StatusChecks, c.ExecutorStatusChecks)
		fmt.Fprintf(tw, "  status checks/s\t%.1f\n", c.StatusChecksPerSec)
		fmt.Fprintf(tw, "  status checks per task\t%.2f\n", c.StatusChecksPerTask)
		fmt.Fprintf(tw, "  most status checks in flight\t%d\n", c.MaxGetsInFlight)
		fmt.Fprintf(tw, "  access tokens granted\t%d\n", c.TokenGrants)
	}
	if i := r.Idle; i != nil {
		fmt.Fprintf(tw, "\nIDLE (restarted scheduler)\n")
		fmt.Fprintf(tw, "  finished runs on disk\t%d\n", i.FinishedRuns)
		fmt.Fprintf(tw, "  CPU over %.1f s\t%.3f s\t(user %.3f + sys %.3f) = %.2f%% of a core\n", i.Seconds, i.CPU.Total(), i.CPU.User, i.CPU.Sys, i.CPUPercentOfACore)
		fmt.Fprintf(tw, "  RSS while idle\t%s\n", mb(i.RSSBytes))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Targets) > 0 {
		tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "\nTARGET\tGOAL\tVALUE\tMET\n")
		for _, t := range r.Targets {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", t.Name, t.Goal, t.Value, yesNo(t.Met))
		}
		return tw.Flush()
	}
	return nil
}

// WriteMarkdown prints several results as Markdown tables, for
// docs/PERFORMANCE.md.
func WriteMarkdown(out io.Writer, rs []*Result) error {
	var b strings.Builder
	f3 := func(v float64) string { return fmt.Sprintf("%.3f", v) }
	p50 := func(p *Percentiles) string {
		if p == nil {
			return "n/a"
		}
		return fmt.Sprintf("%.2f / %.2f / %.2f / %.2f", p.P50, p.P95, p.P99, p.Max)
	}
	b.WriteString("| workload | executor | runs x tasks | total (s) | runs/s | tasks/s | xargs (s) | ork / xargs | peak RSS | scheduler CPU (s) | task CPU (s) | load avg at start |\n")
	b.WriteString("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range rs {
		w := r.Workload
		shape := fmt.Sprintf("%d x %d", w.Runs, w.RunTasks)
		if w.DAGDepth > 0 {
			shape += fmt.Sprintf(" (chain of %d)", w.DAGDepth)
		}
		if time.Duration(w.TaskDuration) > 0 {
			shape += ", " + time.Duration(w.TaskDuration).String()
		}
		if w.Trigger == TriggerSpaced {
			shape += ", spaced"
		}
		if w.BackgroundMBps > 0 {
			shape += fmt.Sprintf(", writer %d MB/s", w.BackgroundMBps)
		}
		xs, ratio, child := "", "", ""
		if bl := r.Baseline; bl != nil {
			xs, ratio = f3(bl.Seconds), fmt.Sprintf("%.2f", bl.Ratio)
		}
		if c := r.Resources.ChildrenCPU; c != nil {
			child = fmt.Sprintf("%.2f", c.Total())
		}
		load, _, _ := strings.Cut(r.Machine.LoadAvg, " ")
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %.1f | %.0f | %s | %s | %s | %.2f | %s | %s |\n",
			r.Config, w.Executor, shape, f3(r.TotalSeconds), r.RunsPerSec, r.TasksPerSec, xs, ratio,
			mb(r.Resources.PeakRSSBytes), r.Resources.SchedulerCPU.Total(), child, load)
	}
	b.WriteString("\nLatencies in milliseconds, p50 / p95 / p99 / max:\n\n")
	b.WriteString("| workload | created → dispatched | dispatched → running | finished → recorded | trigger → first start (same handle) | trigger → first start (other handle, fsnotify) | DAG hop |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range rs {
		l := r.Latency
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", r.Config, p50(l.CreatedToDispatched), p50(l.DispatchedToRunning),
			p50(l.FinishedToRecorded), p50(l.TriggerToFirstStart), p50(l.TriggerToFirstStartOtherDB), p50(l.DAGHop))
	}
	var extra []string
	for _, r := range rs {
		if p := r.Pace; p != nil && r.Workload.Tasks >= scaleTasks {
			extra = append(extra, fmt.Sprintf("| %s | pace, first 10%% → last 10%% of tasks | %.0f → %.0f tasks/s (%.2f) |", r.Config, p.FirstTasksPerSec, p.LastTasksPerSec, p.Ratio))
		}
		if s := r.Status; s != nil && r.Workload.RunTasks >= 10000 {
			extra = append(extra, fmt.Sprintf("| %s | `ork status RUN` (%d tasks), fresh handle | %.3f s |", r.Config, s.RunTasks, s.RunSeconds))
			if s.MidRunDone > 0 {
				extra = append(extra, fmt.Sprintf("| %s | `ork status RUN` mid-run (%d done) | %.3f s |", r.Config, s.MidRunDone, s.MidRunSeconds))
			}
			extra = append(extra, fmt.Sprintf("| %s | `ork status` (%d runs) | %.3f s |", r.Config, s.Runs, s.ListRunsSeconds))
		}
		if i := r.Idle; i != nil {
			extra = append(extra, fmt.Sprintf("| %s | idle scheduler, %d finished runs, %.0f s | %.2f%% of a core (%.3f s CPU), RSS %s |", r.Config, i.FinishedRuns, i.Seconds, i.CPUPercentOfACore, i.CPU.Total(), mb(i.RSSBytes)))
		}
	}
	if len(extra) > 0 {
		b.WriteString("\n| workload | measure | value |\n| --- | --- | --- |\n")
		b.WriteString(strings.Join(extra, "\n"))
		b.WriteString("\n")
	}
	b.WriteString("\nTargets:\n\n| target | goal | workload | value | met |\n| --- | --- | --- | --- | --- |\n")
	for _, r := range rs {
		for _, t := range r.Targets {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", t.Name, t.Goal, r.Config, t.Value, yesNo(t.Met))
		}
	}
	_, err := io.WriteString(out, b.String())
	return err
}
