package main

import (
	"bufio"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Percentiles summarizes a latency distribution, in milliseconds.
type Percentiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P95 float64 `json:"p95_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// Summarize returns the percentiles of ds, or nil when ds is empty. It
// sorts ds.
func Summarize(ds []time.Duration) *Percentiles {
	if len(ds) == 0 {
		return nil
	}
	slices.Sort(ds)
	return &Percentiles{
		N:   len(ds),
		P50: ms(Percentile(ds, 50)),
		P95: ms(Percentile(ds, 95)),
		P99: ms(Percentile(ds, 99)),
		Max: ms(ds[len(ds)-1]),
	}
}

// Percentile returns the p-th percentile of sorted by the nearest-rank
// method: the smallest value that at least p% of the values do not exceed.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

func ms(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }

// round3 keeps three decimals, so the JSON stays readable.
func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

// CPU is CPU time used, in seconds.
type CPU struct {
	User float64 `json:"user_s"`
	Sys  float64 `json:"sys_s"`
}

// Total is user plus system time.
func (c CPU) Total() float64 { return c.User + c.Sys }

func (c CPU) sub(o CPU) CPU { return CPU{User: round3(c.User - o.User), Sys: round3(c.Sys - o.Sys)} }

// cpuMeter measures the CPU time of this process and its children over an
// interval.
type cpuMeter struct {
	self, children CPU
	wall           time.Time
}

func startCPU() cpuMeter {
	return cpuMeter{self: cpuNow(rusageSelf), children: cpuNow(rusageChildren), wall: time.Now()}
}

// stop returns the CPU time of this process and of its children since
// start, and the wall time.
func (m cpuMeter) stop() (self, children CPU, wall time.Duration) {
	return cpuNow(rusageSelf).sub(m.self), cpuNow(rusageChildren).sub(m.children), time.Since(m.wall)
}

// resetPeakRSS resets this process's peak resident set size (VmHWM) to its
// current size, so a later peakRSS covers what follows only. It reports
// whether the kernel allowed it.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// peakRSS returns this process's peak resident set size (VmHWM) in bytes,
// or 0 where /proc does not tell.
func peakRSS() int64 { return procStatus("VmHWM:") }

// currentRSS returns this process's resident set size (VmRSS) in bytes.
func currentRSS() int64 { return procStatus("VmRSS:") }

func procStatus(key string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, key); ok {
			fields := strings.Fields(rest)
			if len(fields) == 0 {
				return 0
			}
			kb, err := strconv.ParseInt(fields[0], 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}
