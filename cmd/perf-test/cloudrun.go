//go:build cloudrun

package main

import (
	"errors"
	"os"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/exec/cloudrun"
	"github.com/ork-run/ork/exec/cloudrun/cloudruntest"
	"github.com/ork-run/ork/model"
)

// credentialsEnv is where Application Default Credentials look for a key
// file.
const credentialsEnv = "GOOGLE_APPLICATION_CREDENTIALS"

// cloudRunFake is the fake Cloud Run v2 service of a "cloudrun" workload,
// serving in this process, and the executor that talks to it.
type cloudRunFake struct {
	srv  *cloudruntest.Server
	exec *cloudrun.Executor
	cfg  CloudRunConfig

	oldCreds   string
	hadOldCred bool
}

// registerCloudRun registers ork's Cloud Run executor with mgr, pointed at
// the workload's fake service, which it starts the first time: the job of
// the workflows, whose executions run for task_duration, and a
// service-account key in the harness's directory that
// GOOGLE_APPLICATION_CREDENTIALS names while the harness lives, so that
// the executor uses the real credential code (tokens granted by the
// fake's token endpoint).
func (h *harness) registerCloudRun(mgr *exec.Manager, updates chan exec.StatusUpdate) error {
	if h.cr == nil {
		cfg := CloudRunConfig{}
		if h.cfg.CloudRun != nil {
			cfg = *h.cfg.CloudRun
		}
		cfg = cfg.withDefaults()
		if cfg.PollInterval == 0 {
			cfg.PollInterval = Duration(cloudrun.DefaultPollInterval)
		}
		srv := cloudruntest.New()
		key, err := srv.WriteKey(h.root)
		if err != nil {
			srv.Close()
			return errors.New("cloudrun: write the fake service's key: " + err.Error())
		}
		srv.AddJob(cfg.Project, cfg.Region, cfg.Job, cloudruntest.Job{Duration: h.cfg.TaskDuration.std()})
		srv.SetGetLatency(cfg.GetLatency.std())
		f := &cloudRunFake{srv: srv, cfg: cfg}
		f.oldCreds, f.hadOldCred = os.LookupEnv(credentialsEnv)
		os.Setenv(credentialsEnv, key)
		h.cr = f
	}
	h.cr.exec = cloudrun.New(cloudrun.Config{
		Updates:                   updates,
		Endpoint:                  h.cr.srv.URL,
		PollInterval:              h.cr.cfg.PollInterval.std(),
		MaxConcurrentStatusChecks: h.cfg.Scheduler.Sched().MaxConcurrentStatusChecks,
		Logger:                    h.log,
	})
	mgr.Register(model.ExecutorCloudRun, h.cr.exec)
	return nil
}

// onCloudRunClose, when set, gets the fake service's counters as it
// closes: all the requests it ever answered.
var onCloudRunClose func(cloudRunCounts)

// close stops the fake service and puts the credentials variable back.
func (f *cloudRunFake) close() {
	if f == nil {
		return
	}
	if onCloudRunClose != nil {
		onCloudRunClose(f.counts())
	}
	f.srv.Close()
	if f.hadOldCred {
		os.Setenv(credentialsEnv, f.oldCreds)
	} else {
		os.Unsetenv(credentialsEnv)
	}
}

// counts returns the requests the fake has answered and the status checks
// the current executor has sent.
func (f *cloudRunFake) counts() cloudRunCounts {
	if f == nil {
		return cloudRunCounts{}
	}
	c := f.srv.Counts()
	out := cloudRunCounts{Runs: c.Runs, Gets: c.Gets, TokenGrants: c.TokenGrants, MaxGetsInFlight: c.MaxGetsInFlight}
	if f.exec != nil {
		out.ExecutorChecks = f.exec.Stats().StatusChecks
	}
	return out
}

// job names the job the workflows run.
func (f *cloudRunFake) job() CloudRunConfig { return f.cfg }
