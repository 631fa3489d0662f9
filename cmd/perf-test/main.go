// Command perf-test measures ork the way its users drive it: the file
// database and the scheduler as shipped, running in this process, fed
// runs through the database, with either real processes or a no-op
// executor. It prints throughput, latency percentiles, the scheduler's
// memory and CPU, and for process workloads the same work done by
// `xargs -P N` as a baseline.
//
// Usage:
//
//	perf-test [flags] NAME|FILE     a workload: perf-configs/NAME.json, or a file
//	perf-test -list                 the workloads in perf-configs/
//	perf-test -markdown FILE...     Markdown tables of results saved with -json
//
// See docs/PERFORMANCE.md for the workloads and the figures.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == statusProbeArg {
		return statusProbeMain(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("perf-test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		configFile = fs.String("config", "", "workload `file` (instead of a name)")
		asJSON     = fs.Bool("json", false, "print one JSON object instead of the table")
		dir        = fs.String("dir", "", "make the ork directory under `DIR` (default: a new temporary directory)")
		keep       = fs.Bool("keep", false, "keep the ork directory afterwards")
		idle       = fs.Float64("idle", -1, "idle phase of `SECONDS` after the workload (overrides idle_seconds; 0 turns it off)")
		noBaseline = fs.Bool("no-baseline", false, "skip the xargs baseline of process workloads")
		timeout    = fs.Duration("timeout", 30*time.Minute, "give up after this long")
		strict     = fs.Bool("strict", false, "exit 3 when a target is not met")
		list       = fs.Bool("list", false, "list the workloads in perf-configs/")
		markdown   = fs.Bool("markdown", false, "print Markdown tables of the JSON results named as arguments")
		quiet      = fs.Bool("quiet", false, "do not show the scheduler's warnings")
		repeat     = fs.Int("repeat", 1, "measure `N` times and report the round of median total time (a noisy machine)")
		cpuProfile = fs.String("cpuprofile", "", "write a CPU profile of the whole measurement to `file`")
		memProfile = fs.String("memprofile", "", "write a heap profile, taken at the end of the main phase, to `file`")
		dbURL      = fs.String("database-url", "", "run on PostgreSQL at `URL` (a perf-test built with -tags postgres), in a schema of its own, instead of the file database")
	)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: perf-test [flags] NAME|FILE\n       perf-test -list\n       perf-test -markdown RESULT.json...\n\nflags:\n")
		fs.PrintDefaults()
	}
	// Flags may come before or after the workload.
	var pos []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}

	switch {
	case *list:
		return listConfigs(stdout, stderr)
	case *markdown:
		return markdownOf(pos, stdout, stderr)
	}

	path := *configFile
	switch {
	case path != "" && len(pos) > 0:
		fmt.Fprintln(stderr, "perf-test: give a workload name or -config, not both")
		return 2
	case path == "" && len(pos) != 1:
		fs.Usage()
		return 2
	case path == "":
		p, err := ResolveConfig(pos[0])
		if err != nil {
			fmt.Fprintln(stderr, "perf-test:", err)
			return 2
		}
		path = p
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		fmt.Fprintln(stderr, "perf-test:", err)
		return 2
	}
	if *idle >= 0 {
		cfg.IdleSeconds = *idle
	}
	if *noBaseline {
		f := false
		cfg.Baseline = &f
	}
	logs := stderr
	if *quiet {
		logs = io.Discard
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "perf-test:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "perf-test:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	var rounds []*Result
	for i := range max(*repeat, 1) {
		opts := Options{Dir: *dir, Keep: *keep, Timeout: *timeout, Logs: logs, DatabaseURL: *dbURL}
		if i == 0 {
			opts.MemProfile = *memProfile
		}
		r, err := Measure(ctx, cfg, opts)
		if err != nil {
			fmt.Fprintf(stderr, "perf-test: %s: %v\n", cfg.Name, err)
			return 1
		}
		rounds = append(rounds, r)
	}
	res := medianRound(rounds)
	res.ConfigFile = path
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintln(stderr, "perf-test:", err)
			return 1
		}
	} else if err := WriteTable(stdout, res); err != nil {
		fmt.Fprintln(stderr, "perf-test:", err)
		return 1
	}
	if *strict {
		for _, t := range res.Targets {
			if t.Met != nil && !*t.Met {
				return 3
			}
		}
	}
	return 0
}

// statusProbeMain is the status probe's process (see statusProbeArg).
func statusProbeMain(args []string, stdout, stderr io.Writer) int {
	if len(args) < 1 || len(args) > 2 {
		fmt.Fprintf(stderr, "usage: perf-test %s DIR [RUN]\n", statusProbeArg)
		return 2
	}
	runID := ""
	if len(args) == 2 {
		runID = args[1]
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	p, err := runStatusProbe(context.Background(), args[0], runID, log)
	if err != nil {
		fmt.Fprintln(stderr, "perf-test:", err)
		return 1
	}
	if err := json.NewEncoder(stdout).Encode(p); err != nil {
		return 1
	}
	return 0
}

// medianRound returns the round of median total time, noting the others.
func medianRound(rs []*Result) *Result {
	if len(rs) == 1 {
		return rs[0]
	}
	totals := make([]float64, len(rs))
	for i, r := range rs {
		totals[i] = r.TotalSeconds
	}
	sorted := slices.Clone(rs)
	slices.SortStableFunc(sorted, func(a, b *Result) int {
		switch {
		case a.TotalSeconds < b.TotalSeconds:
			return -1
		case a.TotalSeconds > b.TotalSeconds:
			return 1
		}
		return 0
	})
	m := sorted[(len(sorted)-1)/2]
	m.Rounds = len(rs)
	m.RoundsTotalSeconds = totals
	m.Notes = append(m.Notes, fmt.Sprintf("the round of median total time of %d rounds (total times %v s)", len(rs), totals))
	return m
}

func listConfigs(stdout, stderr io.Writer) int {
	dirs := configDirs()
	if len(dirs) == 0 {
		fmt.Fprintf(stderr, "perf-test: no %s directory in the current directory or its parents\n", configDirName)
		return 1
	}
	files, _ := filepath.Glob(filepath.Join(dirs[0], "*.json"))
	slices.Sort(files)
	for _, f := range files {
		c, err := LoadConfig(f)
		if err != nil {
			fmt.Fprintf(stdout, "%-10s  error: %v\n", strings.TrimSuffix(filepath.Base(f), ".json"), err)
			continue
		}
		fmt.Fprintf(stdout, "%-10s  %s\n", strings.TrimSuffix(filepath.Base(f), ".json"), c.Description)
	}
	return 0
}

func markdownOf(files []string, stdout, stderr io.Writer) int {
	if len(files) == 0 {
		fmt.Fprintln(stderr, "perf-test: -markdown needs JSON result files")
		return 2
	}
	var rs []*Result
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(stderr, "perf-test:", err)
			return 1
		}
		var r Result
		if err := json.Unmarshal(data, &r); err != nil {
			fmt.Fprintf(stderr, "perf-test: %s: %v\n", f, err)
			return 1
		}
		rs = append(rs, &r)
	}
	if err := WriteMarkdown(stdout, rs); err != nil {
		fmt.Fprintln(stderr, "perf-test:", err)
		return 1
	}
	return 0
}
