//go:build linux

package filedb

import (
	"bufio"
	"context"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

// The system calls themselves, seen by strace(1): every record ork makes
// visible was written, then synced by a real fsync(2) or syncfs(2), then
// renamed or linked into place, then its directory synced — and every
// directory made is synced in its parent. This is what fails when a sync
// is made a no-op anywhere, below the seam of TestEveryWriteIsSyncedInOrder.
//
// The test runs itself again under strace, doing a scheduler's writes.
// strace must be installed (CI installs it).
func TestSyscallsMakeEveryWriteDurable(t *testing.T) {
	if dir := os.Getenv("ORK_STRACE_CHILD"); dir != "" {
		durableWorkload(t, dir)
		return
	}
	strace, err := osexec.LookPath("strace")
	if err != nil {
		t.Fatal("strace is needed to check the system calls of durable writes: install it (apt-get install strace)")
	}
	root := filepath.Join(t.TempDir(), ".ork")
	out := filepath.Join(t.TempDir(), "trace")
	cmd := osexec.Command(strace, "-f", "-qq", "-y", "-o", out,
		"-e", "trace=write,pwrite64,fsync,fdatasync,syncfs,rename,renameat,renameat2,link,linkat,mkdir,mkdirat",
		os.Args[0], "-test.run", "^TestSyscallsMakeEveryWriteDurable$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ORK_STRACE_CHILD="+root)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("workload under strace: %v\n%s", err, b)
	}
	calls := readTrace(t, out, root)
	checkSyscalls(t, calls, root)
}

// durableWorkload is what the traced child does: the writes of a trigger
// and of a scheduler running a run, a retry and a prune.
func durableWorkload(t *testing.T, root string) {
	ctx := context.Background()
	if err := Init(root); err != nil {
		t.Fatal(err)
	}
	d, _ := openTest(t, root)
	w := testWorkflow("hello", 6)
	if err := d.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	r := model.NewRun(w, nil, "test", time.Now())
	if err := d.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	ts := model.NewTasks(r, time.Now())
	if err := d.CreateTasks(ctx, ts); err != nil {
		t.Fatal(err)
	}
	if err := d.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunRunning}}); err != nil {
		t.Fatal(err)
	}
	for _, st := range []model.TaskStatus{model.TaskDispatched, model.TaskRunning, model.TaskFailed} {
		var us []model.TaskUpdate
		for _, task := range ts {
			us = append(us, model.TaskUpdate{TaskID: task.ID, RunID: r.ID, Status: st})
		}
		if _, err := d.UpdateTasks(ctx, us); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunFailed, At: time.Now().Add(-time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if err := d.ReopenRun(ctx, r.ID, ids(ts[:1]), ids(ts[1:])); err != nil {
		t.Fatal(err)
	}
	if _, err := d.UpdateTasks(ctx, []model.TaskUpdate{{TaskID: ts[0].ID, RunID: r.ID, Status: model.TaskDispatched}}); err != nil {
		t.Fatal(err)
	}
	if err := d.RequestCancel(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	release, err := d.LockScheduler(ctx)
	if err != nil {
		t.Fatal(err)
	}
	release()
}

type syscallLine struct {
	name string
	args []string // fd paths (from -y) and quoted paths, in order
}

var (
	traceLine = regexp.MustCompile(`^\d+\s+(\w+)\((.*)\)\s+=\s+(-?\d+)`)
	atCwd     = regexp.MustCompile(`AT_FDCWD<[^<>]*>`)
	traceArg  = regexp.MustCompile(`<([^<>]*)>|"((?:[^"\\]|\\.)*)"`)
)

// readTrace parses strace's output: the successful calls on paths under
// root, in order; a call split by another thread's is joined again.
func readTrace(t *testing.T, path, root string) []syscallLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []syscallLine
	unfinished := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		pid, rest, _ := strings.Cut(line, " ")
		if head, ok := strings.CutSuffix(line, " <unfinished ...>"); ok {
			unfinished[pid] = head
			continue
		}
		if i := strings.Index(rest, " resumed>"); i >= 0 && strings.HasPrefix(strings.TrimSpace(rest), "<...") {
			line = unfinished[pid] + rest[i+len(" resumed>"):]
			delete(unfinished, pid)
		}
		m := traceLine.FindStringSubmatch(line)
		if m == nil || strings.HasPrefix(m[3], "-") {
			continue
		}
		c := syscallLine{name: m[1]}
		for _, a := range traceArg.FindAllStringSubmatch(atCwd.ReplaceAllString(m[2], "AT_FDCWD"), -1) {
			p := a[1]
			if p == "" {
				p = a[2]
			}
			c.args = append(c.args, filepath.Clean(p))
		}
		if len(c.args) > 0 && strings.HasPrefix(c.args[0], root) {
			switch c.name {
			case "write", "pwrite64":
				c.args = c.args[:1] // the data is not a path
			}
			out = append(out, c)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func checkSyscalls(t *testing.T, calls []syscallLine, root string) {
	t.Helper()
	isSync := func(c syscallLine, path string) bool {
		return c.name == "syncfs" || (c.name == "fsync" || c.name == "fdatasync") && c.args[0] == path
	}
	syncedBetween := func(from, to int, path string) bool {
		for k := max(from, 0); k < to; k++ {
			if isSync(calls[k], path) {
				return true
			}
		}
		return false
	}
	records, dirs := 0, 0
	for i, c := range calls {
		switch c.name {
		case "rename", "renameat", "renameat2", "link", "linkat":
			if len(c.args) < 2 {
				t.Fatalf("cannot read the paths of %v", c)
			}
			src, dst := c.args[0], c.args[1]
			if strings.Contains(dst, "/"+spareDir+"/") || strings.HasPrefix(filepath.Base(dst), prunePrefix) {
				continue // a version kept as a spare inode, or a prune: no new data
			}
			records++
			lastWrite := -1
			for k := 0; k < i; k++ {
				if (calls[k].name == "write" || calls[k].name == "pwrite64") && calls[k].args[0] == src {
					lastWrite = k
				}
			}
			if lastWrite < 0 {
				t.Errorf("%s %s -> %s: no write of its data seen", c.name, src, dst)
			} else if !syncedBetween(lastWrite+1, i, src) {
				t.Errorf("%s %s -> %s: its data was not synced between its last write and the %s", c.name, src, dst, c.name)
			}
			if !syncedBetween(i+1, len(calls), filepath.Dir(dst)) {
				t.Errorf("%s -> %s: the directory was not synced after the %s", src, dst, c.name)
			}
		case "mkdir", "mkdirat":
			dirs++
			if !syncedBetween(i+1, len(calls), filepath.Dir(c.args[0])) {
				t.Errorf("mkdir %s: its parent directory was never synced after", c.args[0])
			}
		}
	}
	t.Logf("%d records made visible, %d directories made: each synced in order", records, dirs)
	// A workflow, a run, a cancel request, 6 tasks created and written
	// three times, the run written four times: far more than 20.
	if records < 20 || dirs < 2 {
		t.Fatalf("the trace shows %d records made visible and %d directories made; the workload makes more (trace unreadable?)", records, dirs)
	}
}
