package exec

import (
	"fmt"
	"os"
	"syscall"
)

// sysProcAttr returns no special attributes: Windows has neither process
// groups that can be signalled nor a parent-death signal.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// waitExited reports false: the process is reaped by os/exec directly.
func waitExited(pid int) bool { return false }

// signalGroup ends process p. Windows cannot ask a process to stop, so
// every signal kills it, and only it.
func signalGroup(p *os.Process, sig syscall.Signal) error {
	err := p.Kill()
	if err == os.ErrProcessDone {
		return nil
	}
	return err
}

// describeExit returns the exit code and error message of an ended process.
func describeExit(state *os.ProcessState) (int, string) {
	code := state.ExitCode()
	if code == 0 {
		return 0, ""
	}
	return code, fmt.Sprintf("exit status %d", code)
}
