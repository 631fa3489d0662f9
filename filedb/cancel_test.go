package filedb

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ork-run/ork/model"
)

// A cancel requested by another process that the scheduler did not apply
// before the run ended (it was stopping) is not applied to a retry of the
// run: the scheduler's handle, which never saw the request, sees none
// after the retry.
func TestRetryDropsACancelRequestedBeforeTheEnd(t *testing.T) {
	ctx := context.Background()
	dir := initDir(t)
	sched, _ := openTest(t, dir)
	r := mustCreateRun(t, sched, testWorkflow("hello", 1))
	if _, err := sched.CancelRequests(ctx); err != nil { // the scheduler's index
		t.Fatal(err)
	}
	if err := sched.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunRunning}}); err != nil {
		t.Fatal(err)
	}
	cli, _ := openTest(t, dir)
	if err := cli.RequestCancel(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if err := sched.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunFailed, Error: "1 of 1 tasks failed"}}); err != nil {
		t.Fatal(err)
	}
	if err := cli.ReopenRun(ctx, r.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*DB{sched, cli} {
		if got, err := d.CancelRequests(ctx); err != nil || len(got) != 0 {
			ents, _ := os.ReadDir(filepath.Join(dir, RunsDir))
			t.Fatalf("CancelRequests (handle %p) after the run ended and was retried = %v, %v; want none; runs/: %v", d, got, err, ents)
		}
	}
}
