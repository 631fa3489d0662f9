//go:build !unix

package main

const (
	rusageSelf = iota
	rusageChildren
)

// cpuNow returns zero where getrusage(2) does not exist: the CPU figures
// of a report made there are not measured.
func cpuNow(int) CPU { return CPU{} }
