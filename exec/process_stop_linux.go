//go:build linux

package exec

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// killAttempt sends SIGKILL to every process on this machine that belongs
// to an attempt: those whose environment (as started) carries its log
// directory, task id and attempt. Children that left the process group, or
// that outlived the script, are found too; a process id reused by another
// program is not, since its environment differs.
func killAttempt(logKey, taskID string, attempt int) int {
	want := [][]byte{
		[]byte("ORK_LOG_DIR=" + logKey),
		[]byte("ORK_TASK_ID=" + taskID),
		[]byte("ORK_ATTEMPT=" + strconv.Itoa(attempt)),
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	self := os.Getpid()
	n := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue
		}
		if hasEntries(env, want) && syscall.Kill(pid, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}

// hasEntries reports whether the NUL-separated environment env has every
// entry of want, each exactly.
func hasEntries(env []byte, want [][]byte) bool {
	found := 0
	for _, kv := range bytes.Split(env, []byte{0}) {
		for _, w := range want {
			if bytes.Equal(kv, w) {
				found++
			}
		}
	}
	return found == len(want)
}

// killAttempts sends SIGKILL to every process on this machine whose
// environment carries logKey as its ORK_LOG_DIR and the task id and attempt
// of one of attempts, in one pass over /proc. Like Sweep, it holds each
// process by a pidfd while it reads the environment again, so a process id
// reused meanwhile is never signalled.
func killAttempts(logKey string, attempts map[attemptKey]bool) int {
	if logKey == "" || len(attempts) == 0 {
		return 0
	}
	entry := []byte("ORK_LOG_DIR=" + logKey)
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	self := os.Getpid()
	n := 0
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile("/proc/" + ent.Name() + "/environ")
		if err != nil || !bytes.Contains(env, entry) {
			continue
		}
		k, ok := envAttempt(env, entry)
		if !ok || !attempts[k] {
			continue
		}
		if killIf(pid, func(env []byte) bool {
			k2, ok := envAttempt(env, entry)
			return ok && k2 == k
		}) {
			n++
		}
	}
	return n
}

// envAttempt returns the attempt a process belongs to, from its
// environment: ORK_TASK_ID and ORK_ATTEMPT, if it also has entry (its
// ORK_LOG_DIR) exactly.
func envAttempt(env, entry []byte) (attemptKey, bool) {
	var k attemptKey
	dir, id, att := false, false, false
	for len(env) > 0 {
		var kv []byte
		kv, env, _ = bytes.Cut(env, []byte{0})
		switch {
		case bytes.Equal(kv, entry):
			dir = true
		case bytes.HasPrefix(kv, []byte("ORK_TASK_ID=")):
			k.taskID, id = string(kv[len("ORK_TASK_ID="):]), true
		case bytes.HasPrefix(kv, []byte("ORK_ATTEMPT=")):
			a, err := strconv.Atoi(string(kv[len("ORK_ATTEMPT="):]))
			k.attempt, att = a, err == nil
		}
	}
	return k, dir && id && att
}
