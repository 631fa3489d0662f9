package exec

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
)

// MaxParamsEnv is the largest ORK_PARAMS (and the largest single parameter
// variable) passed in the environment. Beyond it ORK_PARAMS is empty and
// ORK_PARAMS_FILE names a file holding the parameters; a larger single
// parameter gets no variable of its own. Linux refuses any one variable
// over 128 KiB, and all of them together over a quarter of the stack limit.
const MaxParamsEnv = 64 << 10

// reservedEnv are variables a parameter never replaces: the ones the
// process, its shell and its dynamic loader rely on. Names starting with
// ORK_ and the loader's prefixes (LD_, DYLD_) and LC_ are reserved too.
var reservedEnv = []string{
	"PATH", "HOME", "USER", "LOGNAME", "SHELL", "PWD", "OLDPWD", "TMPDIR",
	"TERM", "LANG", "LANGUAGE", "TZ", "IFS", "ENV", "BASH_ENV", "CDPATH",
	"PS4", "SHELLOPTS", "BASHOPTS", "HOSTNAME",
}

var reservedPrefixes = []string{"ORK_", "LD_", "DYLD_", "LC_"}

// envNameProblem says why a parameter named k gets no variable of its own,
// or returns "" when it gets one.
func envNameProblem(k string) string {
	if !validEnvName(k) {
		return "is not a valid environment variable name (letters, digits and _, not starting with a digit)"
	}
	if slices.Contains(reservedEnv, k) {
		return "would replace the variable " + k + ", which a parameter never does"
	}
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(k, p) {
			return "starts with " + p + ", whose variables a parameter never replaces"
		}
	}
	return ""
}

// validEnvName reports whether k is a portable environment variable name:
// [A-Za-z_][A-Za-z0-9_]*.
func validEnvName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// paramVars returns a variable KEY=VALUE for each top-level parameter that
// may have one, sorted by name, and a note for each that may not (the
// notes go to the top of the task's log). Every parameter stays in
// ORK_PARAMS.
func paramVars(params map[string]any) (vars, notes []string, err error) {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys) // a stable order makes the environment reproducible
	for _, k := range keys {
		if why := envNameProblem(k); why != "" {
			notes = append(notes, fmt.Sprintf("parameter %q is not exported as a variable: its name %s; read it from ORK_PARAMS", k, why))
			continue
		}
		v, err := paramString(params[k])
		if err != nil {
			return nil, nil, fmt.Errorf("param %q: %w", k, err)
		}
		switch {
		case strings.IndexByte(v, 0) >= 0:
			notes = append(notes, fmt.Sprintf("parameter %q is not exported as a variable: its value holds a NUL byte; read it from ORK_PARAMS", k))
			continue
		case len(v) > MaxParamsEnv:
			notes = append(notes, fmt.Sprintf("parameter %q is not exported as a variable: its value (%d bytes) is over %d KiB; read it from ORK_PARAMS or ORK_PARAMS_FILE", k, len(v), MaxParamsEnv>>10))
			continue
		}
		vars = append(vars, k+"="+v)
	}
	return vars, notes, nil
}

// writeNotes writes notes about the task's start, one per line, at the top
// of its log.
func writeNotes(f *os.File, notes []string) error {
	if len(notes) == 0 {
		return nil
	}
	var b bytes.Buffer
	for _, n := range notes {
		b.WriteString("[ork: " + n + "]\n")
	}
	_, err := f.Write(b.Bytes())
	return err
}

// envSize is how much room env takes in a new process: each string and
// its terminating NUL, and a pointer to it.
func envSize(env []string) int {
	n := 0
	for _, kv := range env {
		n += len(kv) + 1 + 8
	}
	return n
}

// scriptHeadProblem names what is wrong with the first line of the script
// at p, when the kernel refused to run it: a UTF-8 byte order mark before
// the #!, or a carriage return in the #! line (a file saved with Windows
// line endings). It returns "" when it sees neither.
func scriptHeadProblem(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	buf := make([]byte, 256)
	n, _ := f.Read(buf)
	head := buf[:n]
	if bytes.HasPrefix(head, []byte("\xef\xbb\xbf")) {
		return "it starts with a UTF-8 byte order mark (BOM) before its #! line: save it as UTF-8 without BOM"
	}
	line, _, _ := bytes.Cut(head, []byte{'\n'})
	if bytes.HasPrefix(line, []byte("#!")) && bytes.IndexByte(line, '\r') >= 0 {
		return "carriage return in the #! line: the script has Windows (CRLF) line endings; convert it with dos2unix or `sed -i 's/\\r$//'`"
	}
	return ""
}
