//go:build unix

package exec

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// signalGroup sends sig to the process group that p leads. A group that is
// gone already is no error.
func signalGroup(p *os.Process, sig syscall.Signal) error {
	err := syscall.Kill(-p.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// describeExit returns the exit code and error message of an ended process:
// (0, "") for success, (n, "exit status n") for an exit with status n, and
// (128+s, "killed by signal NAME") for a process killed by signal s.
func describeExit(state *os.ProcessState) (int, string) {
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		sig := ws.Signal()
		msg := "killed by signal " + signalName(sig)
		if ws.CoreDump() {
			msg += " (core dumped)"
		}
		return 128 + int(sig), msg
	}
	code := state.ExitCode()
	if code == 0 {
		return 0, ""
	}
	return code, fmt.Sprintf("exit status %d", code)
}

// signalName returns the name of sig without its SIG prefix, as kill -l
// prints it, or its number for a signal without a portable name.
func signalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGHUP:
		return "HUP"
	case syscall.SIGINT:
		return "INT"
	case syscall.SIGQUIT:
		return "QUIT"
	case syscall.SIGILL:
		return "ILL"
	case syscall.SIGTRAP:
		return "TRAP"
	case syscall.SIGABRT:
		return "ABRT"
	case syscall.SIGBUS:
		return "BUS"
	case syscall.SIGFPE:
		return "FPE"
	case syscall.SIGKILL:
		return "KILL"
	case syscall.SIGUSR1:
		return "USR1"
	case syscall.SIGSEGV:
		return "SEGV"
	case syscall.SIGUSR2:
		return "USR2"
	case syscall.SIGPIPE:
		return "PIPE"
	case syscall.SIGALRM:
		return "ALRM"
	case syscall.SIGTERM:
		return "TERM"
	case syscall.SIGXCPU:
		return "XCPU"
	case syscall.SIGXFSZ:
		return "XFSZ"
	case syscall.SIGVTALRM:
		return "VTALRM"
	case syscall.SIGPROF:
		return "PROF"
	case syscall.SIGSYS:
		return "SYS"
	}
	return strconv.Itoa(int(sig))
}
