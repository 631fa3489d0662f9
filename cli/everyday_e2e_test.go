//go:build unix

// End-to-end tests of everyday use: what a new user meets in the first
// hour (parameters, subdirectories, run id prefixes, flag mistakes).

package cli

import (
	"bytes"
	"encoding/json"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// logOf returns the log of attempt 1 of task NAME.0 of run id.
func logOf(t *testing.T, dir, id, name string) string {
	t.Helper()
	return string(readFile(t, filepath.Join(dir, ".ork", "logs", id, name+".0.1.log")))
}

// TestEverydayParams checks that --param never splits on commas, that
// numbers reach the task with every digit (from --param, --params-file and
// the workflow file), and which parameters get a variable of their own.
func TestEverydayParams(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	writeScript(t, dir, "p.sh", `#!/bin/sh
printf 'msg=%s\n' "$msg"
printf 'cols=%s\n' "$cols"
printf 'big=%s\n' "$big"
printf 'dec=%s\n' "$dec"
printf 'fbig=%s\n' "$fbig"
printf 'wdec=%s\n' "$wdec"
printf 'arr=%s\n' "$arr"
printf 'HOME=%s\n' "$HOME"
printf 'PATH=%s\n' "$PATH"
printf 'ORK_PARAMS=%s\n' "$ORK_PARAMS"
`)
	mustRun(t, dir, "create-workflow", "-n", "p", "-j", "p.sh", "--param", "cols=a,b=c", "--param", "wdec=3.140")
	writeFile(t, filepath.Join(dir, "params.json"), `{"fbig": 98765432109876543210}`, 0o644)
	out, _ := mustRun(t, dir, "trigger", "p", "--wait",
		"--param", "msg=hello, world",
		"--param", "big=12345678901234567890",
		"--param", "dec=1.10",
		"--param", `arr=[1, "x,y"]`,
		"--param", "my-key=1",
		"--param", "HOME=/nowhere",
		"--param", "PATH=/nowhere",
		"--params-file", "params.json")
	id := runID(t, out)
	log := logOf(t, dir, id, "p.sh")
	for _, want := range []string{
		"msg=hello, world\n",
		"cols=a,b=c\n",
		"big=12345678901234567890\n",
		"dec=1.10\n",
		"fbig=98765432109876543210\n",
		"wdec=3.140\n",
		`arr=[1,"x,y"]` + "\n",
		"HOME=" + os.Getenv("HOME") + "\n",
		"PATH=" + os.Getenv("PATH") + "\n",
		`[ork: parameter "my-key" is not exported as a variable: its name is not a valid environment variable name`,
		`[ork: parameter "HOME" is not exported as a variable`,
		`[ork: parameter "PATH" is not exported as a variable`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the task's log does not contain %q; log:\n%s", want, log)
		}
	}
	line := ""
	for _, l := range strings.Split(log, "\n") {
		if rest, ok := strings.CutPrefix(l, "ORK_PARAMS="); ok {
			line = rest
		}
	}
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	var params map[string]any
	if err := dec.Decode(&params); err != nil {
		t.Fatalf("ORK_PARAMS %q: %v", line, err)
	}
	for k, v := range map[string]any{
		"big": json.Number("12345678901234567890"), "dec": json.Number("1.10"), "fbig": json.Number("98765432109876543210"),
		"wdec": json.Number("3.140"), "my-key": json.Number("1"), "msg": "hello, world", "cols": "a,b=c", "HOME": "/nowhere",
	} {
		if params[k] != v {
			t.Errorf("ORK_PARAMS[%q] = %#v, want %#v", k, params[k], v)
		}
	}
	// The run record keeps the digits too.
	out, _ = mustRun(t, dir, "status", id, "--json")
	if !strings.Contains(out, "12345678901234567890") || !strings.Contains(out, "1.10") {
		t.Errorf("status --json does not keep the numbers as given:\n%s", out)
	}
	// ork logs shows the notes.
	out, _ = mustRun(t, dir, "logs", id)
	if !strings.Contains(out, `parameter "my-key" is not exported`) {
		t.Errorf("ork logs does not show why my-key has no variable:\n%s", out)
	}
}

// TestEverydayLogsSayWhyNoOutput checks that `ork logs` of a task that
// never started says why, instead of printing nothing.
func TestEverydayLogsSayWhyNoOutput(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	mustRun(t, dir, "create-workflow", "-n", "gone", "-j", "missing.sh")
	writeScript(t, dir, "crlf.sh", "#!/bin/sh\r\necho hi\r\n")
	mustRun(t, dir, "create-workflow", "-n", "crlf", "-j", "crlf.sh")
	for name, want := range map[string]string{
		"gone": "not found",
		"crlf": "carriage return in the #! line",
	} {
		out, _, _ := run(t, dir, "trigger", name, "--wait")
		id := runID(t, out)
		logs, _ := mustRun(t, dir, "logs", id)
		if !strings.Contains(logs, want) || strings.TrimSpace(logs) == "(no log)" {
			t.Errorf("%s: ork logs prints %q, want it to say why there is no output (%q)", name, logs, want)
		}
	}
}

// TestEverydaySubdirectory checks that ork finds the project's .ork from a
// subdirectory as git does, that --dir and ORK_DIR still win, and that
// `ork init` inside a project warns.
func TestEverydaySubdirectory(t *testing.T) {
	t.Parallel()
	dir := newHelloProject(t)
	sub := filepath.Join(dir, "src", "deep")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	out, _ := mustRun(t, sub, "trigger", "hello", "--wait")
	id := runID(t, out)
	if r := runStatus(t, sub, id); r.Status != "success" {
		t.Errorf("run from a subdirectory: %+v, want success (scripts found beside the project)", r)
	}
	if out, _ := mustRun(t, sub, "list-workflows"); !strings.Contains(out, "hello") {
		t.Errorf("list-workflows from a subdirectory:\n%s", out)
	}

	// --dir and ORK_DIR win over the search.
	other := newProject(t)
	if out, _ := mustRun(t, sub, "--dir", filepath.Join(other, ".ork"), "list-workflows"); strings.Contains(out, "hello") {
		t.Errorf("--dir did not win over the project found upward:\n%s", out)
	}
	if out, stderr, code := runEnv(t, sub, []string{"ORK_DIR=" + filepath.Join(other, ".ork")}, "list-workflows"); code != 0 || strings.Contains(out, "hello") {
		t.Errorf("ORK_DIR did not win over the project found upward (exit %d):\n%s%s", code, out, stderr)
	}

	// init inside the project warns, and makes .ork here.
	_, stderr := mustRun(t, sub, "init")
	if !strings.Contains(stderr, "warning: this directory is inside the ork project") {
		t.Errorf("init in a subdirectory of a project: stderr %q, want a warning", stderr)
	}
	if st, err := os.Stat(filepath.Join(sub, ".ork")); err != nil || !st.IsDir() {
		t.Errorf("init in a subdirectory made no .ork there: %v", err)
	}
	// At the top of a project, or in a fresh directory, no warning.
	if _, stderr := mustRun(t, t.TempDir(), "init"); strings.Contains(stderr, "warning") {
		t.Errorf("init in a fresh directory warns: %q", stderr)
	}
}

// TestEverydayRunIDPrefix checks that every command taking a run id takes
// a unique prefix of one, and that an ambiguous prefix lists the runs.
func TestEverydayRunIDPrefix(t *testing.T) {
	t.Parallel()
	dir := newHelloProject(t)
	out, _ := mustRun(t, dir, "trigger", "hello", "--wait")
	id := runID(t, out)
	// 17 runs: two of them share a first hex digit.
	ids := []string{id}
	for range 16 {
		out, _ := mustRun(t, dir, "trigger", "hello")
		ids = append(ids, runID(t, out))
	}
	prefix := func(id string) string {
		n := 1
		for _, o := range ids {
			if o == id {
				continue
			}
			for n <= len(id) && strings.HasPrefix(o, id[:n]) {
				n++
			}
		}
		return id[:n]
	}
	p := prefix(id)
	if r := runStatus(t, dir, p); r.ID != id {
		t.Errorf("status %s: run %s, want %s", p, r.ID, id)
	}
	for _, args := range [][]string{{"tasks", p}, {"logs", p}, {"retry", p}, {"cancel", p}, {"status", p}} {
		if _, stderr, code := run(t, dir, args...); code != 0 {
			t.Errorf("ork %s: exit %d: %s", strings.Join(args, " "), code, stderr)
		}
	}

	var amb string
	var members []string
	for _, a := range ids {
		for _, b := range ids {
			if a != b && a[0] == b[0] && amb == "" {
				amb = a[:1]
			}
		}
	}
	for _, o := range ids {
		if strings.HasPrefix(o, amb) {
			members = append(members, o)
		}
	}
	_, stderr, _ := mustFail(t, dir, "status", amb)
	line := wantOneLineError(t, "status "+amb, stderr)
	if !strings.Contains(line, "ambiguous") {
		t.Errorf("status %s: %q, want it to say the prefix is ambiguous", amb, line)
	}
	for _, m := range members {
		if !strings.Contains(line, m) {
			t.Errorf("status %s: %q does not list candidate %s", amb, line, m)
		}
	}
	_, stderr, _ = mustFail(t, dir, "tasks", "zzzz")
	if line := wantOneLineError(t, "tasks zzzz", stderr); !strings.Contains(line, "not found") {
		t.Errorf("tasks zzzz: %q, want not found", line)
	}
}

// TestEverydayValidateAgreesWithTrigger checks that ork validate accepts
// exactly the workflow files ork trigger accepts.
func TestEverydayValidateAgreesWithTrigger(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	writeScript(t, dir, "ok.sh", "#!/bin/sh\necho ok\n")
	for _, tc := range []struct {
		file, data string
		ok         bool
		why        string
	}{
		{"plain", `{"job_name": "ok.sh"}`, true, ""},
		{"named", `{"name": "named", "job_name": "ok.sh"}`, true, ""},
		{"mismatch", `{"name": "other", "job_name": "ok.sh"}`, false, `the file is named "mismatch" but its name field says "other"`},
		{"fanout", `{"tasks": {"a": {"job_name": "ok.sh", "task_count": 3}, "b": {"job_name": "ok.sh", "depends_on": ["a"], "when": "a.ok == true"}}}`, false, "a is a fan-out of 3 tasks"},
		{"past", `{"tasks": {"a": {"job_name": "ok.sh", "task_count": 3}, "b": {"job_name": "ok.sh", "depends_on": ["a"], "when": "a[3].ok == true"}}}`, false, "index 3 is past the end"},
		{"strnum", `{"tasks": {"a": {"job_name": "ok.sh"}, "b": {"job_name": "ok.sh", "depends_on": ["a"], "when": "a.n > \"5\""}}}`, false, `"5" is a string`},
	} {
		p := filepath.Join(".ork", "workflows", tc.file+".json")
		writeFile(t, filepath.Join(dir, p), tc.data, 0o644)
		_, vErr, vCode := run(t, dir, "validate", p)
		_, tErr, tCode := run(t, dir, "trigger", tc.file, "--wait")
		if (vCode == 0) != tc.ok || (tCode == 0) != tc.ok {
			t.Errorf("%s: validate exit %d, trigger exit %d, want both ok=%v\nvalidate: %s\ntrigger: %s", tc.file, vCode, tCode, tc.ok, vErr, tErr)
		}
		if !tc.ok && (!strings.Contains(vErr, tc.why) || !strings.Contains(tErr, tc.why)) {
			t.Errorf("%s: want both to say %q\nvalidate: %s\ntrigger: %s", tc.file, tc.why, vErr, tErr)
		}
		os.Remove(filepath.Join(dir, p))
	}
}

// TestEverydayCommandLine checks the small things of the command line:
// status of an unknown workflow, unknown flags, durations without a unit,
// bad scheduler settings, version.
func TestEverydayCommandLine(t *testing.T) {
	t.Parallel()
	dir := newHelloProject(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"status", "--workflow", "nosuch"}, `no such workflow "nosuch"`},
		{[]string{"trigger", "hello", "--nosuch"}, "unknown flag --nosuch (see `ork trigger --help`)"},
		{[]string{"--bogus", "status"}, "unknown flag --bogus"},
		{[]string{"create-workflow", "-n", "x", "-j", "hello.sh", "--timeout", "30"}, "write a duration with its unit, like 5s"},
		{[]string{"run", "--poll-interval", "5"}, "write a duration with its unit, like 5s"},
		{[]string{"run", "--max-tasks-per-batch", "-1"}, "--max-tasks-per-batch (ORK_MAX_TASKS_PER_BATCH) is -1: must be 1 or more"},
		{[]string{"completion", "tcsh"}, `no completion for shell "tcsh"`},
		{[]string{"create-workflow", "-n", "x"}, "missing required flag --job-name (see `ork create-workflow --help`)"},
		{[]string{"create-workflow"}, "missing required flag --name and --job-name"},
		{[]string{"prune"}, "missing required flag --older-than"},
	} {
		stdout, stderr, _ := mustFail(t, dir, tc.args...)
		line := wantOneLineError(t, strings.Join(tc.args, " "), stderr)
		if !strings.Contains(line, tc.want) {
			t.Errorf("ork %s: %q, want it to contain %q", strings.Join(tc.args, " "), line, tc.want)
		}
		if stdout != "" {
			t.Errorf("ork %s: stdout %q, want nothing (no help dump)", strings.Join(tc.args, " "), stdout)
		}
	}
	_, stderr, _ := runEnv(t, dir, []string{"ORK_POLL_INTERVAL=5"}, "run")
	if line := wantOneLineError(t, "ORK_POLL_INTERVAL=5 ork run", stderr); !strings.Contains(line, `ORK_POLL_INTERVAL="5" (for --poll-interval) is not a duration: write one with its unit, like 5s`) {
		t.Errorf("ORK_POLL_INTERVAL=5 ork run: %q, want the unit hint", line)
	}
	// A workflow with no runs yet is not an error.
	if out, _ := mustRun(t, dir, "status", "--workflow", "hello"); len(nonEmptyLines(out)) != 2 || !strings.HasPrefix(nonEmptyLines(out)[1], "Scheduler: none") {
		t.Errorf("status --workflow hello without runs: %q, want the header alone, then the line about the scheduler", out)
	}
	out, _ := mustRun(t, dir, "version")
	if !strings.HasPrefix(out, "ork ") || !strings.Contains(out, "go1.") {
		t.Errorf("ork version: %q", out)
	}
}

// TestEverydayCompletion runs the bash completion script in a real bash,
// as the shell does on Tab, and checks the other shells' scripts.
func TestEverydayCompletion(t *testing.T) {
	t.Parallel()
	bash, err := osexec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	dir := newHelloProject(t)
	script, _ := mustRun(t, dir, "completion", "bash")
	writeFile(t, filepath.Join(dir, "ork.bash"), script, 0o644)
	complete := func(words ...string) []string {
		t.Helper()
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + w + "'"
		}
		prog := `ork() { "$ORK_BIN" "$@"; }
source ork.bash
COMP_WORDS=(` + strings.Join(quoted, " ") + `)
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
_ork
printf '%s\n' "${COMPREPLY[@]}"`
		cmd := osexec.Command(bash, "--norc", "-c", prog)
		cmd.Dir = dir
		cmd.Env = append(orkEnv(), "ORK_BIN="+orkBin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("bash completion of %q: %v\n%s", words, err, errb.String())
		}
		return nonEmptyLines(out.String())
	}
	has := func(got []string, want ...string) {
		t.Helper()
		for _, w := range want {
			found := false
			for _, g := range got {
				found = found || g == w
			}
			if !found {
				t.Errorf("completions %v lack %q", got, w)
			}
		}
	}
	has(complete("ork", "tr"), "trigger")
	has(complete("ork", "trigger", "--pa"), "--param", "--params-file")
	has(complete("ork", "trigger", "he"), "hello")
	has(complete("ork", "unpause", "he"), "hello")
	has(complete("ork", "--dir", ".ork", "st"), "status")
	has(complete("ork", "sch"), "schedulers", "schedules")
	has(complete("ork", "completion", ""), "bash", "zsh", "fish")

	for _, sh := range []string{"zsh", "fish"} {
		out, _ := mustRun(t, dir, "completion", sh)
		if !strings.Contains(out, "trigger") || !strings.Contains(out, "params-file") {
			t.Errorf("completion %s does not know trigger and its flags:\n%.300s", sh, out)
		}
		writeFile(t, filepath.Join(dir, "ork."+sh), out, 0o644)
	}
	// Where zsh and fish are installed, ask them too.
	shell := func(sh string, args ...string) []string {
		t.Helper()
		path, err := osexec.LookPath(sh)
		if err != nil {
			t.Logf("no %s: its completion is not run", sh)
			return nil
		}
		cmd := osexec.Command(path, args...)
		cmd.Dir = dir
		cmd.Env = append(orkEnv(), "ORK_BIN="+orkBin)
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %q: %v\n%s", sh, args, err, b)
		}
		return nonEmptyLines(string(b))
	}
	zsh := func(words ...string) []string {
		return shell("zsh", "-fc", `ork() { "$ORK_BIN" "$@"; }
source ork.zsh
setopt ksharrays
COMP_WORDS=(`+strings.Join(words, " ")+`)
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
_ork
printf '%s\n' "${COMPREPLY[@]}"`)
	}
	if got := zsh("ork", "tr"); got != nil {
		has(got, "trigger")
		has(zsh("ork", "trigger", "--pa"), "--param", "--params-file")
	}
	fish := func(line string) []string {
		var out []string
		for _, l := range shell("fish", "--no-config", "-c", `function ork; $ORK_BIN $argv; end; source ork.fish; complete -C "`+line+`"`) {
			w, _, _ := strings.Cut(l, "\t")
			out = append(out, w)
		}
		return out
	}
	if got := fish("ork tr"); got != nil {
		has(got, "trigger")
		has(fish("ork trigger --pa"), "--param", "--params-file")
		has(fish("ork trigger he"), "hello")
	}
}
