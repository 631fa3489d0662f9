//go:build unix

package cli

import (
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The default build has no PostgreSQL: a postgres URL, by flag or by
// environment, is one line saying how to build an ork that has it.
func TestE2EDefaultBuildRefusesPostgresURL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const url = "postgres://postgres@127.0.0.1:5432/test"
	_, stderr, code := run(t, dir, "--database-url", url, "status")
	line := wantOneLineError(t, "--database-url", stderr)
	if code == 0 || !strings.Contains(line, "-tags postgres") {
		t.Errorf("exit %d, %q; want a failure naming -tags postgres", code, line)
	}
	_, stderr, code = runEnvWithin(t, cmdTimeout, dir, []string{"ORK_DATABASE_URL=" + url}, "list-workflows")
	line = wantOneLineError(t, "ORK_DATABASE_URL", stderr)
	if code == 0 || !strings.Contains(line, "-tags postgres") {
		t.Errorf("exit %d, %q; want a failure naming -tags postgres", code, line)
	}
}

// `ork apply` on the file database writes workflow files into
// .ork/workflows/, replacing a workflow of the same name; a file that is
// not valid is named with its line and column, and nothing is applied.
func TestE2EApplyFileDatabase(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	writeScript(t, dir, "hello.sh", helloScript)
	src := filepath.Join(dir, "defs")
	writeFile(t, filepath.Join(src, "hello.json"), `{"job_name": "hello.sh", "task_count": 2}`, 0o644)
	writeFile(t, filepath.Join(src, "etl.json"), `{"name": "etl", "tasks": {"a": {"job_name": "hello.sh"}, "b": {"job_name": "hello.sh", "depends_on": ["a"]}}}`, 0o644)
	writeFile(t, filepath.Join(src, "broken.json"), "{\n  \"job_name\": \"hello.sh\",\n  \"task_count\": 2,,\n}\n", 0o644)

	_, stderr, code := run(t, dir, "apply", filepath.Join(src, "hello.json"), filepath.Join(src, "broken.json"))
	if code == 0 || !strings.Contains(stderr, "broken.json: line 3, column") || !strings.Contains(stderr, "nothing applied") {
		t.Fatalf("apply with a broken file: exit %d, stderr:\n%s\nwant the file's line and column, and nothing applied", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, ".ork", "workflows", "hello.json")); err == nil {
		t.Fatal("a workflow was applied although one file was broken")
	}

	out, _ := mustRun(t, dir, "apply", filepath.Join(src, "hello.json"), filepath.Join(src, "etl.json"))
	if !strings.Contains(out, "applied workflow hello") || !strings.Contains(out, "applied workflow etl") {
		t.Errorf("apply output:\n%s", out)
	}
	for _, name := range []string{"hello", "etl"} {
		if _, err := os.Stat(filepath.Join(dir, ".ork", "workflows", name+".json")); err != nil {
			t.Errorf("workflows/%s.json: %v", name, err)
		}
	}
	writeFile(t, filepath.Join(src, "hello.json"), `{"job_name": "hello.sh", "task_count": 4}`, 0o644)
	mustRun(t, dir, "apply", filepath.Join(src, "hello.json"))
	out, _ = mustRun(t, dir, "list-workflows", "--json")
	var ws []jsonWorkflow
	decodeJSON(t, "list-workflows --json", out, &ws)
	if len(ws) != 2 || ws[1].Name != "hello" || ws[1].TaskCount != 4 {
		t.Fatalf("workflows after re-apply: %+v, want etl and hello with 4 tasks", ws)
	}
	out, _ = mustRun(t, dir, "trigger", "hello", "--wait")
	if r := runStatus(t, dir, runID(t, out)); r.Status != "success" {
		t.Fatalf("run of the applied workflow: %+v", r)
	}
}

// The default build contains no pgx: PostgreSQL comes only with the build
// tag.
func TestE2EDefaultBuildHasNoPgx(t *testing.T) {
	t.Parallel()
	out, err := osexec.Command("go", "version", "-m", orkBin).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "github.com/urfave/cli") {
		t.Fatalf("go version -m lists no modules:\n%s", out)
	}
	if strings.Contains(string(out), "jackc/pgx") {
		t.Errorf("the default ork contains pgx:\n%s", out)
	}
}
