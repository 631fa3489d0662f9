//go:build linux

// Crash-safety and concurrency tests of the ork CLI: the scheduler killed
// with SIGKILL at random moments and restarted, orphans of a killed
// scheduler, many triggers at once, and create-workflow racing a person
// editing the same file. They use the real binary built by TestMain (see
// e2e_test.go) and Linux's /proc.

package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// refused reports whether the scheduler has exited because it found the
// scheduler lock taken.
func (s *bgScheduler) refused() bool {
	return s.done() && strings.Contains(s.output(), "another scheduler is running")
}

// startAfterCrash starts `ork run args...` and waits until it holds the
// scheduler lock. A scheduler started just after another was killed must
// get the lock (the kernel releases an flock when its holder dies, and
// filedb waits a moment for a dead holder's lock): a refusal fails the
// test.
func startAfterCrash(t *testing.T, dir string, args ...string) *bgScheduler {
	t.Helper()
	s := startScheduler(t, dir, args...)
	if !s.lockedOrExited(t) {
		if s.refused() {
			t.Fatalf("ork run (pid %d) was refused the lock just after a crash:\n%s", s.pid(), s.output())
		}
		t.Fatalf("ork run exited early (%v):\n%s", s.err, s.output())
	}
	return s
}

// crashProcGone reports whether process pid has ended; a zombie has.
func crashProcGone(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z' || s[i+2] == 'X'
}

// crashChildren returns the processes whose parent is pid.
func crashChildren(pid int) []int {
	names, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			continue
		}
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 || f[1] != strconv.Itoa(pid) {
			continue
		}
		if child, err := strconv.Atoi(strings.Fields(s)[0]); err == nil {
			out = append(out, child)
		}
	}
	return out
}

// crashReadPid returns the pid a script wrote to p ("<pid>\n"), or 0 if
// there is none yet.
func crashReadPid(p string) int {
	data, err := os.ReadFile(p)
	if err != nil || !strings.HasSuffix(string(data), "\n") {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

// crashEvent is one line of the side-effect file of the kill -9 harness.
type crashEvent struct {
	line    int // 1-based line number in the file
	attempt int
	pid     int
	end     bool // "end", else "start"
	kills   int  // kill markers before this line
}

// crashAttempt and crashTask are the parts of a task record (`ork tasks
// --json`) the harness checks.
type crashAttempt struct {
	Attempt    int        `json:"attempt"`
	Status     string     `json:"status"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	Error      string     `json:"error"`
	Log        string     `json:"log"`
}

type crashTask struct {
	Name      string         `json:"name"`
	TaskIndex int            `json:"task_index"`
	Status    string         `json:"status"`
	Attempt   int            `json:"attempt"`
	Error     string         `json:"error"`
	Attempts  []crashAttempt `json:"attempts"`
}

// crashMode says how the harness ends each scheduler.
type crashMode int

const (
	// kill9Mode: SIGKILL at a random moment.
	kill9Mode crashMode = iota
	// stopThenKillMode: SIGTERM, then SIGKILL a moment later, while the
	// stopping scheduler waits (default grace 10s) for its running tasks.
	// A scheduler that finished stopping before the SIGKILL exited 0.
	stopThenKillMode
)

// TestCrashKill9Harness runs a workflow of 300 tasks of 30 ms under `ork
// run` with the default settings, and kills the scheduler with SIGKILL at
// random moments, restarting it each time, at least 10 times while the run
// is unfinished. The run must succeed with no task failed: see
// crashHarness for everything it checks.
//
// The seed of the random moments is logged; ORK_CRASH_SEED=<seed> replays
// the same schedule of kills (the moments only: the machine's timing is
// not replayed).
func TestCrashKill9Harness(t *testing.T) {
	if testing.Short() {
		t.Skip("the kill -9 harness takes seconds")
	}
	crashHarness(t, kill9Mode, 300, 10)
}

// TestCrashStopThenKillHarness is the harness with a graceful stop before
// each kill: SIGTERM, then SIGKILL while the scheduler waits for its
// running tasks. The tasks it had dispatched but not started went back to
// the queue with no attempt counted; the running ones are interrupted by
// the kill.
func TestCrashStopThenKillHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("the kill -9 harness takes seconds")
	}
	crashHarness(t, stopThenKillMode, 300, 8)
}

// crashHarness runs a workflow of n tasks of 30 ms under `ork run` with no
// flags (the defaults a user gets), ending the scheduler as mode says at
// random moments and restarting it each time, until the run is over and
// at least minKills kills landed while it was unfinished. Then it checks:
//   - every restart got the scheduler lock at once (none refused);
//   - the run succeeded, every task succeeded, none failed;
//   - each task's attempts on record are its success and, before it,
//     attempts "interrupted" by a dying scheduler, each of which began (its
//     log exists: no attempt is charged for a task that was only dispatched
//     ahead) and each blamed on a different kill that fell while it ran —
//     so a task's recorded attempts never exceed 1 + the kills that fell
//     while it ran;
//   - by the side effects of the scripts, written to a file: every attempt
//     that started was counted, attempts started in order, each once, no
//     two ran at once, and no script outlived its scheduler (the harness
//     writes a marker line into that file after each kill);
//   - every JSON file parses, no temporary file is left, ork doctor is
//     content.
func crashHarness(t *testing.T, mode crashMode, tasks, minKills int) {
	const (
		killBudget = 40 * time.Second // stop killing after this, and let the last scheduler finish
		finishIn   = 30 * time.Second
	)
	began := time.Now()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("ORK_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("ORK_CRASH_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (ORK_CRASH_SEED=%d replays the kill schedule)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	dir := newProject(t)
	side := filepath.Join(dir, "side-effects.txt")
	// Each line is one short append, which O_APPEND makes atomic: lines of
	// tasks running at once never mix.
	writeScript(t, dir, "side.sh", fmt.Sprintf(`#!/bin/sh
echo "$ORK_TASK_INDEX $ORK_ATTEMPT $$ start" >> %[1]s
sleep 0.03
echo "$ORK_TASK_INDEX $ORK_ATTEMPT $$ end" >> %[1]s
`, side))
	mustRun(t, dir, "create-workflow", "--name", "crash", "--job-name", "side.sh", "--task-count", strconv.Itoa(tasks))
	out, _ := mustRun(t, dir, "trigger", "crash")
	id := runID(t, out)

	var scheds []*bgScheduler
	t.Cleanup(func() {
		if t.Failed() {
			for i, s := range scheds {
				t.Logf("ork run #%d:\n%s", i+1, s.output())
			}
		}
	})
	start := func() *bgScheduler {
		p := startAfterCrash(t, dir)
		scheds = append(scheds, p)
		return p
	}
	finished := func() bool {
		st := runStatus(t, dir, id).Status
		return st == "success" || st == "failed" || st == "cancelled"
	}

	p := start()
	var killedAt []time.Time // when each kill had taken effect
	midRun, stoppedClean := 0, 0
	for len(killedAt) < minKills && time.Since(began) < killBudget {
		// Each scheduler dies at a random moment of its progress: after
		// 5 to 25 tasks have ended under it. (A moment drawn in units of
		// progress rather than of time lands as often in mid-run on a
		// loaded machine as on an idle one.)
		// The side-effect file is watched closely (every 2ms); the run's
		// status, which costs a command, only once every task has ended
		// at least once.
		target, _ := crashEnds(side)
		target += 5 + rng.IntN(21)
		over := false
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(2 * time.Millisecond) {
			if p.done() {
				t.Fatalf("ork run exited (%v):\n%s", p.err, p.output())
			}
			n, distinct := crashEnds(side)
			if n >= target {
				break
			}
			if distinct >= tasks && finished() {
				over = true
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %d task ends in 30s under ork run #%d:\n%s", target-n, len(scheds), p.output())
			}
		}
		if over {
			break
		}
		time.Sleep(time.Duration(rng.IntN(21)) * time.Millisecond)
		if mode == stopThenKillMode {
			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatalf("SIGTERM to ork run: %v", err)
			}
			time.Sleep(time.Duration(5+rng.IntN(36)) * time.Millisecond)
			if p.done() {
				// It finished stopping first: a clean stop, exit 0.
				if p.err != nil {
					t.Fatalf("ork run after SIGTERM: %v\n%s", p.err, p.output())
				}
				stoppedClean++
				p = start()
				continue
			}
		}
		if mode == stopThenKillMode && !p.kill9OrStopped(t) {
			// It finished its clean stop between the look above and the
			// kill: a clean stop after all.
			stoppedClean++
			p = start()
			continue
		}
		if mode != stopThenKillMode {
			p.kill9(t)
		}
		killedAt = append(killedAt, time.Now())
		if !finished() {
			midRun++
		}
		// The scripts of the dead scheduler died with it (parent-death
		// signal): none may write a line after this marker. (The status
		// check above leaves them tens of milliseconds to die.)
		appendLine(t, side, fmt.Sprintf("kill %d", len(killedAt)))
		p = start()
	}
	kills := len(killedAt)
	killPhase := time.Since(began)

	// The last scheduler finishes the run.
	waitFor(t, finishIn, "run "+id+" to end under the last scheduler", func() bool {
		if p.done() {
			t.Fatalf("the last ork run exited (%v):\n%s", p.err, p.output())
		}
		return finished()
	})
	p.stop(t)

	if midRun < minKills {
		t.Errorf("only %d of %d kills landed while the run was unfinished, want at least %d", midRun, kills, minKills)
	}
	if r := runStatus(t, dir, id); r.Status != "success" {
		t.Errorf("run %s: status %q (error %q), want success", id, r.Status, r.Error)
	}
	tout, _ := mustRun(t, dir, "tasks", id, "--json")
	var ts []crashTask
	decodeJSON(t, "tasks --json", tout, &ts)
	if len(ts) != tasks {
		t.Fatalf("run %s has %d tasks, want %d", id, len(ts), tasks)
	}
	recorded := make(map[int]crashTask, tasks)
	interruptedN, maxAttempt := 0, 0
	hist := map[int]int{} // tasks by number of interruptions
	for _, tk := range ts {
		if _, dup := recorded[tk.TaskIndex]; dup {
			t.Errorf("task index %d listed twice", tk.TaskIndex)
		}
		recorded[tk.TaskIndex] = tk
		maxAttempt = max(maxAttempt, tk.Attempt)
		checkCrashAttempts(t, dir, id, tk, killedAt)
		interruptedN += max(len(tk.Attempts)-1, 0)
		hist[max(len(tk.Attempts)-1, 0)]++
	}

	// The side effects, task by task, in file order.
	events, markers := readCrashEvents(t, side)
	if markers != kills {
		t.Errorf("%d kill markers in %s, want %d", markers, side, kills)
	}
	ranTwice := 0
	for i := range tasks {
		tk, ok := recorded[i]
		if !ok {
			t.Errorf("task %d: no record", i)
			continue
		}
		evs := events[i]
		var starts []crashEvent
		for _, ev := range evs {
			if !ev.end {
				starts = append(starts, ev)
			}
		}
		if len(starts) == 0 {
			t.Errorf("task %d: its script never started (no start line in %s)", i, side)
			continue
		}
		if len(starts) > 1 {
			ranTwice++
		}
		// Every attempt that started was counted before it started, and
		// attempts start in the order of their numbers, each once.
		distinct := make(map[int]bool)
		prev := 0
		for _, s := range starts {
			distinct[s.attempt] = true
			if s.attempt > tk.Attempt {
				t.Errorf("task %d: attempt %d started (line %d), but attempt %d is recorded", i, s.attempt, s.line, tk.Attempt)
			}
			if s.attempt <= prev {
				t.Errorf("task %d: attempt %d started at line %d, after attempt %d had started: attempts out of order or started twice", i, s.attempt, s.line, prev)
			}
			prev = max(prev, s.attempt)
		}
		if len(distinct) > tk.Attempt {
			t.Errorf("task %d: %d distinct attempts started, but attempt %d is recorded", i, len(distinct), tk.Attempt)
		}
		// The recorded attempt is the one that succeeded, so it ran to
		// its end; and no attempt ended after a later one had started (a
		// witness that two ran at once).
		// Nor did an attempt end after its scheduler was killed (the
		// script outlived it, and could have run beside the retry).
		endedRecorded := false
		latestStart := 0
		startedAt := make(map[int]crashEvent)
		for _, ev := range evs {
			if !ev.end {
				latestStart = max(latestStart, ev.attempt)
				startedAt[ev.attempt] = ev
				continue
			}
			if ev.attempt == tk.Attempt {
				endedRecorded = true
			}
			if ev.attempt < latestStart {
				t.Errorf("task %d: attempt %d (pid %d) ended at line %d, after attempt %d had started: two attempts ran at once", i, ev.attempt, ev.pid, ev.line, latestStart)
			}
			if s, ok := startedAt[ev.attempt]; ok && s.kills != ev.kills {
				t.Errorf("task %d: attempt %d (pid %d) started at line %d before kill %d and ended at line %d after it: the script outlived its scheduler", i, ev.attempt, ev.pid, s.line, s.kills+1, ev.line)
			}
		}
		if !endedRecorded {
			t.Errorf("task %d: success of attempt %d recorded, but no end line of that attempt", i, tk.Attempt)
		}
	}
	for i := range events {
		if i < 0 || i >= tasks {
			t.Errorf("side effects of a task index %d that does not exist", i)
		}
	}

	checkCrashDir(t, dir)
	if out, stderr, code := run(t, dir, "doctor"); code != 0 {
		t.Errorf("ork doctor: exit %d\n%s%s", code, out, stderr)
	}
	t.Logf("%d tasks, %d kills (%d during the run), %d clean stops, in %v; %d attempts interrupted (tasks by interruptions: %v), %d tasks ran more than once, max attempt %d; total %v",
		tasks, kills, midRun, stoppedClean, killPhase.Round(time.Millisecond), interruptedN, hist, ranTwice, maxAttempt, time.Since(began).Round(time.Millisecond))
}

// crashEnds counts the end lines in the side-effect file p, and the tasks
// that have one.
func crashEnds(p string) (ends, tasks int) {
	data, _ := os.ReadFile(p)
	seen := make(map[string]bool)
	for _, line := range bytes.Split(data, []byte("\n")) {
		if idx, ok := bytes.CutSuffix(line, []byte(" end")); ok {
			ends++
			if i := bytes.IndexByte(idx, ' '); i > 0 {
				seen[string(idx[:i])] = true
			}
		}
	}
	return ends, len(seen)
}

// checkCrashAttempts checks the attempts on record of one task of the
// harness (see crashHarness); killedAt are the moments of the kills.
func checkCrashAttempts(t *testing.T, dir, runID string, tk crashTask, killedAt []time.Time) {
	t.Helper()
	if tk.Status != "success" {
		t.Errorf("task %d: status %q (attempt %d, error %q), want success", tk.TaskIndex, tk.Status, tk.Attempt, tk.Error)
		return
	}
	n := len(tk.Attempts)
	if n == 0 || n != tk.Attempt {
		t.Errorf("task %d: attempt %d with %d attempts on record, want one record per attempt", tk.TaskIndex, tk.Attempt, n)
		return
	}
	if n >= 4 {
		var b strings.Builder
		for _, a := range tk.Attempts {
			st := "-"
			if a.StartedAt != nil {
				st = a.StartedAt.Format("05.000")
			}
			fmt.Fprintf(&b, " [%d %s start %s end %s]", a.Attempt, a.Status, st, a.FinishedAt.Format("05.000"))
		}
		var ks []string
		for _, k := range killedAt {
			ks = append(ks, k.Format("05.000"))
		}
		t.Logf("task %d: %d attempts:%s; kills at %v", tk.TaskIndex, n, b.String(), ks)
	}
	lastKill := -1 // the kill blamed for the previous interrupted attempt
	var prevEnd *time.Time
	for i, a := range tk.Attempts {
		if a.Attempt != i+1 {
			t.Errorf("task %d: attempt record %d is attempt %d", tk.TaskIndex, i, a.Attempt)
		}
		if i == n-1 {
			if a.Status != "success" {
				t.Errorf("task %d: last attempt %+v, want success", tk.TaskIndex, a)
			}
			break
		}
		if a.Status != "interrupted" || !strings.HasPrefix(a.Error, "scheduler died") || a.FinishedAt == nil {
			t.Errorf("task %d: attempt %+v, want interrupted: scheduler died", tk.TaskIndex, a)
			continue
		}
		// It began: its log was created before its process started.
		logPath := filepath.Join(dir, ".ork", "logs", runID, fmt.Sprintf("side.sh.%d.%d.log", tk.TaskIndex, a.Attempt))
		if _, err := os.Stat(logPath); err != nil {
			t.Errorf("task %d: attempt %d recorded interrupted, but it never began (%v): a task dispatched ahead was charged an attempt", tk.TaskIndex, a.Attempt, err)
		}
		// The kill that interrupted it: the last before its end was
		// recorded (by the next scheduler's recovery).
		k := -1
		for j, at := range killedAt {
			if at.Before(*a.FinishedAt) {
				k = j
			}
		}
		switch {
		case k < 0:
			t.Errorf("task %d: attempt %d recorded interrupted at %s, before any kill", tk.TaskIndex, a.Attempt, a.FinishedAt.Format(time.RFC3339Nano))
		case k <= lastKill:
			t.Errorf("task %d: attempts interrupted twice by kill %d: more attempts than kills that fell while it ran", tk.TaskIndex, k+1)
		case a.StartedAt != nil && !a.StartedAt.Before(killedAt[k]):
			t.Errorf("task %d: attempt %d started at %s, after kill %d that it is blamed on", tk.TaskIndex, a.Attempt, a.StartedAt.Format(time.RFC3339Nano), k+1)
		case prevEnd != nil && !prevEnd.Before(killedAt[k]):
			t.Errorf("task %d: attempt %d blamed on kill %d, which fell before its previous attempt ended", tk.TaskIndex, a.Attempt, k+1)
		}
		lastKill = max(lastKill, k)
		prevEnd = a.FinishedAt
	}
}

// appendLine appends line to file p, in one write.
func appendLine(t *testing.T, p, line string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(line + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

// readCrashEvents parses the side-effect file: "<index> <attempt> <pid>
// start|end" lines, grouped by task index in file order, and "kill <n>"
// markers, which it counts.
func readCrashEvents(t *testing.T, p string) (events map[int][]crashEvent, kills int) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatalf("side effects: %v", err)
	}
	defer f.Close()
	out := make(map[int][]crashEvent)
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		fs := strings.Fields(sc.Text())
		if len(fs) == 2 && fs[0] == "kill" {
			kills++
			if fs[1] != strconv.Itoa(kills) {
				t.Errorf("%s:%d: %q, want kill %d", p, n, sc.Text(), kills)
			}
			continue
		}
		if len(fs) != 4 || (fs[3] != "start" && fs[3] != "end") {
			t.Errorf("%s:%d: %q is not \"INDEX ATTEMPT PID start|end\"", p, n, sc.Text())
			continue
		}
		idx, err1 := strconv.Atoi(fs[0])
		att, err2 := strconv.Atoi(fs[1])
		pid, err3 := strconv.Atoi(fs[2])
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Errorf("%s:%d: %q: %v", p, n, sc.Text(), err)
			continue
		}
		out[idx] = append(out[idx], crashEvent{line: n, attempt: att, pid: pid, end: fs[3] == "end", kills: kills})
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("side effects: %v", err)
	}
	return out, kills
}

// checkCrashDir checks that every JSON file under .ork (logs aside) parses
// and that no temporary file is left anywhere under .ork.
func checkCrashDir(t *testing.T, dir string) {
	t.Helper()
	root := filepath.Join(dir, ".ork")
	logs := filepath.Join(root, "logs")
	files := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", p)
		}
		if d.IsDir() || p == logs || strings.HasPrefix(p, logs+string(filepath.Separator)) || !strings.HasSuffix(p, ".json") {
			return nil
		}
		files++
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Errorf("%s does not parse as a JSON object: %v\n%s", p, err, data)
		}
		return nil
	})
	if err != nil {
		t.Errorf("walk %s: %v", root, err)
	}
	if files == 0 {
		t.Errorf("no JSON file under %s", root)
	}
}

// TestCrashNoOrphansAfterKill kills the scheduler while a task's script
// waits for a child (sleep 30) and has started another in a session of its
// own (setsid sleep 30). The parent-death signal kills the script; the
// sleeps survive, reparented. The next scheduler must kill both at
// start-up (Sweep: they carry the id of a task recorded as unfinished)
// before it retries the task, so that the task's first attempt does not go
// on beside the second.
func TestCrashNoOrphansAfterKill(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	pids := filepath.Join(dir, "pids")
	if err := os.Mkdir(pids, 0o755); err != nil {
		t.Fatal(err)
	}
	writeScript(t, dir, "orphan.sh", fmt.Sprintf(`#!/bin/sh
echo $$ > %[1]s/script.$ORK_ATTEMPT.pid
if [ "$ORK_ATTEMPT" = 1 ]; then
	setsid sleep 30 &
	echo $! > %[1]s/setsid.pid
	sleep 30
fi
echo "attempt $ORK_ATTEMPT done"
`, pids))
	mustRun(t, dir, "create-workflow", "--name", "orphan", "--job-name", "orphan.sh")

	first := startSchedulerLocked(t, dir)
	out, _ := mustRun(t, dir, "trigger", "orphan")
	id := runID(t, out)

	var script, sleep int
	waitFor(t, 10*time.Second, "the task to run with its sleep", func() bool {
		if ts := runTasks(t, dir, id); len(ts) != 1 || ts[0].Status != "running" {
			return false
		}
		if script = crashReadPid(filepath.Join(pids, "script.1.pid")); script == 0 {
			return false
		}
		for _, c := range crashChildren(script) {
			if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", c)); strings.TrimSpace(string(comm)) == "sleep" {
				sleep = c
				return true
			}
		}
		return false
	})
	t.Cleanup(func() { syscall.Kill(sleep, syscall.SIGKILL) })

	first.kill9(t)
	waitFor(t, 5*time.Second, "the parent-death signal to kill the script", func() bool { return crashProcGone(script) })
	if crashProcGone(sleep) {
		t.Fatalf("the sleep %d died with the scheduler: this test no longer tests anything", sleep)
	}

	began := time.Now()
	second := startAfterCrash(t, dir)
	deadline := began.Add(5 * time.Second)
	for !crashProcGone(sleep) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !crashProcGone(sleep) {
		t.Errorf("the sleep %d left by the killed scheduler still runs 5s after a new `ork run` started: it does not sweep leftovers at start-up\nork run:\n%s",
			sleep, second.output())
	}
	if detached := crashReadPid(filepath.Join(pids, "setsid.pid")); detached == 0 {
		t.Errorf("the script wrote no pid for its setsid child")
	} else {
		t.Cleanup(func() { syscall.Kill(detached, syscall.SIGKILL) })
		if !crashProcGone(detached) {
			t.Errorf("the setsid sleep %d left by the killed scheduler still runs after the new `ork run` swept", detached)
		}
	}

	waitFor(t, 20*time.Second, "run "+id+" to end", func() bool {
		st := runStatus(t, dir, id).Status
		return st == "success" || st == "failed" || st == "cancelled"
	})
	if r := runStatus(t, dir, id); r.Status != "success" {
		t.Errorf("run %s: %q (error %q), want success", id, r.Status, r.Error)
	}
	if ts := runTasks(t, dir, id); len(ts) != 1 || ts[0].Status != "success" || ts[0].Attempt != 2 {
		t.Errorf("tasks of %s: %+v, want one, success in attempt 2", id, ts)
	}
	if crashReadPid(filepath.Join(pids, "script.2.pid")) == 0 {
		t.Errorf("attempt 2 did not run")
	}
	second.stop(t)
	if t.Failed() {
		t.Logf("first ork run:\n%s\nsecond ork run:\n%s", first.output(), second.output())
	}
}

// TestConcurrentTriggers starts 50 `ork trigger` processes at once while
// a scheduler runs: each makes its own run, and all 50 complete.
func TestConcurrentTriggers(t *testing.T) {
	t.Parallel()
	const n = 50
	dir := newHelloProject(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sched := startSchedulerLocked(t, dir)

	cmds := make([]*osexec.Cmd, n)
	outs := make([]*syncBuffer, n)
	for i := range cmds {
		outs[i] = &syncBuffer{}
		cmds[i] = orkCmd(ctx, dir, "trigger", "hello")
		cmds[i].Stdout, cmds[i].Stderr = outs[i], outs[i]
	}
	began := time.Now()
	for i, c := range cmds {
		if err := c.Start(); err != nil {
			t.Fatalf("start trigger %d: %v", i, err)
		}
	}
	ids := make(map[string]bool, n)
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("trigger %d: %v\n%s", i, err, outs[i].String())
			continue
		}
		// The run id is the last line of stdout; stderr is empty with a
		// scheduler running, but be lenient about it.
		var id string
		for _, l := range nonEmptyLines(outs[i].String()) {
			if uuidRE.MatchString(strings.TrimSpace(l)) {
				id = strings.TrimSpace(l)
			}
		}
		if id == "" {
			t.Errorf("trigger %d printed no run id:\n%s", i, outs[i].String())
			continue
		}
		if ids[id] {
			t.Errorf("run id %s printed by two triggers", id)
		}
		ids[id] = true
	}
	triggered := time.Since(began)
	if t.Failed() {
		t.FailNow()
	}

	var runs []jsonRun
	list := func() {
		out, _ := mustRun(t, dir, "status", "--json", "--limit", "0")
		runs = nil
		decodeJSON(t, "status --json --limit 0", out, &runs)
	}
	waitFor(t, 60*time.Second, "50 runs to succeed", func() bool {
		list()
		ok := 0
		for _, r := range runs {
			if r.Status == "failed" || r.Status == "cancelled" {
				t.Fatalf("run %s: %+v\nork run:\n%s", r.ID, r, sched.output())
			}
			if r.Status == "success" {
				ok++
			}
		}
		return ok >= n
	})
	list()
	listed := make(map[string]bool)
	for _, r := range runs {
		if !ids[r.ID] {
			t.Errorf("status lists run %s, which no trigger printed", r.ID)
		}
		if listed[r.ID] {
			t.Errorf("status lists run %s twice", r.ID)
		}
		listed[r.ID] = true
		if r.Status != "success" {
			t.Errorf("run %s: %q, want success", r.ID, r.Status)
		}
	}
	if len(runs) != n {
		t.Errorf("status lists %d runs, want %d", len(runs), n)
	}
	sched.stop(t)
	t.Logf("%d triggers at once in %v; all runs done in %v", n, triggered.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

// TestCreateWorkflowRacesHandEdit races `ork create-workflow --name race`
// against a person's editor rewriting .ork/workflows/race.json in place
// (as os.WriteFile does: truncate, then write), and someone deleting it now
// and then.
//
// What it proves:
//   - create-workflow never replaces a file that exists (no-clobber): while
//     nobody deletes the file, every create fails with "already exists" and
//     the file keeps its inode (a replacement would change it);
//   - racing edits and deletions, each create either succeeds or fails with
//     "already exists", nothing else;
//   - ork never shows a torn file: racing deletions with no editor, every
//     read of the file is a complete workflow written by ork;
//   - once everything stops, the file, if present, is one complete version
//     (ork's or the editor's), and ork left no temporary file.
//
// What it does not check: reads while the editor writes. A reader can catch
// an in-place write half-way, or even read the start of one version and the
// end of another; that is the editor's doing, and such reads are only
// counted. Nor does it check that no hand edit is lost: an edit written to
// a file that was deleted is lost by the editor's way of writing, not ork's.
func TestCreateWorkflowRacesHandEdit(t *testing.T) {
	t.Parallel()
	dir := newHelloProject(t)
	path := filepath.Join(dir, ".ork", "workflows", "race.json")
	const handHead = `{"job_name": "hello.sh", "description": "hand `
	hand := func(i int) []byte {
		// Growing: the later versions take longer to write.
		return fmt.Appendf(nil, "%s%d %s\"}\n", handHead, i, strings.Repeat("x", 50*i))
	}
	xs := regexp.MustCompile(`x{8,}`)
	short := func(data []byte) string {
		return fmt.Sprintf("%q (%d bytes)", xs.ReplaceAllString(string(data), "xxx…"), len(data))
	}
	// kind tells what one read of the file is: "ork" (a complete workflow
	// written by create-workflow), "hand" (exactly one version the editor
	// wrote) or "other".
	kind := func(data []byte) string {
		if rest, ok := bytes.CutPrefix(data, []byte(handHead)); ok {
			num, _, _ := bytes.Cut(rest, []byte(" "))
			if i, err := strconv.Atoi(string(num)); err == nil && bytes.Equal(data, hand(i)) {
				return "hand"
			}
			return "other"
		}
		var w struct {
			ID          string `json:"id"`
			Name        string `json:"name"`
			JobName     string `json:"job_name"`
			Description string `json:"description"`
			CreatedAt   string `json:"created_at"`
		}
		if json.Unmarshal(data, &w) == nil && w.ID != "" && w.Name == "race" && w.JobName == "hello.sh" &&
			strings.HasPrefix(w.Description, "ork-") && w.CreatedAt != "" {
			return "ork"
		}
		return "other"
	}
	create := func(i int) (ok bool, msg string) {
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		defer cancel()
		var out syncBuffer
		cmd := orkCmd(ctx, dir, "create-workflow", "--name", "race", "--job-name", "hello.sh", "--description", fmt.Sprintf("ork-%d", i))
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if err == nil {
			return true, ""
		}
		if strings.Contains(out.String(), "already exists") {
			return false, ""
		}
		return false, fmt.Sprintf("create-workflow ork-%d: %v: %s", i, err, out.String())
	}

	// race runs two creators until they have tried creates times, beside
	// an editor, a deleter (each if asked) and a reader. With strict, every
	// read must be a complete workflow of ork's. It returns how many
	// creates succeeded and what the reader saw.
	var handN atomic.Int64
	race := func(creates int, editing, deleting, strict bool) (created int, seen map[string]int) {
		stop := make(chan struct{})
		var bg sync.WaitGroup
		var rngMu sync.Mutex
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
		pause := func(maxMicros int) {
			rngMu.Lock()
			d := time.Duration(rng.IntN(maxMicros)) * time.Microsecond
			rngMu.Unlock()
			time.Sleep(d)
		}
		stopped := func() bool {
			select {
			case <-stop:
				return true
			default:
				return false
			}
		}
		if editing {
			bg.Go(func() { // in place, as os.WriteFile does
				for !stopped() {
					if err := os.WriteFile(path, hand(int(handN.Add(1))), 0o644); err != nil {
						t.Errorf("editor: %v", err)
						return
					}
					pause(3000)
				}
			})
		}
		if deleting {
			bg.Go(func() {
				for !stopped() {
					pause(8000)
					if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("delete: %v", err)
					}
				}
			})
		}
		seen = make(map[string]int)
		bg.Go(func() {
			for !stopped() {
				data, err := os.ReadFile(path)
				if err == nil {
					k := kind(data)
					seen[k]++
					if strict && k != "ork" {
						t.Errorf("read while only ork writes: not a complete workflow: %s", short(data))
					}
				}
				pause(500)
			}
		})
		var creators sync.WaitGroup
		var ok, next atomic.Int64
		for range 2 {
			creators.Go(func() {
				for {
					i := int(next.Add(1))
					if i > creates {
						return
					}
					c, msg := create(i)
					if msg != "" {
						t.Error(msg)
					}
					if c {
						ok.Add(1)
					}
				}
			})
		}
		creators.Wait()
		close(stop)
		bg.Wait()
		return int(ok.Load()), seen
	}

	// Without deletions the file always exists: no create may succeed,
	// and the file is the editor's inode throughout.
	if err := os.WriteFile(path, hand(0), 0o644); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := race(50, true, false, false); n != 0 {
		t.Errorf("%d create-workflow succeeded while race.json existed: ork replaced a file", n)
	}
	if after, err := os.Stat(path); err != nil || !os.SameFile(before, after) {
		t.Errorf("race.json was replaced while no one deleted it (stat: %v)", err)
	}

	// Creates, deletions and no editor: every read is whole.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	created, seen := race(50, false, true, true)
	t.Logf("deletions, no editor: %d of 50 creates succeeded; reads: %v", created, seen)

	// Everything at once.
	created, seen = race(150, true, true, false)
	t.Logf("deletions and edits: %d of 150 creates succeeded, %d hand edits in all; reads: %v", created, handN.Load(), seen)

	// All stopped: the file, if present, is one complete version.
	if data, err := os.ReadFile(path); err == nil {
		if k := kind(data); k == "other" {
			t.Errorf("after the race, race.json is neither a whole version of ork's nor of the editor's: %s", short(data))
		}
		mustRun(t, dir, "validate", filepath.Join(".ork", "workflows", "race.json"))
	} else if !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	// And once it is gone, a create succeeds and writes a whole workflow.
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if ok, msg := create(0); !ok {
		if msg == "" {
			msg = "it says the workflow already exists"
		}
		t.Errorf("create-workflow after the file was deleted failed: %s", msg)
	} else if data := readFile(t, path); kind(data) != "ork" {
		t.Errorf("after a lone create, race.json is %s", short(data))
	}
	ents, err := os.ReadDir(filepath.Join(dir, ".ork", "workflows"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("temporary file left in workflows/: %s", e.Name())
		}
	}
}
