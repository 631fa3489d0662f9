package sched_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/filedb"
	"github.com/ork-run/ork/sched"
)

// TestConfigValidate checks that a negative setting is an error naming its
// field (it silently became the default before), and that zero values and
// the documented negative ones are allowed.
func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		cfg   sched.Config
		field string
	}{
		{sched.Config{PollInterval: -time.Second}, "PollInterval"},
		{sched.Config{MaxTasksPerBatch: -1}, "MaxTasksPerBatch"},
		{sched.Config{MaxConcurrentDispatches: -1}, "MaxConcurrentDispatches"},
		{sched.Config{MaxConcurrentStatusChecks: -5}, "MaxConcurrentStatusChecks"},
		{sched.Config{MaxRunningTasks: -2}, "MaxRunningTasks"},
	} {
		err := tt.cfg.Validate()
		var fe *sched.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field || !strings.Contains(err.Error(), "sched.Config."+tt.field) {
			t.Errorf("%+v: Validate() = %v, want a FieldError naming %s", tt.cfg, err, tt.field)
		}
	}
	err := sched.Config{MaxTasksPerBatch: -1, MaxRunningTasks: -1}.Validate()
	if err == nil || !strings.Contains(err.Error(), "MaxTasksPerBatch") || !strings.Contains(err.Error(), "MaxRunningTasks") {
		t.Errorf("two bad fields: %v, want both named", err)
	}
	for _, ok := range []sched.Config{{}, {ShutdownGrace: -1, MaxInterruptions: -1}, sched.Config{}.WithDefaults()} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%+v: Validate() = %v, want nil", ok, err)
		}
	}
}

// TestNewRefusesBadConfig checks that a scheduler made with a bad Config
// runs nothing: Run returns the validation error at once.
func TestNewRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	if err := filedb.Init(dir); err != nil {
		t.Fatal(err)
	}
	db, err := filedb.Open(dir, filedb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := sched.New(db, exec.NewManager(make(chan exec.StatusUpdate, 1)), sched.Config{MaxConcurrentDispatches: -3})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = s.Run(ctx)
	var fe *sched.FieldError
	if !errors.As(err, &fe) || fe.Field != "MaxConcurrentDispatches" {
		t.Fatalf("Run = %v, want the FieldError for MaxConcurrentDispatches", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Run did not return at once")
	}
}
