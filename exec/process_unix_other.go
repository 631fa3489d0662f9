//go:build unix && !linux

package exec

import "syscall"

// sysProcAttr makes each script the leader of a new process group.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// waitExited would wait for the exit of process pid without reaping it. It
// is not done here: the process is reaped by os/exec directly, and it
// reports false.
func waitExited(pid int) bool { return false }
