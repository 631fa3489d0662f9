//go:build !linux

package exec

// killAttempt needs /proc; elsewhere Stop relies on the process group.
func killAttempt(logKey, taskID string, attempt int) int { return 0 }

func killAttempts(logKey string, attempts map[attemptKey]bool) int { return 0 }
