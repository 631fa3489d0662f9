//go:build unix

package exec

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ork-run/ork/model"
)

// TestProcessParamNames checks which parameters get a variable of their
// own: not those whose names are not variable names, and never one that
// would replace PATH, HOME or another reserved variable. Each left out is
// named at the top of the log, and all are in ORK_PARAMS.
func TestProcessParamNames(t *testing.T) {
	f := newFixture(t, func(c *ProcessConfig) {
		c.Env = []string{"PATH=/usr/bin:/bin", "HOME=/home/me", "LANG=C.UTF-8", "OTHER=base"}
	})
	f.script(t, "env.sh", "env")
	params := map[string]any{
		"my-key":     "dash",
		"a.b":        "dot",
		"9lives":     "digit",
		"PATH":       "/evil",
		"HOME":       "/evil",
		"LANG":       "evil",
		"ORK_X":      "x",
		"LD_PRELOAD": "/evil.so",
		"OTHER":      "param",
		"good_1":     "ok",
	}
	tw := newTask("env.sh", "task-names", 0)
	tw.Task.Params = params
	if _, _, final := f.run(t, tw); final.Status != model.TaskSuccess {
		t.Fatalf("final %+v", final)
	}
	log := f.readLog(t, tw)
	env := envOf(log)
	for k, v := range map[string]string{"PATH": "/usr/bin:/bin", "HOME": "/home/me", "LANG": "C.UTF-8", "OTHER": "param", "good_1": "ok"} {
		if env[k] != v {
			t.Errorf("%s=%q, want %q", k, env[k], v)
		}
	}
	for _, k := range []string{"my-key", "a.b", "9lives", "ORK_X", "LD_PRELOAD"} {
		if v, ok := env[k]; ok {
			t.Errorf("%s=%q is exported, want it absent", k, v)
		}
	}
	for _, k := range []string{"my-key", "a.b", "9lives", "PATH", "HOME", "LANG", "ORK_X", "LD_PRELOAD"} {
		note := fmt.Sprintf("[ork: parameter %q is not exported as a variable", k)
		if !strings.Contains(log, note) {
			t.Errorf("the log does not say why %s got no variable; log:\n%s", k, log)
		}
	}
	if !strings.HasPrefix(log, "[ork: ") {
		t.Errorf("the notes are not at the top of the log:\n%s", log)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(env["ORK_PARAMS"]), &got); err != nil || len(got) != len(params) {
		t.Errorf("ORK_PARAMS %q does not hold all %d params (%v)", env["ORK_PARAMS"], len(params), err)
	}
}

// TestProcessLargeParams checks that parameters too large for the
// environment go by file: ORK_PARAMS is empty, ORK_PARAMS_FILE holds them,
// and the log says so.
func TestProcessLargeParams(t *testing.T) {
	f := newFixture(t, nil)
	f.script(t, "big.sh", `echo "P=[$ORK_PARAMS]"; echo "B=${blob-unset}"; echo "S=$small"; cat "$ORK_PARAMS_FILE"`)
	blob := strings.Repeat("x", MaxParamsEnv+1)
	tw := newTask("big.sh", "task-big", 0)
	tw.Task.Params = map[string]any{"blob": blob, "small": "s", "n": json.Number("12345678901234567890")}
	if _, _, final := f.run(t, tw); final.Status != model.TaskSuccess {
		t.Fatalf("final %+v", final)
	}
	log := f.readLog(t, tw)
	for _, want := range []string{"P=[]\n", "B=unset\n", "S=s\n", `"blob":"` + blob + `"`, `"n":12345678901234567890`,
		"ORK_PARAMS is empty, ORK_PARAMS_FILE names a file holding them", `parameter "blob" is not exported`} {
		if !strings.Contains(log, want) {
			t.Errorf("log does not contain %.80q", want)
		}
	}
}

// TestProcessEnvironmentTooLarge checks that a parameter set the system
// cannot pass fails the start with a message saying so, written to the log
// too (where `ork logs` finds it).
func TestProcessEnvironmentTooLarge(t *testing.T) {
	f := newFixture(t, nil)
	f.script(t, "env.sh", "true")
	params := map[string]any{}
	for i := range 200 { // 200 × 60 KiB: over any system's limit
		params[fmt.Sprintf("p%03d", i)] = strings.Repeat("y", 60<<10)
	}
	tw := newTask("env.sh", "task-e2big", 0)
	tw.Task.Params = params
	_, err := f.e.Execute(context.Background(), tw)
	if err == nil || !strings.Contains(err.Error(), "its environment is too large for the system") {
		t.Fatalf("Execute: %v, want an error saying the environment is too large", err)
	}
	if log := f.readLog(t, tw); !strings.Contains(log, "[ork: the task did not start: ") || !strings.Contains(log, "environment is too large") {
		t.Errorf("the log does not say why the task did not start:\n%.300s", log)
	}
}

// TestProcessScriptHeadProblems checks that a script saved with Windows
// line endings, or with a byte order mark, is refused with an error that
// names the problem.
func TestProcessScriptHeadProblems(t *testing.T) {
	f := newFixture(t, nil)
	writeFile(t, filepath.Join(f.scripts, "crlf.sh"), "#!/bin/sh\r\necho hi\r\n", 0o755)
	writeFile(t, filepath.Join(f.scripts, "bom.sh"), "\xef\xbb\xbf#!/bin/sh\necho hi\n", 0o755)
	for job, want := range map[string]string{
		"crlf.sh": "carriage return in the #! line",
		"bom.sh":  "UTF-8 byte order mark (BOM)",
	} {
		_, err := f.e.Execute(context.Background(), newTask(job, "task-"+job, 0))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Execute error %v, want it to say %q", job, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(f.scripts, "crlf.sh")); err != nil {
		t.Fatal(err)
	}
}
