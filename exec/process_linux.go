package exec

import (
	"os"
	"runtime"
	"syscall"
	"unsafe"
)

// sysProcAttr makes each script the leader of a new process group, and has
// the kernel kill it when the scheduler dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

const (
	pPID    = 1         // waitid: wait for the process with this id
	pPIDFD  = 3         // waitid: wait for the process of this pidfd
	wNoWait = 0x1000000 // WNOWAIT: leave the child waitable
	wNoHang = 0x1       // WNOHANG
)

// pidfdOpenTrap is the number of the pidfd_open system call.
func pidfdOpenTrap() uintptr {
	switch runtime.GOARCH {
	case "mips", "mipsle":
		return 4434
	case "mips64", "mips64le":
		return 5434
	}
	return 434
}

// waitExited blocks until process pid, a child of this process, has exited,
// without reaping it, and reports whether it could: the process is then a
// zombie, so its id (and its process group's id) cannot be reused until it
// is reaped.
//
// It waits in the runtime's poller on a pidfd (Linux 5.10 and later), so
// the waiting goroutine holds no OS thread; without pidfds it falls back to
// a blocking waitid, as os.Process.Wait does.
func waitExited(pid int) bool {
	if exited, ok := pollExited(pid); ok {
		return exited
	}
	return waitidExited(pid)
}

// waitidExited blocks in waitid until process pid has exited, without
// reaping it, and reports whether it could.
func waitidExited(pid int) bool {
	var info siginfo
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info)), syscall.WEXITED|wNoWait, 0, 0)
		if errno != syscall.EINTR {
			return errno == 0
		}
	}
}

// pollExited waits for process pid to exit through a non-blocking pidfd in
// the runtime's poller. ok is false when pidfds cannot be used this way.
func pollExited(pid int) (exited, ok bool) {
	fd, _, errno := syscall.Syscall(pidfdOpenTrap(), uintptr(pid), syscall.O_NONBLOCK, 0) // PIDFD_NONBLOCK is O_NONBLOCK
	if errno != 0 {
		return false, false
	}
	// pidfd_open sets close-on-exec itself. The descriptor is non-blocking,
	// so NewFile adds it to the poller.
	f := os.NewFile(fd, "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return false, false
	}
	var werr error
	err = rc.Read(func(fd uintptr) bool {
		for {
			var info siginfo
			_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPIDFD, fd,
				uintptr(unsafe.Pointer(&info)), syscall.WEXITED|wNoWait|wNoHang, 0, 0)
			switch errno {
			case 0:
				// With WNOHANG, a child that has not exited leaves
				// si_pid zero.
				exited = info.pid() != 0
				return exited
			case syscall.EAGAIN:
				return false // wait until the pidfd is readable
			case syscall.EINTR:
				continue
			}
			werr = errno
			return true
		}
	})
	if err != nil || werr != nil {
		return false, false
	}
	return exited, true
}

// siginfo is a siginfo_t: 128 bytes, aligned for its int32 fields.
type siginfo [32]int32

// pid returns si_pid. It follows si_signo, si_errno and si_code, and on
// 64-bit systems 4 bytes of padding.
func (s *siginfo) pid() int32 {
	if unsafe.Sizeof(uintptr(0)) == 8 {
		return s[4]
	}
	return s[3]
}
