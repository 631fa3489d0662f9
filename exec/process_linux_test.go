package exec

import (
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

// TestWaitExited checks both ways of waiting for an exit on Linux: each
// must return only once the process has exited, and leave it to be reaped.
func TestWaitExited(t *testing.T) {
	tests := []struct {
		name string
		wait func(pid int) bool
	}{
		{"pidfd in the poller", func(pid int) bool {
			exited, ok := pollExited(pid)
			if !ok {
				t.Skip("pidfds are not available here")
			}
			return exited
		}},
		{"blocking waitid", waitidExited},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := osexec.Command("/bin/sh", "-c", "sleep 0.2; exit 7")
			cmd.SysProcAttr = sysProcAttr()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if !tt.wait(cmd.Process.Pid) {
				t.Fatal("wait reported false")
			}
			if d := time.Since(start); d < 150*time.Millisecond {
				t.Errorf("returned after %v, before the process exited", d)
			}
			// Still a zombie: the process group id is reserved.
			if err := syscall.Kill(-cmd.Process.Pid, 0); err != nil {
				t.Errorf("the exited process was reaped already: %v", err)
			}
			err := cmd.Wait()
			if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 7 {
				t.Errorf("Wait after wait = %v, state %v; want exit status 7", err, cmd.ProcessState)
			}
		})
	}
}

// TestWaitExitedAlreadyExited checks the case of a process that exited
// before the wait began.
func TestWaitExitedAlreadyExited(t *testing.T) {
	cmd := osexec.Command("/bin/true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	done := make(chan bool, 1)
	go func() { done <- waitExited(cmd.Process.Pid) }()
	select {
	case ok := <-done:
		if !ok {
			t.Error("waitExited = false")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waitExited blocks on a process that has exited")
	}
	if err := cmd.Wait(); err != nil {
		t.Error(err)
	}
}

func TestSysProcAttrLinux(t *testing.T) {
	a := sysProcAttr()
	if !a.Setpgid || a.Pdeathsig != syscall.SIGKILL {
		t.Errorf("SysProcAttr %+v, want a new process group and SIGKILL on parent death", a)
	}
}

// threads returns the number of OS threads of this process.
func threads(t *testing.T) int {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("needs /proc")
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads line in /proc/self/status")
	return 0
}

// TestProcessWaitHoldsNoThread checks that running processes are waited for
// in the poller: hundreds of them do not cost hundreds of OS threads.
func TestProcessWaitHoldsNoThread(t *testing.T) {
	probe := osexec.Command("/bin/true")
	if err := probe.Start(); err != nil {
		t.Fatal(err)
	}
	_, ok := pollExited(probe.Process.Pid)
	probe.Wait()
	if !ok {
		t.Skip("pidfds are not available here")
	}

	const n = 300
	f := newFixture(t, nil)
	f.script(t, "sleep.sh", "exec sleep 300")
	for i := range n {
		if _, err := f.e.Execute(context.Background(), newTask("sleep.sh", fmt.Sprintf("t%d", i), i)); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		if u := f.next(t); u.Status != model.TaskRunning {
			t.Fatalf("update %+v, want running", u)
		}
	}
	time.Sleep(100 * time.Millisecond) // let every wait goroutine park
	if got := threads(t); got > n/3 {
		t.Errorf("%d OS threads for %d running processes", got, n)
	}
	if err := f.e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
