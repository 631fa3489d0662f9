//go:build unix

package main

import "syscall"

const (
	rusageSelf     = syscall.RUSAGE_SELF
	rusageChildren = syscall.RUSAGE_CHILDREN
)

// cpuNow returns the CPU time of this process (RUSAGE_SELF) or of its
// waited-for children and their descendants (RUSAGE_CHILDREN).
func cpuNow(who int) CPU {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return CPU{}
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return CPU{User: tv(ru.Utime), Sys: tv(ru.Stime)}
}
