package filedb

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

// endedHistory makes n ended runs and one pending run in a new directory,
// and returns the directory, the ended runs and the pending one.
func endedHistory(t *testing.T, n int) (string, []*model.Run, *model.Run) {
	t.Helper()
	dir := initDir(t)
	d, _ := openTest(t, dir)
	var ended []*model.Run
	for i := range n {
		r := mustCreateRun(t, d, testWorkflow("done", i+1))
		finishRun(t, d, r, model.RunSuccess)
		ended = append(ended, r)
	}
	pending := mustCreateRun(t, d, testWorkflow("waiting", 1))
	d.Close()
	ageRuns(t, dir)
	return dir, ended, pending
}

// ageRuns sets the times of every run file in dir back an hour: a file is
// listed as ended only once its time has settled (endedSettle).
func ageRuns(t testing.TB, dir string) {
	t.Helper()
	runs := filepath.Join(dir, RunsDir)
	ents, err := os.ReadDir(runs)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	for _, e := range ents {
		if err := os.Chtimes(filepath.Join(runs, e.Name()), old, old); err != nil {
			t.Fatal(err)
		}
	}
}

// A run file changed less than endedSettle before the scan is not listed:
// a file system that keeps times to the second could give its next
// version, of the same size, on the same spare inode, the same stamp.
// Once its time has settled it is listed.
func TestEndedListWaitsForTheFileToSettle(t *testing.T) {
	dir := initDir(t)
	d, _ := openTest(t, dir)
	r := mustCreateRun(t, d, testWorkflow("done", 1))
	finishRun(t, d, r, model.RunSuccess)
	d.Close()
	pendingIDs(t, dir)
	if data, _ := os.ReadFile(filepath.Join(dir, EndedFile)); strings.Contains(string(data), r.ID) {
		t.Errorf("a run file changed a moment ago was listed as ended:\n%s", data)
	}
	ageRuns(t, dir)
	pendingIDs(t, dir)
	if data, _ := os.ReadFile(filepath.Join(dir, EndedFile)); !strings.Contains(string(data), r.ID) {
		t.Errorf("a run file an hour old was not listed as ended:\n%s", data)
	}
}

// A line of the list that does not parse costs the read of its run only,
// and a run whose name no line can hold (a space, by hand) is not listed.
func TestEndedListLineByLine(t *testing.T) {
	dir, ended, _ := endedHistory(t, 2)
	pendingIDs(t, dir)
	p := filepath.Join(dir, EndedFile)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, append(data, "a bad line\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	d, _ := openTest(t, dir)
	list := d.readEnded()
	d.Close()
	for _, r := range ended {
		if _, ok := list[r.ID]; !ok {
			t.Errorf("the list with one bad line lost %s", r.ID)
		}
	}
	d.writeEnded(map[string]fileStamp{"with space": {size: 1}, ended[0].ID: list[ended[0].ID]})
	d2, _ := openTest(t, dir)
	list = d2.readEnded()
	if _, ok := list["with"]; ok || len(list) != 1 {
		t.Errorf("list = %v, want only %s", list, ended[0].ID)
	}
}

// pendingIDs opens dir as a new scheduler's DB and returns the ids of its
// pending runs, and its logs.
func pendingIDs(t *testing.T, dir string) (map[string]bool, string) {
	t.Helper()
	d, logs := openTest(t, dir)
	rs, err := d.PendingRuns(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	out := map[string]bool{}
	for _, r := range rs {
		out[r.ID] = true
	}
	return out, logs.String()
}

// The index lists the ended runs it read; a later start trusts a listed
// file only while it is the version listed, and reads it whole again once
// it changed: rewritten with a cut tail (reported), or edited in place to
// pending (started).
func TestEndedListIsTrustedOnlyForTheSameFile(t *testing.T) {
	dir, ended, pending := endedHistory(t, 3)
	got, _ := pendingIDs(t, dir)
	if len(got) != 1 || !got[pending.ID] {
		t.Fatalf("pending runs = %v, want only %s", got, pending.ID)
	}
	data, err := os.ReadFile(filepath.Join(dir, EndedFile))
	if err != nil {
		t.Fatalf("no list of ended runs after the index was built: %v", err)
	}
	for _, r := range ended {
		if !strings.Contains(string(data), r.ID+" ") {
			t.Errorf("the list of ended runs misses %s:\n%s", r.ID, data)
		}
	}
	if strings.Contains(string(data), pending.ID) {
		t.Errorf("the list of ended runs has the pending run %s:\n%s", pending.ID, data)
	}

	runFile := func(r *model.Run) string { return filepath.Join(dir, RunsDir, r.ID+".json") }
	// Rewritten (a new inode) with its tail cut off.
	old, _ := os.ReadFile(runFile(ended[0]))
	cut := old[:strings.Index(string(old), `"workflow"`)+15]
	if err := os.WriteFile(runFile(ended[0])+".new", cut, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(runFile(ended[0])+".new", runFile(ended[0])); err != nil {
		t.Fatal(err)
	}
	// Edited in place, the same size: reopened by hand.
	f, err := os.OpenFile(runFile(ended[1]), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := os.ReadFile(runFile(ended[1]))
	i := strings.Index(string(body), `"status": "success"`)
	if _, err := f.WriteAt([]byte(`"status": "pending"`), int64(i)); err != nil {
		t.Fatal(err)
	}
	f.Close()

	got, logs := pendingIDs(t, dir)
	if !got[ended[1].ID] || !got[pending.ID] || len(got) != 2 {
		t.Errorf("pending runs = %v, want %s (edited in place) and %s", got, ended[1].ID, pending.ID)
	}
	if !strings.Contains(logs, "damaged") || !strings.Contains(logs, ended[0].ID) {
		t.Errorf("the run file rewritten with a cut tail was not reported:\n%s", logs)
	}
}

// A listed file that is the version listed is not read at all: the list
// is what spares a start the history. (The list here says so of a pending
// run, which the scheduler then leaves alone: it is only ever written of
// runs read whole and found ended.)
func TestEndedListSparesTheRead(t *testing.T) {
	dir, _, pending := endedHistory(t, 2)
	pendingIDs(t, dir) // writes the list
	ents, err := os.ReadDir(filepath.Join(dir, RunsDir))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := openTest(t, dir)
	list := d.readEnded()
	d.Close()
	for _, e := range ents {
		if e.Name() == pending.ID+".json" {
			st, _ := stampOf(e)
			list[pending.ID] = st
		}
	}
	d.writeEnded(list)
	got, _ := pendingIDs(t, dir)
	if got[pending.ID] {
		t.Errorf("the run listed as ended, its file unchanged, was read anyway")
	}
}

// A list that does not parse is only slower: the history is read whole,
// and the list written anew.
func TestDamagedEndedListIsIgnored(t *testing.T) {
	dir, ended, pending := endedHistory(t, 2)
	if err := os.WriteFile(filepath.Join(dir, EndedFile), []byte("ork ended runs v1: id size mtime_ns inode\nnot a line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, logs := pendingIDs(t, dir)
	if len(got) != 1 || !got[pending.ID] {
		t.Errorf("pending runs = %v, want only %s", got, pending.ID)
	}
	if strings.Contains(logs, EndedFile) {
		t.Errorf("the damaged list was reported; it is a hint, not a record:\n%s", logs)
	}
	data, _ := os.ReadFile(filepath.Join(dir, EndedFile))
	for _, r := range ended {
		if !strings.Contains(string(data), r.ID+" ") {
			t.Errorf("the list written anew misses %s:\n%s", r.ID, data)
		}
	}
}

// `ork retry` reopens an ended run by rewriting its file: the next start
// sees it pending, though the list still names its old version.
func TestEndedListAndRetry(t *testing.T) {
	dir, ended, pending := endedHistory(t, 2)
	pendingIDs(t, dir) // writes the list
	d, _ := openTest(t, dir)
	if err := d.ReopenRun(context.Background(), ended[1].ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	d.Close()
	got, _ := pendingIDs(t, dir)
	if !got[ended[1].ID] || !got[pending.ID] || len(got) != 2 {
		t.Errorf("pending runs = %v, want the reopened %s and %s", got, ended[1].ID, pending.ID)
	}
}
