package exec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	osexec "os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ork-run/ork/model"
)

// ErrShutdown is returned by Execute once Shutdown has been called.
var ErrShutdown = errors.New("exec: the executor is shut down")

// DefaultKillGrace is how long Shutdown waits between SIGTERM and SIGKILL
// when ProcessConfig.KillGrace is zero.
const DefaultKillGrace = 5 * time.Second

// ProcessConfig configures a ProcessExecutor.
type ProcessConfig struct {
	// ScriptDir holds the scripts; a workflow's job_name is a path relative
	// to it. It is also the working directory of every script. Required.
	ScriptDir string
	// LogDir is the root of the log files: the output of an attempt goes
	// to LogPath(LogDir, run id, task name, task index, attempt). Required.
	LogDir string
	// Updates receives the status updates. Required.
	Updates chan<- StatusUpdate
	// KillGrace is how long Shutdown lets processes end after SIGTERM
	// before it sends SIGKILL. Zero means DefaultKillGrace; a negative
	// value means SIGKILL at once.
	KillGrace time.Duration
	// MaxLogBytes bounds each attempt's log: when the process ends, a
	// longer log keeps its last MaxLogBytes bytes and says how much was
	// cut. Zero means DefaultMaxLogBytes; negative means no bound.
	MaxLogBytes int64
	// Env is the base environment of every script. nil means the
	// environment of this process as it was when NewProcessExecutor ran.
	Env []string
}

// ProcessExecutor runs each task attempt as a local process:
// {ScriptDir}/{job_name}, executed directly (no shell), so a script needs a
// #! line and the execute bit.
//
// # Environment
//
// A script sees the base environment (ProcessConfig.Env), then each
// top-level parameter of the task as a variable of the same name, then:
//
//	ORK_RUN_ID      the run's id
//	ORK_TASK_ID     the task's id
//	ORK_TASK_NAME   the task's name
//	ORK_TASK_INDEX  the task's index, from 0
//	ORK_TASK_COUNT  the task_count of the task's node
//	ORK_WORKFLOW    the workflow's name
//	ORK_ATTEMPT     the attempt number, from 1
//	ORK_SCHEDULER   the id of the scheduler that dispatched the attempt
//	ORK_PARAMS      every parameter, as one JSON object ("{}" when none)
//	ORK_LOG_DIR     the log directory, absolute, symbolic links resolved
//	ORK_UPSTREAM    the outputs of the task's upstream tasks, a JSON object
//	                ("{}" when none): each upstream name maps to its
//	                output, an array by index for a fan-out, null if skipped
//	ORK_UPSTREAM_FILE for a task with upstream tasks, a file holding the
//	                same JSON (the one to read when it may be large: over
//	                64 KiB, ORK_UPSTREAM is empty)
//	ORK_OUTPUT      a file the task may write a JSON object to: its output
//	ORK_PARAMS_FILE when ORK_PARAMS would be over 64 KiB (MaxParamsEnv), a
//	                file holding it; ORK_PARAMS is then empty
//
// A parameter may override a base variable, except the ones the process
// relies on: PATH, HOME, USER, SHELL, TMPDIR, LANG, TZ, IFS and the others
// of reservedEnv, and every name starting with ORK_, LC_, LD_ or DYLD_.
// A parameter whose name is not a valid variable name ([A-Za-z_] then
// [A-Za-z0-9_]), is reserved, or whose value holds NUL or is over 64 KiB,
// gets no variable of its own: it is still in ORK_PARAMS, and a line at
// the top of the log says why.
//
// ORK_LOG_DIR names the project the process belongs to (one log directory
// per .ork directory); every process the script starts inherits it, which
// is how Sweep finds them after a crash.
// Parameter values are written as strings as they are, numbers in decimal
// (integral numbers never with an exponent: 20260101, not 2.0260101e+07),
// booleans as true or false, null as the empty string, and objects and
// arrays as compact JSON. Numbers keep the digits they were written with
// when they come as json.Number (as ork's decoders give them).
//
// # Output
//
// Standard output and standard error both go to one log file per attempt,
// LogPath(LogDir, ...), created (or truncated) before the process starts.
// The file is handed to the process itself: no goroutine copies output.
// Standard input is /dev/null.
//
// # Updates
//
// Execute returns as soon as the process has started, and never blocks on
// the updates channel. For every started attempt the executor then sends a
// running update (At is the start time) and, when the process has ended,
// exactly one terminal update:
//
//   - exit status 0: success, ExitCode 0, Output the JSON object the task
//     wrote to ORK_OUTPUT (failed instead if that is over 1 MiB or not an
//     object);
//   - exit status n: failed, ExitCode n, Error "exit status n";
//   - killed by signal s: failed, ExitCode 128+s (the shell's convention, so
//     SIGTERM gives 143 and SIGKILL 137), Error "killed by signal TERM".
//
// Both come from one goroutine per running process, in that order (once
// Shutdown has begun, a running update the channel does not take at once is
// left out). An attempt that did not start gets no update: Execute returns
// the error.
//
// # A task's processes end with the task
//
// Each script is the leader of a new process group. The rule: every
// process a task started ends when the task ends, however it ends.
//
//   - When the script exits (success or not), what is left of its process
//     group (a command run in the background, `sleep 120 &`) gets SIGKILL at
//     once, before the process is reaped, so the group id cannot have been
//     reused. Processes that left the group (`setsid`, a daemon) but still
//     carry the attempt's environment (ORK_LOG_DIR, ORK_TASK_ID,
//     ORK_ATTEMPT) are found in /proc and get SIGKILL within a moment (one
//     scan of /proc serves every attempt that ended meanwhile, at most one
//     scan per endScanInterval).
//   - A timeout or a cancel (Stop), and Shutdown, signal the whole group:
//     SIGTERM, then SIGKILL after the kill grace; then the script's exit
//     applies the rule above.
//   - When the scheduler dies, the kernel kills the script (the
//     parent-death signal; Linux sends it when the thread that started the
//     process exits, and Go ends threads only for goroutines that exit while
//     locked with runtime.LockOSThread, which ork does not do). What the
//     script started is killed by the next scheduler at start-up: Sweep
//     kills the processes that carry this executor's ORK_LOG_DIR and the
//     id of a task recorded as unfinished, and nothing else.
//
// A process that removed these variables from its environment (env -i) is
// not found by its environment; in the script's process group it is still
// killed.
//
// On Linux, a process is watched through a pidfd in the runtime's poller, so
// a running process costs one parked goroutine and no OS thread; the exit is
// noticed before the process is reaped, so a process group is never
// signalled after its id may have been reused.
//
// Execution names are "pid:<pid>". They are unique among running processes
// only, so Check matches the task id and attempt too.
type ProcessExecutor struct {
	scriptDir string
	logDir    string
	logKey    string // the value of ORK_LOG_DIR: logDir with symbolic links resolved
	updates   chan<- StatusUpdate
	killGrace time.Duration
	maxLog    int64
	log       *slog.Logger
	env       []string

	devNullOnce sync.Once
	devNull     *os.File // stdin of every script; nil if it could not be opened

	dirsMu sync.Mutex
	dirs   map[string]struct{} // log directories known to exist

	mu       sync.Mutex
	closing  bool
	byName   map[string]*attempt
	byTask   map[attemptKey]*attempt
	starting sync.WaitGroup // Execute calls between the closing check and registration
	// sweeping is held for writing by Sweep while it looks for processes to
	// kill, and for reading by start from just before a process starts until
	// it is registered: Sweep never mistakes a process being started for a
	// leftover.
	sweeping sync.RWMutex
	procs    sync.WaitGroup // registered processes that have not exited
	waiters  sync.WaitGroup // wait goroutines

	// ended holds the attempts whose script has exited: processes of theirs
	// that left the process group are looked for by endScan.
	endMu    sync.Mutex
	ended    map[attemptKey]bool
	endWake  chan struct{}
	endDone  chan struct{} // closed when endScan has returned (or never started)
	endOnce  sync.Once     // starts endScan
	endScans atomic.Int64  // scans of /proc made for ended attempts

	stopping chan struct{} // closed when Shutdown begins
	done     chan struct{} // closed when Shutdown stops sending updates
	finished chan struct{} // closed when Shutdown has returned
}

type attemptKey struct {
	taskID  string
	attempt int
}

// attempt is one process, started or being started: its name is "" until
// it has started.
type attempt struct {
	key     attemptKey
	name    string
	cmd     *osexec.Cmd
	running StatusUpdate
	output  string // the ORK_OUTPUT file
}

// maxCachedDirs bounds the set of log directories remembered as existing.
const maxCachedDirs = 4096

// NewProcessExecutor returns a ProcessExecutor configured by cfg. It panics
// if cfg.Updates is nil.
func NewProcessExecutor(cfg ProcessConfig) *ProcessExecutor {
	if cfg.Updates == nil {
		panic("exec: NewProcessExecutor: ProcessConfig.Updates is nil")
	}
	e := &ProcessExecutor{
		scriptDir: absDir(cfg.ScriptDir),
		logDir:    absDir(cfg.LogDir),
		updates:   cfg.Updates,
		killGrace: cfg.KillGrace,
		maxLog:    cfg.MaxLogBytes,
		log:       slog.Default(),
		env:       cfg.Env,
		dirs:      make(map[string]struct{}),
		byName:    make(map[string]*attempt),
		byTask:    make(map[attemptKey]*attempt),
		ended:     make(map[attemptKey]bool),
		endWake:   make(chan struct{}, 1),
		endDone:   make(chan struct{}),
		stopping:  make(chan struct{}),
		done:      make(chan struct{}),
		finished:  make(chan struct{}),
	}
	if e.killGrace == 0 {
		e.killGrace = DefaultKillGrace
	}
	if e.maxLog == 0 {
		e.maxLog = DefaultMaxLogBytes
	}
	if e.env == nil {
		e.env = os.Environ()
	}
	e.logKey = resolveDir(e.logDir)
	return e
}

// resolveDir returns dir (absolute) with symbolic links resolved, so that
// two names of one directory give one string. A directory that does not
// exist yet is resolved through its parent; failing that, dir is returned
// as it is.
func resolveDir(dir string) string {
	if dir == "" {
		return ""
	}
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		return r
	}
	if r, err := filepath.EvalSymlinks(filepath.Dir(dir)); err == nil {
		return filepath.Join(r, filepath.Base(dir))
	}
	return dir
}

// absDir makes dir absolute, so that a later change of working directory
// does not move it. "" stays "" (and is reported by Execute).
func absDir(dir string) string {
	if dir == "" {
		return ""
	}
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return filepath.Clean(dir)
}

// LogPath returns the file that holds the output of attempt attempt of the
// task with the given name and index in run runID:
//
//	<logDir>/<runID>/<name>.<index>.<attempt>.log
//
// A name with slashes (a job_name in a subdirectory) gives subdirectories.
// runID must be a single path element and name a relative path without
// '..', so the result always lies inside logDir. It is the file prefix
// attempt ".log" in the directory dir that LogPrefix returns.
func LogPath(logDir, runID, name string, index, attempt int) (string, error) {
	dir, prefix, err := LogPrefix(logDir, runID, name, index)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, prefix+strconv.Itoa(attempt)+".log"), nil
}

// LogPrefix returns the directory that holds the logs of the task with the
// given name and index in run runID (<logDir>/<runID>, or a subdirectory of
// it when name has slashes), and the start of their file names, before the
// attempt: "<base of name>.<index>.". It refuses what LogPath refuses.
// LogAttempt reads the attempt back from a file name.
func LogPrefix(logDir, runID, name string, index int) (dir, prefix string, err error) {
	switch {
	case runID == "" || runID == "." || runID == "..":
		return "", "", fmt.Errorf("run id %q cannot name a log directory", runID)
	case strings.ContainsAny(runID, "/\\\x00"):
		return "", "", fmt.Errorf("run id %q cannot name a log directory: it contains '/', '\\' or NUL", runID)
	case name == "":
		return "", "", errors.New("task name is empty: it cannot name a log file")
	case strings.HasPrefix(name, "/") || strings.ContainsRune(name, 0):
		return "", "", fmt.Errorf("task name %q cannot name a log file: it is absolute or contains NUL", name)
	case path.Clean(name) == ".":
		return "", "", fmt.Errorf("task name %q names no file", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", "", fmt.Errorf("task name %q cannot name a log file: '..' is not allowed", name)
		}
	}
	// The last element ends in "<index>.", so cleaning the joined path
	// leaves it as it is, and adding "<attempt>.log" to it gives the path
	// that joining the whole file name would.
	p := filepath.Join(logDir, runID, filepath.FromSlash(name+"."+strconv.Itoa(index)+"."))
	return filepath.Dir(p), filepath.Base(p), nil
}

// LogAttempt says whether base, a file name, is that of the log of an
// attempt of the task whose logs have the given prefix (see LogPrefix),
// and of which attempt: base is prefix, the attempt in decimal as LogPath
// writes it (no sign, no leading zero), and ".log".
func LogAttempt(prefix, base string) (attempt int, ok bool) {
	n, ok := strings.CutPrefix(base, prefix)
	if !ok {
		return 0, false
	}
	n, ok = strings.CutSuffix(n, ".log")
	if !ok || n == "" || strings.Trim(n, "0123456789") != "" || (len(n) > 1 && n[0] == '0') {
		return 0, false
	}
	a, err := strconv.Atoi(n)
	if err != nil {
		return 0, false // too large to be an attempt
	}
	return a, true
}

// scriptPath returns the script that job names, refusing a job name that
// would leave the script directory. The check is lexical: a symbolic link
// inside the script directory is followed wherever it points, since only
// someone who may write the script directory can have made it.
func (e *ProcessExecutor) scriptPath(job string) (string, error) {
	if e.scriptDir == "" {
		return "", errors.New("exec: ProcessConfig.ScriptDir is empty")
	}
	if err := model.ValidateJobName(job); err != nil {
		return "", err
	}
	p := filepath.Join(e.scriptDir, filepath.FromSlash(job))
	if !within(e.scriptDir, p) {
		return "", fmt.Errorf("job_name %q leaves the script directory %s (it names %s)", job, e.scriptDir, p)
	}
	return p, nil
}

// within reports whether the clean path p lies strictly inside directory
// dir, comparing names only.
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	if err != nil || rel == "." || filepath.IsAbs(rel) {
		return false
	}
	return rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// checkScript tells, before anything is started, why path could not run.
func checkScript(p, job, scriptDir string) error {
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("script %s not found (job_name %q is looked up in %s)", p, job, scriptDir)
	case err != nil:
		return fmt.Errorf("script %s: %w", p, err)
	case fi.IsDir():
		return fmt.Errorf("script %s is a directory, not a script (job_name %q)", p, job)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("script %s is not a regular file (it is %s)", p, fi.Mode().Type())
	case runtime.GOOS != "windows" && fi.Mode().Perm()&0o111 == 0: // Windows has no execute bit
		return fmt.Errorf("script %s is not executable: chmod +x %s", p, p)
	}
	return nil
}

// startError explains why the process of script p, with environment env,
// did not start.
func startError(p string, env []string, err error) error {
	if why := scriptHeadProblem(p); why != "" && (errors.Is(err, syscall.ENOEXEC) || errors.Is(err, syscall.ENOENT)) {
		return fmt.Errorf("script %s cannot be executed: %s", p, why)
	}
	switch {
	case errors.Is(err, syscall.E2BIG):
		return fmt.Errorf("script %s cannot be executed: its environment is too large for the system (%d bytes in %d variables): pass big parameters in a file and its path as the parameter", p, envSize(env), len(env))
	case errors.Is(err, syscall.ENOEXEC):
		return fmt.Errorf("script %s cannot be executed: does it start with a #! line?", p)
	case errors.Is(err, syscall.ENOENT):
		// The script exists (it was just checked), so the kernel did not
		// find the interpreter its #! line names.
		if interp := interpreter(p); interp != "" {
			return fmt.Errorf("script %s cannot be executed: its interpreter %s (from its #! line) was not found", p, interp)
		}
		return fmt.Errorf("script %s cannot be executed: %w", p, err)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("script %s cannot be executed: permission denied (check the execute bits of the script and of its #! interpreter, and that its file system is not mounted noexec)", p)
	}
	return fmt.Errorf("start script %s: %w", p, err)
}

// interpreter returns the program named on the #! line of script p, or "".
func interpreter(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	buf := make([]byte, 256)
	n, _ := f.Read(buf)
	line, _, _ := bytes.Cut(buf[:n], []byte{'\n'})
	rest, ok := bytes.CutPrefix(line, []byte("#!"))
	if !ok {
		return ""
	}
	fields := strings.Fields(string(rest))
	if len(fields) == 0 {
		return ""
	}
	return fields[0]
}

// environ builds the environment of task t, and notes for the top of its
// log on the parameters that got no variable of their own.
func (e *ProcessExecutor) environ(t model.TaskWithWorkflow) ([]string, []string, error) {
	output, err := OutputPath(e.logDir, t.Task.RunID, t.Task.Name, t.Task.TaskIndex, t.Task.Attempt)
	if err != nil {
		return nil, nil, err
	}
	// ORK_UPSTREAM_FILE always holds the upstream outputs; ORK_UPSTREAM
	// too while they fit in an environment variable (Linux refuses one
	// over 128 KiB).
	upstream := "{}"
	upstreamFile := strings.TrimSuffix(output, ".output.json") + ".upstream.json"
	if len(t.Upstream) > 0 {
		if len(t.Upstream) <= MaxUpstreamEnv {
			upstream = string(t.Upstream)
		} else {
			upstream = ""
		}
	}
	if len(t.Upstream) > 0 {
		if err := e.makeDir(filepath.Dir(upstreamFile)); err != nil {
			return nil, nil, err
		}
		if err := os.WriteFile(upstreamFile, t.Upstream, 0o644); err != nil {
			return nil, nil, fmt.Errorf("write upstream outputs: %w", err)
		}
	} else {
		upstreamFile = "" // no upstream tasks: no file
	}
	vars, notes, err := TaskEnv(t)
	if err != nil {
		return nil, nil, err
	}
	params, err := ParamsJSON(t)
	if err != nil {
		return nil, nil, err
	}
	// Parameters too large for one variable go by file, like upstream
	// outputs.
	paramsFile := ""
	if len(params) > MaxParamsEnv {
		paramsFile = strings.TrimSuffix(output, ".output.json") + ".params.json"
		if err := e.makeDir(filepath.Dir(paramsFile)); err != nil {
			return nil, nil, err
		}
		if err := os.WriteFile(paramsFile, []byte(params), 0o644); err != nil {
			return nil, nil, fmt.Errorf("write params file: %w", err)
		}
		notes = append(notes, fmt.Sprintf("the parameters (%d bytes of JSON) are over %d KiB: ORK_PARAMS is empty, ORK_PARAMS_FILE names a file holding them", len(params), MaxParamsEnv>>10))
		params = ""
	}
	env := make([]string, 0, len(e.env)+len(vars)+7)
	env = append(env, e.env...)
	env = append(env, vars...)
	env = append(env,
		"ORK_PARAMS="+params,
		"ORK_PARAMS_FILE="+paramsFile,
		"ORK_LOG_DIR="+e.logKey,
		"ORK_UPSTREAM="+upstream,
		"ORK_UPSTREAM_FILE="+upstreamFile,
		"ORK_OUTPUT="+output,
	)
	return env, notes, nil
}

// TaskEnv returns the variables that every executor gives task t, as
// "NAME=value" strings in the order they are applied: each top-level
// parameter that may have a variable of its own (see ProcessExecutor),
// sorted by name, then ORK_RUN_ID, ORK_TASK_ID, ORK_TASK_NAME,
// ORK_TASK_INDEX, ORK_TASK_COUNT, ORK_WORKFLOW, ORK_ATTEMPT and
// ORK_SCHEDULER (the task's Scheduler: the id of the scheduler that
// dispatched the attempt). notes say
// why the other parameters got none. ORK_PARAMS (see ParamsJSON),
// ORK_UPSTREAM and the variables that name local files are each
// executor's to add, as it can pass them.
func TaskEnv(t model.TaskWithWorkflow) (vars, notes []string, err error) {
	if t.Task == nil {
		return nil, nil, errors.New("exec: TaskEnv needs a task")
	}
	vars, notes, err = paramVars(t.Task.Params)
	if err != nil {
		return nil, nil, fmt.Errorf("task %s: %w", t.Task.ID, err)
	}
	workflow := ""
	if t.Workflow != nil {
		workflow = t.Workflow.Name
	}
	vars = append(vars,
		"ORK_RUN_ID="+t.Task.RunID,
		"ORK_TASK_ID="+t.Task.ID,
		"ORK_TASK_NAME="+t.Task.Name,
		"ORK_TASK_INDEX="+strconv.Itoa(t.Task.TaskIndex),
		"ORK_TASK_COUNT="+strconv.Itoa(t.Node().TaskCount),
		"ORK_WORKFLOW="+workflow,
		"ORK_ATTEMPT="+strconv.Itoa(t.Task.Attempt),
		"ORK_SCHEDULER="+t.Task.Scheduler,
	)
	return vars, notes, nil
}

// ParamsJSON returns the value of ORK_PARAMS for task t: every parameter
// as one compact JSON object, "{}" when there are none.
func ParamsJSON(t model.TaskWithWorkflow) (string, error) {
	if t.Task == nil || t.Task.Params == nil {
		return "{}", nil
	}
	params, err := marshalJSON(t.Task.Params)
	if err != nil {
		return "", fmt.Errorf("params of task %s: %w", t.Task.ID, err)
	}
	return params, nil
}

// paramString formats one parameter value for the environment.
func paramString(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case float64:
		return formatFloat(v, 64), nil
	case float32:
		return formatFloat(float64(v), 32), nil
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case int32:
		return strconv.FormatInt(int64(v), 10), nil
	case uint:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	case uint32:
		return strconv.FormatUint(uint64(v), 10), nil
	case json.Number:
		return v.String(), nil
	}
	return marshalJSON(v)
}

// formatFloat writes integral numbers in plain decimal and others in the
// shortest form that reads back the same.
func formatFloat(f float64, bits int) string {
	if f == math.Trunc(f) && !math.IsInf(f, 0) {
		return strconv.FormatFloat(f, 'f', -1, bits)
	}
	return strconv.FormatFloat(f, 'g', -1, bits)
}

// marshalJSON encodes v as compact JSON without escaping <, > and &.
func marshalJSON(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return string(bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})), nil
}

// openLog creates (or truncates) the log file p, making its directory
// first. Directories made once are remembered, so the usual cost is one
// open; a remembered directory that was removed since is made again.
func (e *ProcessExecutor) openLog(p string) (*os.File, error) {
	dir := filepath.Dir(p)
	e.dirsMu.Lock()
	_, known := e.dirs[dir]
	e.dirsMu.Unlock()
	if !known {
		if err := e.makeDir(dir); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if known && errors.Is(err, fs.ErrNotExist) {
		if err := e.makeDir(dir); err != nil {
			return nil, err
		}
		f, err = os.OpenFile(p, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	}
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	return f, nil
}

func (e *ProcessExecutor) makeDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("make log directory: %w", err)
	}
	e.dirsMu.Lock()
	if len(e.dirs) >= maxCachedDirs {
		clear(e.dirs)
	}
	e.dirs[dir] = struct{}{}
	e.dirsMu.Unlock()
	return nil
}

// stdin returns the file every script reads as standard input.
func (e *ProcessExecutor) stdin() *os.File {
	e.devNullOnce.Do(func() {
		if f, err := os.Open(os.DevNull); err == nil {
			e.devNull = f
		}
	})
	return e.devNull
}

// Execute starts attempt t.Task.Attempt of task t and returns its execution
// name, "pid:<pid>". ctx is only consulted before the start: the process
// lives on when ctx ends. An error means the attempt did not start, and no
// update is sent for it.
func (e *ProcessExecutor) Execute(ctx context.Context, t model.TaskWithWorkflow) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	select {
	case <-e.stopping:
		return "", ErrShutdown
	default:
	}
	if t.Task == nil || t.Workflow == nil {
		return "", errors.New("exec: Execute needs a task and its workflow")
	}
	if e.logDir == "" {
		return "", errors.New("exec: ProcessConfig.LogDir is empty")
	}
	job := t.Node().JobName
	script, err := e.scriptPath(job)
	if err != nil {
		return "", err
	}
	if err := checkScript(script, job, e.scriptDir); err != nil {
		return "", err
	}
	logPath, err := LogPath(e.logDir, t.Task.RunID, t.Task.Name, t.Task.TaskIndex, t.Task.Attempt)
	if err != nil {
		return "", err
	}
	env, notes, err := e.environ(t)
	if err != nil {
		return "", err
	}

	key := attemptKey{taskID: t.Task.ID, attempt: t.Task.Attempt}
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		return "", ErrShutdown
	}
	if a, ok := e.byTask[key]; ok {
		name := a.name
		e.mu.Unlock()
		if name == "" {
			return "", fmt.Errorf("task %s attempt %d is being started already", key.taskID, key.attempt)
		}
		return "", fmt.Errorf("task %s attempt %d is already running as %s", key.taskID, key.attempt, name)
	}
	a := &attempt{key: key, output: strings.TrimSuffix(logPath, ".log") + ".output.json"}
	e.byTask[key] = a // reserved: a second Execute of this attempt fails
	e.starting.Add(1) // Shutdown waits for this start to finish before it signals
	e.mu.Unlock()
	defer e.starting.Done()

	name, err := e.start(ctx, a, t.Task.RunID, script, logPath, env, notes)
	if err != nil {
		e.mu.Lock()
		delete(e.byTask, key)
		e.mu.Unlock()
		return "", err
	}
	return name, nil
}

// start starts the process of attempt a, registers it and starts its wait
// goroutine.
func (e *ProcessExecutor) start(ctx context.Context, a *attempt, runID, script, logPath string, env, notes []string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	logFile, err := e.openLog(logPath)
	if err != nil {
		return "", err
	}
	if err := writeNotes(logFile, notes); err != nil {
		logFile.Close()
		return "", fmt.Errorf("log file: %w", err)
	}
	a.cmd = &osexec.Cmd{
		Path:   script,
		Args:   []string{script},
		Env:    env,
		Dir:    e.scriptDir,
		Stdout: logFile, // an *os.File is given to the child as is: no copying goroutine
		Stderr: logFile,
	}
	if stdin := e.stdin(); stdin != nil {
		a.cmd.Stdin = stdin
	}
	a.cmd.SysProcAttr = sysProcAttr()
	e.sweeping.RLock() // until the process is registered
	err = a.cmd.Start()
	started := time.Now()
	logFile.Close() // the child has its own copy
	if err != nil {
		e.sweeping.RUnlock()
		err = startError(script, env, err)
		// The log says why it holds no output (ork logs shows it).
		if f, ferr := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0); ferr == nil {
			writeNotes(f, []string{"the task did not start: " + err.Error()})
			f.Close()
		}
		return "", err
	}
	name := "pid:" + strconv.Itoa(a.cmd.Process.Pid)

	e.mu.Lock() // a is in byTask already: its fields change under the lock
	a.name = name
	a.running = StatusUpdate{
		TaskID:        a.key.taskID,
		RunID:         runID,
		Attempt:       a.key.attempt,
		Status:        model.TaskRunning,
		ExecutionName: name,
		At:            started,
		Log:           logPath,
	}
	e.byName[name] = a
	e.procs.Add(1)
	e.waiters.Add(1)
	e.mu.Unlock()
	e.sweeping.RUnlock()
	go e.wait(a)
	return name, nil
}

// MaxUpstreamEnv is the largest ORK_UPSTREAM passed in the environment;
// beyond it, ORK_UPSTREAM is empty and only ORK_UPSTREAM_FILE has it.
const MaxUpstreamEnv = 64 << 10

// MaxOutput is the largest task output: the ORK_OUTPUT file of a task.
const MaxOutput = 1 << 20

// OutputPath returns where attempt attempt of a task writes its output:
// beside its log, <LogDir>/<run_id>/<task name>.<task_index>.<attempt>.output.json.
func OutputPath(logDir, runID, name string, index, attempt int) (string, error) {
	p, err := LogPath(logDir, runID, name, index, attempt)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(p, ".log") + ".output.json", nil
}

// ReadOutput reads a task's output file: nil if the task wrote none, the
// JSON object (compacted) if it wrote one, and an error that says what is
// wrong if it is over MaxOutput or not a JSON object.
func ReadOutput(path string) (json.RawMessage, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("output: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxOutput+1))
	if err != nil {
		return nil, fmt.Errorf("output: %w", err)
	}
	if len(data) > MaxOutput {
		return nil, fmt.Errorf("output %s is larger than 1 MiB: write big results to a file and put its path in the output", path)
	}
	var obj map[string]json.RawMessage
	if err := model.DecodeJSON(path, data, &obj, false); err != nil || obj == nil {
		why := "it is null"
		if err != nil {
			why = err.Error()
		}
		return nil, fmt.Errorf("output is not a JSON object (write one, like {\"rows\": 10}, to $ORK_OUTPUT): %s", why)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return nil, fmt.Errorf("output %s: %w", path, err)
	}
	return buf.Bytes(), nil
}

// wait reports the attempt running, waits for its process to end, and
// reports how it ended.
func (e *ProcessExecutor) wait(a *attempt) {
	defer e.waiters.Done()
	e.sendRunning(a.running)

	// Where the OS allows, learn of the exit before reaping the process,
	// and forget the attempt while its process id is still reserved.
	zombie := waitExited(a.cmd.Process.Pid)
	if zombie {
		e.exited(a, true)
	}
	err := a.cmd.Wait()
	ended := time.Now()
	if !zombie {
		e.exited(a, false)
	}

	if e.maxLog > 0 {
		if err := TrimLog(a.running.Log, e.maxLog); err != nil {
			e.log.Warn("cannot trim task log", "log", a.running.Log, "err", err)
		}
	}
	u := a.running
	u.At = ended
	state := a.cmd.ProcessState
	if state == nil {
		u.Status = model.TaskFailed
		u.Error = fmt.Sprintf("wait for %s: %v", a.name, err)
	} else {
		code, msg := describeExit(state)
		u.ExitCode = &code
		u.Error = msg
		if code == 0 && msg == "" {
			u.Status = model.TaskSuccess
			if out, err := ReadOutput(a.output); err != nil {
				u.Status, u.Error = model.TaskFailed, err.Error()
			} else {
				u.Output = out
			}
		} else {
			u.Status = model.TaskFailed
		}
	}
	e.send(u)
}

// exited forgets attempt a, whose process has ended, and kills what its
// script left running: the task's processes end with the task. zombie
// tells that the process is not reaped yet, so its process group id cannot
// have been reused: what is left of the group is killed then. (Without a
// way to wait before reaping, the group is not signalled: its id may be
// another's by now.) Processes that left the group are left to endScan.
func (e *ProcessExecutor) exited(a *attempt, zombie bool) {
	e.mu.Lock()
	delete(e.byName, a.name)
	delete(e.byTask, a.key)
	if zombie {
		_ = signalGroup(a.cmd.Process, syscall.SIGKILL)
	}
	e.mu.Unlock()
	e.endMu.Lock()
	e.ended[a.key] = true
	e.endMu.Unlock()
	e.endOnce.Do(func() { go e.endScan() })
	select {
	case e.endWake <- struct{}{}:
	default:
	}
	e.procs.Done()
}

// endScanInterval is the least time between two scans of /proc for the
// processes of ended attempts that left their process group.
const endScanInterval = 50 * time.Millisecond

// endScan kills, for every attempt whose script has exited, the processes
// that still carry its environment (those that left its process group:
// setsid, daemons). One scan of /proc serves every attempt that ended
// since the last, so its cost does not grow with the rate of task ends.
// It returns once Shutdown is done, after a last scan.
func (e *ProcessExecutor) endScan() {
	defer close(e.endDone)
	last := time.Time{}
	for {
		final := false
		select {
		case <-e.endWake:
		case <-e.finished:
			final = true
		}
		if !final {
			if wait := endScanInterval - time.Since(last); wait > 0 {
				select {
				case <-time.After(wait):
				case <-e.finished:
				}
			}
		}
		e.endMu.Lock()
		keys := e.ended
		e.ended = make(map[attemptKey]bool)
		e.endMu.Unlock()
		if len(keys) > 0 {
			killAttempts(e.logKey, keys)
			e.endScans.Add(1)
			last = time.Now()
		}
		if final {
			return
		}
	}
}

// Began reports whether attempt t.Task.Attempt ever began to start: its log
// file, which is created before the process starts, exists. An attempt
// without one never ran a process (see StartProber).
func (e *ProcessExecutor) Began(ctx context.Context, t model.TaskWithWorkflow) (bool, error) {
	if t.Task == nil {
		return true, errors.New("exec: Began needs a task")
	}
	p, err := LogPath(e.logDir, t.Task.RunID, t.Task.Name, t.Task.TaskIndex, t.Task.Attempt)
	if err != nil {
		return true, err
	}
	_, err = os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return true, err
	}
	return true, nil
}

var _ StartProber = (*ProcessExecutor)(nil)

// sendRunning sends a running update. Once Shutdown has begun it gives up
// when the channel is full: the terminal update that follows says more.
func (e *ProcessExecutor) sendRunning(u StatusUpdate) {
	select {
	case e.updates <- u:
		return
	default:
	}
	select {
	case e.updates <- u:
	case <-e.stopping:
	case <-e.done:
	}
}

// send sends a terminal update, unless Shutdown has stopped sending.
func (e *ProcessExecutor) send(u StatusUpdate) {
	select {
	case e.updates <- u:
		return
	default:
	}
	select {
	case e.updates <- u:
	case <-e.done:
	}
}

// Check reports a running update and known=true when t.Task.ExecutionName
// (or, when that is empty, t's id and attempt) names a process this
// executor started for this very attempt and that still runs. Anything else
// is unknown: a process that has ended sent its terminal update already,
// and the process of a scheduler that died was killed with it.
func (e *ProcessExecutor) Check(ctx context.Context, t model.TaskWithWorkflow) (StatusUpdate, bool, error) {
	if t.Task == nil {
		return StatusUpdate{}, false, errors.New("exec: Check needs a task")
	}
	key := attemptKey{taskID: t.Task.ID, attempt: t.Task.Attempt}
	e.mu.Lock()
	defer e.mu.Unlock()
	var a *attempt
	if name := t.Task.ExecutionName; name != "" {
		a = e.byName[name]
	} else {
		a = e.byTask[key]
	}
	if a == nil || a.key != key || a.name == "" { // "" is an attempt still starting
		return StatusUpdate{}, false, nil
	}
	return a.running, true, nil
}

// Shutdown stops every running process: SIGTERM to its process group, then
// after KillGrace, or sooner if ctx ends, SIGKILL. It returns when every
// process has ended and no more updates will be sent. When a script ends
// during Shutdown, what is left of its process group is killed at once.
// Updates of processes that end during Shutdown are sent while the channel
// takes them; the rest are dropped. Execute fails with ErrShutdown once Shutdown has begun.
// Calling Shutdown again waits for the first call to finish.
func (e *ProcessExecutor) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		select {
		case <-e.finished:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	e.closing = true
	close(e.stopping)
	e.mu.Unlock()

	// No Execute starts a process from now on; let those under way finish
	// starting, so that they are signalled too.
	e.starting.Wait()

	gone := make(chan struct{})
	go func() {
		e.procs.Wait()
		close(gone)
	}()
	e.signalAll(syscall.SIGTERM)
	if e.killGrace > 0 {
		timer := time.NewTimer(e.killGrace)
		select {
		case <-gone:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
	}
	select {
	case <-gone:
	default:
		e.signalAll(syscall.SIGKILL)
		<-gone
	}

	close(e.done)
	e.waiters.Wait()
	e.devNullOnce.Do(func() {}) // no stdin is opened from now on
	if e.devNull != nil {
		e.devNull.Close()
	}
	close(e.finished)
	// The last scan for the attempts that ended.
	e.endOnce.Do(func() { close(e.endDone) })
	<-e.endDone
	return nil
}

// signalAll sends sig to the process group of every process that has not
// ended.
func (e *ProcessExecutor) signalAll(sig syscall.Signal) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, a := range e.byName {
		_ = signalGroup(a.cmd.Process, sig)
	}
}

// ProcessExecutor finds and stops what a dead scheduler left running (see
// Sweep).
var _ Sweeper = (*ProcessExecutor)(nil)
