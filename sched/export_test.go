package sched

// WritesBack is what the scheduler logs when a write succeeds after one
// failed (the disk tests look for it).
const WritesBack = writesBack
