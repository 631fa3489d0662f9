package exec

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ork-run/ork/model"
)

// sweepWait bounds how long Sweep looks for leftovers, and then how long it
// waits for the processes it killed to be gone.
const sweepWait = 2 * time.Second

// Sweep kills the processes a dead scheduler's tasks left behind on this
// machine, and returns how many it killed. unfinished are the tasks
// recorded as dispatched or running: only their processes are killed.
//
// The parent-death signal kills a task's script when its scheduler dies,
// but not what the script started: a command run in the background, or the
// one a shell script waits for. Those outlive it, reparented to init, and
// may go on working while a new scheduler retries their task. Every task
// process carries ORK_LOG_DIR and ORK_TASK_ID, and its children inherit
// them; Sweep reads the environment of every process in /proc and sends
// SIGKILL to each whose environment has the entry ORK_LOG_DIR=<this
// executor's log directory>, exactly, and the ORK_TASK_ID of an unfinished
// task. It leaves alone the calling process, the processes this executor
// runs itself (its scripts and their process groups), processes it may not
// read (those of other users), those of other projects, whose log
// directory differs, and those of tasks that ended (a task's processes end
// with it: see ProcessExecutor). /proc shows the environment a process was
// started with: a process started with these variables removed from its
// environment (env -u, env -i) is not found.
//
// A process may fork while it is being killed, so Sweep looks again until
// a pass finds nothing new (within sweepWait), then waits up to sweepWait
// for the killed processes to be gone (a zombie is gone: it runs nothing).
// It returns an error naming those still there after that.
//
// Each process is signalled through a pidfd opened before its environment
// is read a second time, so a process id reused in between is never
// signalled. Where pidfds are missing (Linux before 5.3) kill(2) is used.
//
// A scheduler calls Sweep once at start-up, before it retries the tasks
// that were running, so that no task ever runs twice at the same time.
// Without /proc, Sweep does nothing and returns 0.
func (e *ProcessExecutor) Sweep(ctx context.Context, unfinished []model.TaskWithWorkflow) (int, error) {
	if e.logKey == "" || len(unfinished) == 0 {
		return 0, nil
	}
	if _, err := os.Stat("/proc/self/environ"); err != nil {
		return 0, nil // no procfs: nothing can be found
	}
	entry := []byte("ORK_LOG_DIR=" + e.logKey)
	ids := make(map[string]bool, len(unfinished))
	for _, t := range unfinished {
		if t.Task != nil {
			ids[t.Task.ID] = true
		}
	}
	match := func(env []byte) bool {
		if !bytes.Contains(env, entry) {
			return false
		}
		k, ok := envAttempt(env, entry)
		return ok && ids[k.taskID]
	}
	killed := make(map[int]bool)
	deadline := time.Now().Add(sweepWait)
	for {
		if err := ctx.Err(); err != nil {
			return len(killed), err
		}
		n, err := e.sweepOnce(match, killed)
		if err != nil {
			return len(killed), err
		}
		if n == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(killed) == 0 {
		return 0, nil
	}

	// Wait for them to be gone.
	left := make([]int, 0, len(killed))
	for pid := range killed {
		left = append(left, pid)
	}
	deadline = time.Now().Add(sweepWait)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		left = slices.DeleteFunc(left, procGone)
		if len(left) == 0 {
			return len(killed), nil
		}
		if time.Now().After(deadline) {
			slices.Sort(left)
			return len(killed), fmt.Errorf("sweep: %d of the %d processes killed (ORK_LOG_DIR=%s) are still there %v after SIGKILL: pids %v",
				len(left), len(killed), e.logKey, sweepWait, left)
		}
		select {
		case <-ctx.Done():
			return len(killed), ctx.Err()
		case <-tick.C:
		}
	}
}

// sweepOnce makes one pass over /proc, killing every process whose
// environment match accepts and that is not in killed yet, and adds them to
// killed. It returns how many it added.
func (e *ProcessExecutor) sweepOnce(match func(env []byte) bool, killed map[int]bool) (int, error) {
	// No process of ours starts during the pass (see start).
	e.sweeping.Lock()
	defer e.sweeping.Unlock()
	ours := make(map[int]bool) // the pids and process groups of our scripts
	e.mu.Lock()
	for _, a := range e.byName {
		ours[a.cmd.Process.Pid] = true
	}
	e.mu.Unlock()
	self := os.Getpid()

	d, err := os.Open("/proc")
	if err != nil {
		return 0, fmt.Errorf("sweep: %w", err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return 0, fmt.Errorf("sweep: read /proc: %w", err)
	}
	added := 0
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid <= 0 || pid == self || ours[pid] || killed[pid] {
			continue
		}
		env, err := os.ReadFile("/proc/" + name + "/environ")
		if err != nil || !match(env) {
			continue
		}
		state, pgid, ok := procStat(pid)
		if !ok || state == 'Z' || state == 'X' || ours[pgid] {
			continue
		}
		if killIf(pid, match) {
			killed[pid] = true
			added++
		}
	}
	return added, nil
}

// procStat returns the state and the process group of process pid, from
// /proc/<pid>/stat. ok is false when the process is gone.
func procStat(pid int) (state byte, pgid int, ok bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// "pid (comm) state ppid pgrp ...": comm may hold anything, even
	// parentheses, so the fields start after the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, 0, false
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 3 || len(fields[0]) != 1 {
		return 0, 0, false
	}
	pgid, err = strconv.Atoi(fields[2])
	if err != nil {
		return 0, 0, false
	}
	return fields[0][0], pgid, true
}

// procGone reports whether process pid has ended: it is no more, or it is
// a zombie (it runs nothing; only its parent's wait is missing).
func procGone(pid int) bool {
	state, _, ok := procStat(pid)
	return !ok || state == 'Z' || state == 'X'
}

// killIf sends SIGKILL to process pid if match still accepts its
// environment, and reports whether it did. The process is held by a pidfd
// while its environment is read again: if pid was reused since the first
// look, the pidfd names the process that held it then, and the signal goes
// nowhere.
func killIf(pid int, match func(env []byte) bool) bool {
	fd, _, errno := syscall.Syscall(pidfdOpenTrap(), uintptr(pid), 0, 0)
	if errno == syscall.ESRCH {
		return false // gone already
	}
	if errno != 0 {
		// No pidfds (ENOSYS before Linux 5.3): the environment was read an
		// instant ago, and a reuse of its pid in between is out of reach.
		return syscall.Kill(pid, syscall.SIGKILL) == nil
	}
	defer syscall.Close(int(fd))
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil || !match(env) {
		return false
	}
	_, _, errno = syscall.Syscall6(pidfdSendSignalTrap(), fd, uintptr(syscall.SIGKILL), 0, 0, 0, 0)
	if errno == syscall.ENOSYS {
		return syscall.Kill(pid, syscall.SIGKILL) == nil
	}
	return errno == 0
}

// pidfdSendSignalTrap is the number of the pidfd_send_signal system call.
func pidfdSendSignalTrap() uintptr {
	switch runtime.GOARCH {
	case "mips", "mipsle":
		return 4424
	case "mips64", "mips64le":
		return 5424
	}
	return 424
}
