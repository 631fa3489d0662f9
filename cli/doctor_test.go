//go:build unix

package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ork doctor finds damaged files, leftover temporary files and runs left
// unfinished without a scheduler, says how to fix each, and changes nothing.
func TestE2EDoctor(t *testing.T) {
	t.Parallel()
	dir := newHelloProject(t)
	out, _ := mustRun(t, dir, "doctor")
	if !strings.Contains(out, "no problems found") {
		t.Fatalf("doctor on a clean project:\n%s", out)
	}

	ork := filepath.Join(dir, ".ork")
	broken := filepath.Join(ork, "runs", "broken.json")
	writeFile(t, broken, "{\n  \"id\": \"broken\",\n  \"status\": \n", 0o644)
	temp := filepath.Join(ork, "workflows", ".tmp-2147483646-7")
	writeFile(t, temp, "{", 0o644)
	id := runID(t, mustRunOut(t, dir, "trigger", "hello")) // no scheduler: stays pending

	stdout, stderr, code := run(t, dir, "doctor", "--json")
	if code != 1 {
		t.Fatalf("doctor with problems exited %d, want 1; stderr %s", code, stderr)
	}
	var ps []struct{ Kind, Path, What, Fix string }
	decodeJSON(t, "doctor --json", stdout, &ps)
	found := map[string]bool{}
	for _, p := range ps {
		if p.Fix == "" {
			t.Errorf("problem without a fix: %+v", p)
		}
		switch {
		case p.Kind == "damaged" && strings.HasSuffix(broken, p.Path) && strings.Contains(p.What, "line 4, column 1"):
			found["damaged"] = true
		case p.Kind == "temp" && strings.HasSuffix(temp, p.Path):
			found["temp"] = true
		case p.Kind == "unfinished" && strings.Contains(p.What, id) && strings.Contains(p.Fix, "ork run"):
			found["unfinished"] = true
		}
	}
	for _, k := range []string{"damaged", "temp", "unfinished"} {
		if !found[k] {
			t.Errorf("doctor did not report the %s file; got %+v", k, ps)
		}
	}
	if _, err := os.Stat(temp); err != nil {
		t.Errorf("doctor removed a file: %v", err)
	}

	// ork status reports the damaged run with its position and goes on.
	stdout, stderr, code = run(t, dir, "status", "--json")
	if code != 0 || !strings.Contains(stderr, "broken.json: line 4, column 1") {
		t.Fatalf("status with a damaged run: exit %d, stderr %q", code, stderr)
	}
	var runs []map[string]any
	if err := json.Unmarshal([]byte(stdout), &runs); err != nil || len(runs) != 2 || runs[0]["id"] != "broken" || runs[0]["status"] != "damaged" || runs[1]["id"] != id {
		t.Fatalf("status --json = %s (%v), want the damaged run listed as damaged, and the good run", stdout, err)
	}
	// ork validate names the run file's problem too.
	_, stderr, code = run(t, dir, "validate", broken)
	if code != 1 || !strings.Contains(stderr, "line 4, column 1") {
		t.Fatalf("validate of a damaged run: exit %d, stderr %q", code, stderr)
	}
}

func mustRunOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, _ := mustRun(t, dir, args...)
	return out
}
