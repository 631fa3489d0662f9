//go:build cloudrun

package cloudrun_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ork-run/ork/exec/cloudrun"
	"github.com/ork-run/ork/exec/cloudrun/cloudruntest"
	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/sched"
)

// BenchmarkThousandTasks is the Cloud Run workload of docs/PERFORMANCE.md:
// one run of 1,000 tasks, each an execution of the fake Cloud Run service
// that runs for 2s, through the real scheduler on the file database, with
// real credentials (a service-account key whose tokens the fake grants).
// It reports the tasks finished per second (from the trigger to the run's
// end), and the status checks (GET of an execution) per second and per
// task.
// The scheduler runs up to 1,000 tasks at once (Cloud Run runs them, not
// this machine). Each sub-benchmark sets the poll interval and the
// latency of the fake's GET; MaxConcurrentStatusChecks is the default, 50.
//
//	go test -tags cloudrun -run '^$' -bench ThousandTasks -benchtime 1x -count 5 ./exec/cloudrun
func BenchmarkThousandTasks(b *testing.B) {
	for _, c := range []struct {
		interval, latency time.Duration
	}{
		{time.Second, 0},
		{time.Second, 50 * time.Millisecond},
		{250 * time.Millisecond, 50 * time.Millisecond},
	} {
		b.Run(fmt.Sprintf("poll=%s/get-latency=%s", c.interval, c.latency), func(b *testing.B) {
			const n = 1000
			var tasks, checks float64
			var elapsed time.Duration
			for range b.N {
				b.StopTimer()
				fk := fake(b)
				fk.AddJob(project, region, "export", cloudruntest.Job{Duration: 2 * time.Second})
				fk.SetGetLatency(c.latency)
				p := newProject(b)
				w := p.workflow(&model.Workflow{Name: "export", JobName: "export", ExecutorType: model.ExecutorCloudRun,
					Project: project, Region: region, TaskCount: n})
				s, e := p.startWith(sched.Config{Logger: quiet, MaxRunningTasks: n},
					cloudrun.Config{PollInterval: c.interval, Logger: quiet})
				b.StartTimer()
				start := time.Now()
				r := p.wait(s, p.trigger(w, nil))
				d := time.Since(start)
				b.StopTimer()
				if r.Status != model.RunSuccess {
					b.Fatalf("run %+v", r)
				}
				cs := fk.Counts()
				if cs.Runs != n || e.Stats().StatusChecks != int64(cs.Gets) {
					b.Fatalf("fake counts %+v, executor %+v", cs, e.Stats())
				}
				elapsed += d
				tasks += n
				checks += float64(cs.Gets)
			}
			b.ReportMetric(tasks/elapsed.Seconds(), "tasks/s")
			b.ReportMetric(checks/elapsed.Seconds(), "checks/s")
			b.ReportMetric(checks/tasks, "checks/task")
		})
	}
}
