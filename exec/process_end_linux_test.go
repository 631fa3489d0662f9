package exec

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

// daemonScript starts a child in the background (in the script's process
// group), one in the group with an empty environment (env -i), and one in
// a session of its own (setsid: out of the group; the script waits until
// it has left), writes their pids, and exits with $CODE.
const daemonScript = `sleep 120 &
echo $! > "$PIDS/group.pid"
env -i "$(command -v sleep)" 120 &
echo $! > "$PIDS/noenv.pid"
setsid sh -c 'echo $$ > "$PIDS/setsid.tmp"; mv "$PIDS/setsid.tmp" "$PIDS/setsid.pid"; exec sleep 120' &
while [ ! -f "$PIDS/setsid.pid" ]; do sleep 0.01; done
exit $CODE`

// TestTaskProcessesEndWithTheTask checks the rule of ProcessExecutor: when a
// script exits, successful or not, what it left running ends too — the
// background children in its process group (even one with an empty
// environment) by the time the terminal update is sent (they die a moment
// later), the one that left the group (setsid) within a moment after.
func TestTaskProcessesEndWithTheTask(t *testing.T) {
	for _, code := range []int{0, 3} {
		t.Run(map[int]string{0: "success", 3: "failure"}[code], func(t *testing.T) {
			f := newFixture(t, nil)
			f.script(t, "daemon.sh", daemonScript)
			pids := t.TempDir()
			tw := newTask("daemon.sh", "daemon-task", 0)
			tw.Task.Params = map[string]any{"PIDS": pids, "CODE": code}
			_, _, final := f.run(t, tw)
			want := model.TaskSuccess
			if code != 0 {
				want = model.TaskFailed
			}
			if final.Status != want {
				t.Fatalf("final %+v, want %s", final, want)
			}
			group := readPid(t, filepath.Join(pids, "group.pid"))
			noenv := readPid(t, filepath.Join(pids, "noenv.pid"))
			setsid := readPid(t, filepath.Join(pids, "setsid.pid"))
			t.Cleanup(func() {
				syscall.Kill(group, syscall.SIGKILL)
				syscall.Kill(noenv, syscall.SIGKILL)
				syscall.Kill(setsid, syscall.SIGKILL)
			})
			// SIGKILL has been sent to the group before the update; the
			// kernel ends the processes a moment later. The one without
			// the task's environment is reached only so.
			waitGone(t, group, time.Second)
			waitGone(t, noenv, time.Second)
			// The one that left the group is found by its environment.
			waitGone(t, setsid, 2*time.Second)
		})
	}
}

// TestProcessBegan checks Began: an attempt began exactly when its log
// file exists (the log is created before the process starts).
func TestProcessBegan(t *testing.T) {
	f := newFixture(t, nil)
	f.script(t, "ok.sh", "exit 0")
	tw := newTask("ok.sh", "began-task", 0)
	if began, err := f.e.Began(context.Background(), tw); began || err != nil {
		t.Fatalf("Began before any start = %v, %v; want false, nil", began, err)
	}
	f.run(t, tw)
	if began, err := f.e.Began(context.Background(), tw); !began || err != nil {
		t.Fatalf("Began after the attempt ran = %v, %v; want true, nil", began, err)
	}
}
