//go:build !cloudrun

package cli

import (
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2ECloudRunNeedsTheTag checks that an ork built without the cloudrun
// tag refuses a cloudrun workflow, or a DAG with a cloudrun task, in
// validate and trigger, with one line that says how to build one that
// runs it, and makes no run.
func TestE2ECloudRunNeedsTheTag(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	writeScript(t, dir, "extract.sh", helloScript)
	wfDir := filepath.Join(dir, ".ork", "workflows")
	writeFile(t, filepath.Join(wfDir, "export.json"),
		`{"job_name": "nightly-export", "executor_type": "cloudrun", "project": "acme-prod", "region": "europe-west1", "task_count": 2}`, 0o644)
	writeFile(t, filepath.Join(wfDir, "pipeline.json"), `{
  "project": "acme-prod", "region": "europe-west1",
  "tasks": {
    "extract": {"job_name": "extract.sh"},
    "load": {"job_name": "loader", "executor_type": "cloudrun", "depends_on": ["extract"]}
  }
}`, 0o644)
	for _, tc := range []struct{ name, what string }{
		{"export", `workflow "export"`},
		{"pipeline", `task "load" of workflow "pipeline"`},
	} {
		file := filepath.Join(wfDir, tc.name+".json")
		_, stderr, _ := mustFail(t, dir, "validate", file)
		// validate says one line per bad file, then how many were bad.
		line := nonEmptyLines(stderr)
		if len(line) != 2 || !strings.Contains(line[0], "-tags cloudrun") || !strings.Contains(line[0], tc.what) || !strings.HasPrefix(line[0], file+": ") {
			t.Errorf("ork validate %s: stderr %q, want a line naming the file, %s and -tags cloudrun, then the count", file, stderr, tc.what)
		}
		_, stderr, _ = mustFail(t, dir, "trigger", tc.name)
		if l := wantOneLineError(t, "ork trigger "+tc.name, stderr); !strings.Contains(l, "-tags cloudrun") || !strings.Contains(l, tc.what) {
			t.Errorf("ork trigger %s: %q, want %s and -tags cloudrun", tc.name, l, tc.what)
		}
	}
	ents, err := os.ReadDir(filepath.Join(dir, ".ork", "runs"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Errorf("refused triggers made %d run files", len(ents))
	}
}

// TestDefaultBuildHasNoCloudRun checks that ork built without the cloudrun
// tag links neither the Cloud Run executor nor golang.org/x/oauth2.
func TestDefaultBuildHasNoCloudRun(t *testing.T) {
	t.Parallel()
	out, err := osexec.Command("go", "list", "-deps", "..").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 || !strings.Contains(string(out), "github.com/ork-run/ork/exec\n") {
		t.Fatalf("go list -deps gave %d packages, without ork's exec: %s", len(deps), out)
	}
	for _, d := range deps {
		if strings.HasPrefix(d, "golang.org/x/oauth2") || strings.HasPrefix(d, "github.com/ork-run/ork/exec/cloudrun") || strings.HasPrefix(d, "cloud.google.com/") {
			t.Errorf("the default build links %s", d)
		}
	}
}
