// Package model holds ork's core types — Workflow, Run, Task and their
// statuses — their validation, the decoders for their JSON files, and the
// Database interface that every storage backend implements.
//
// The state-transition rules live here too (ApplyTaskUpdate, ApplyRunUpdate),
// so that every backend enforces the same contract: a terminal status is
// never overwritten, and an update from an old attempt never touches a new
// one.
//
// model must never import another package of ork, and never do I/O.
package model
