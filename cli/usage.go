package cli

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/urfave/cli/v2"
)

// onUsageError turns a flag parsing error into one line (urfave/cli would
// print the whole help after it): the flag, what is wrong, and for a
// duration without a unit, how to write one.
func onUsageError(c *cli.Context, err error, _ bool) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		msg = "unknown flag " + dashes(strings.TrimLeft(name, "-"))
	}
	if m := badValueRE().FindStringSubmatch(msg); m != nil {
		msg = fmt.Sprintf("invalid value %s for flag %s", m[1], dashes(m[2]))
		if isDurationFlag(c, m[2]) {
			msg += ": write a duration with its unit, like 5s, 10m or 1h30m"
		}
	}
	if m := badEnvDurationRE().FindStringSubmatch(msg); m != nil {
		msg = fmt.Sprintf("%s=%s (for --%s) is not a duration: write one with its unit, like 5s, 10m or 1h30m", m[2], m[1], m[3])
	}
	help := "ork --help"
	if c.Command != nil && c.Command.Name != "" && c.Command.Name != c.App.Name {
		help = "ork " + c.Command.Name + " --help"
	}
	return &exitError{code: 2, msg: msg + " (see `" + help + "`)"}
}

// The patterns are compiled when a bad flag is reported, not at every start.
var badValueRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^invalid value ("(?:[^"\\]|\\.)*") for flag -+([^:]+):`)
})

var badEnvDurationRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^could not parse ("(?:[^"\\]|\\.)*") as duration value from environment variable "([^"]+)" for flag ([^:]+):`)
})

func dashes(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// isDurationFlag reports whether the flag name of the command (or of the
// app) is a duration.
func isDurationFlag(c *cli.Context, name string) bool {
	var flags []cli.Flag
	if c.Command != nil {
		flags = append(flags, c.Command.Flags...)
	}
	flags = append(flags, c.App.Flags...)
	for _, f := range flags {
		if _, ok := f.(*cli.DurationFlag); !ok {
			continue
		}
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}

// requireFlags makes the required flags of cmd one-line errors: urfave/cli
// prints the whole help before its own "Required flag" error.
func requireFlags(cmd *cli.Command) {
	var required []string
	for _, f := range cmd.Flags {
		if sf, ok := f.(*cli.StringFlag); ok && sf.Required {
			sf.Required = false
			required = append(required, sf.Name)
		}
	}
	if len(required) == 0 {
		return
	}
	action := cmd.Action
	cmd.Action = func(c *cli.Context) error {
		var missing []string
		for _, n := range required {
			if !c.IsSet(n) {
				missing = append(missing, dashes(n))
			}
		}
		if len(missing) > 0 {
			return usageErr(c, "missing required flag "+strings.Join(missing, " and "))
		}
		return action(c)
	}
}
