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
