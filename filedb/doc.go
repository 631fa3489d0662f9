// Package filedb is ork's default Database: plain JSON files in a project
// directory, readable and editable by hand, safe against crashes.
//
// # Layout
//
//	.ork/
//	  workflows/<name>.json          definitions, written by ork or by hand
//	  runs/<run_id>.json             one record per run
//	  tasks/<run_id>/<name>.<i>.json one record per task, grouped by run
//	  logs/<run_id>/...              task output, written by the executor
//	  schedules/<name>.json          how far a schedule has got; <name>.paused while paused (schedule.go)
//	  scheduler.lock                 flock'ed by the one running scheduler
//	  runs.lock                      flock'ed by a retry or a prune of finished runs
//	  .spare/                        spare inodes reused by later writes (not records)
//	  ended-runs                     runs the index found ended, by file version: a hint (ended.go)
//
// # Writes
//
// Every write is atomic and durable, the Maildir way: the new contents go to
// a temporary file ".tmp-<pid>-<n>" in the target's directory, the data is
// made durable, the temporary file is renamed over the target, and the
// directory is synced so the rename itself survives a crash. A reader sees
// the old file or the new one, never half of one. Nothing is written in place.
//
// A batch (the scheduler's unit of work) is a group commit: all temporary
// files are written, one syncfs(2) makes all of them durable together, then
// all are renamed, then each touched directory is synced once. One status
// change then costs far less than one fsync.
//
// # Who writes what
//
// The scheduler owns run and task records once a run exists. Other
// processes (the CLI, the web UI) only create new files — a pending run, a
// workflow — and never rewrite a record the scheduler owns.
//
// # The scheduler's index
//
// The first scheduler-side call (PendingRuns, PendingTasks, CreateTasks,
// UpdateTasks, ...) loads an in-memory index of unfinished runs and their
// tasks, once. A run file that the list of ended runs (EndedFile) names in
// the version it has now is not read again: a start costs a stat of each
// run in the history, and a read of the new or changed ones. From then on
// the index is kept current by the DB's own writes, and learns of files
// written by other processes from fsnotify events on runs/ and workflows/;
// a rescan of runs/ at most once a second, only when the directory
// changed, is the safety net for lost events. The cost of a scheduler loop
// grows with the unfinished work, not with history.
//
// The index holds the whole record of an unfinished task only. A task that
// has finished never changes again: the index keeps its id (so that it is
// not created again) and its status in its run's counts, and ListTasks and
// StreamTasks read the records of a run with finished tasks from its files,
// as any other handle does. A run of 100,000 tasks costs the scheduler a
// few megabytes of index, not one record per task (docs/PERFORMANCE.md).
// GetTask reads one task without the others: from the index if it is
// unfinished, else from its one file (gettask.go).
//
// # Damaged files
//
// A file that does not parse is reported with its path, line and column
// (once, through the logger), is left out, and is never overwritten; every
// other run goes on. The DB knows the size of every record it wrote or
// read: before it replaces a file of another size (changed behind its
// back) it reads it, and refuses to write over one that no longer parses.
//
// # One bad record
//
// A batch fails as a whole only when the disk fails (full, read-only). A
// record that fails on its own account — removed, damaged, its directory
// gone — fails alone: the rest of the batch is written, the method returns
// a *model.PartialError naming it, and the task is quarantined (never
// dispatched or created again by this DB), so its run waits for a person.
//
// # Retry and prune
//
// ReopenRun and Prune change finished runs, which have no other writer.
// They take an flock on runs.lock and read the run again under it, so they
// exclude each other across processes.
//
// # Durability tests
//
// Every sync, rename and link of a durable write goes through sysOps, a
// seam the tests record to check the order; strace_test.go checks the real
// system calls.
package filedb
