package sched

// WritesBack is what the scheduler logs when a write succeeds after one
// failed (the disk tests look for it).
const WritesBack = writesBack

// Waiters is how many WaitRun channels wait for run runID.
func (s *Scheduler) Waiters(runID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.waiters[runID])
}
