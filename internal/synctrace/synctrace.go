// Package synctrace checks durability at the level of system calls: it runs
// a command under strace(1) and tells, from the calls the command made,
// whether every file it made visible was written, then synced (fsync(2),
// fdatasync(2) or syncfs(2)), then renamed or linked into place, and its
// directory synced after; and whether every directory it made was synced
// in its parent. Tests use it to guard the durable writes below any seam:
// it fails when a sync is made a no-op anywhere.
//
// It is for tests only, and needs strace installed.
package synctrace

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// Call is one successful system call on a path.
type Call struct {
	Name string
	Args []string // the paths it names: fd paths (from -y) and quoted paths, in order
}

// Traced is the system calls that Run asks strace for.
const Traced = "write,pwrite64,fsync,fdatasync,syncfs,rename,renameat,renameat2,link,linkat,mkdir,mkdirat"

// Run runs cmd under strace and returns its successful calls on paths
// under root, in order.
func Run(cmd *exec.Cmd, root string) ([]Call, error) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		return nil, fmt.Errorf("strace is needed to check the system calls of durable writes: install it (apt-get install strace)")
	}
	out, err := os.CreateTemp("", "synctrace-*")
	if err != nil {
		return nil, err
	}
	out.Close()
	defer os.Remove(out.Name())
	args := append([]string{"-f", "-qq", "-y", "-o", out.Name(), "-e", "trace=" + Traced, cmd.Path}, cmd.Args[1:]...)
	cmd.Args = append([]string{strace}, args...)
	cmd.Path = strace
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%v under strace: %v\n%s", cmd.Args, err, b)
	}
	return Parse(out.Name(), root)
}

var (
	line  = regexp.MustCompile(`^\d+\s+(\w+)\((.*)\)\s+=\s+(-?\d+)`)
	atCwd = regexp.MustCompile(`AT_FDCWD<[^<>]*>`)
	arg   = regexp.MustCompile(`<([^<>]*)>|"((?:[^"\\]|\\.)*)"`)
)

// Parse reads strace output (-f -y): the successful calls whose first path
// lies under root. A call split by another thread's is joined again.
func Parse(path, root string) ([]Call, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Call
	unfinished := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		pid, rest, _ := strings.Cut(l, " ")
		if head, ok := strings.CutSuffix(l, " <unfinished ...>"); ok {
			unfinished[pid] = head
			continue
		}
		if i := strings.Index(rest, " resumed>"); i >= 0 && strings.HasPrefix(strings.TrimSpace(rest), "<...") {
			l = unfinished[pid] + rest[i+len(" resumed>"):]
			delete(unfinished, pid)
		}
		m := line.FindStringSubmatch(l)
		if m == nil || strings.HasPrefix(m[3], "-") {
			continue
		}
		c := Call{Name: m[1]}
		for _, a := range arg.FindAllStringSubmatch(atCwd.ReplaceAllString(m[2], "AT_FDCWD"), -1) {
			p := a[1]
			if p == "" {
				p = a[2]
			}
			c.Args = append(c.Args, filepath.Clean(p))
		}
		if len(c.Args) == 0 || !strings.HasPrefix(c.Args[0], root) {
			continue
		}
		if c.Name == "write" || c.Name == "pwrite64" {
			c.Args = c.Args[:1] // the data is not a path
		}
		out = append(out, c)
	}
	return out, sc.Err()
}

// Check checks the order of calls (see the package doc). Renames and links
// into a path for which moveOnly returns true move a file that is durable
// already, and need no sync of data before. It returns how many files
// made visible and directories made it checked, and what is wrong.
func Check(calls []Call, moveOnly func(dst string) bool) (files, dirs int, problems []string) {
	isSync := func(c Call, path string) bool {
		return c.Name == "syncfs" || (c.Name == "fsync" || c.Name == "fdatasync") && c.Args[0] == path
	}
	synced := func(from, to int, path string) bool {
		for k := max(from, 0); k < to; k++ {
			if isSync(calls[k], path) {
				return true
			}
		}
		return false
	}
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	for i, c := range calls {
		switch c.Name {
		case "rename", "renameat", "renameat2", "link", "linkat":
			if len(c.Args) < 2 {
				bad("cannot read the paths of %v", c)
				continue
			}
			src, dst := c.Args[0], c.Args[1]
			if moveOnly != nil && moveOnly(dst) {
				continue
			}
			files++
			lastWrite := -1
			for k := 0; k < i; k++ {
				if (calls[k].Name == "write" || calls[k].Name == "pwrite64") && calls[k].Args[0] == src {
					lastWrite = k
				}
			}
			if lastWrite < 0 {
				bad("%s %s -> %s: no write of its data seen", c.Name, src, dst)
			} else if !synced(lastWrite+1, i, src) {
				bad("%s %s -> %s: the data was not synced between its last write and the %s", c.Name, src, dst, c.Name)
			}
			if !synced(i+1, len(calls), filepath.Dir(dst)) {
				bad("%s %s -> %s: the directory was not synced after", c.Name, src, dst)
			}
		case "mkdir", "mkdirat":
			dirs++
			if !synced(i+1, len(calls), filepath.Dir(c.Args[0])) {
				bad("mkdir %s: its parent directory was never synced after", c.Args[0])
			}
		}
	}
	return files, dirs, problems
}
