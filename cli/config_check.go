package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ork-run/ork/sched"
)

// checkSchedConfig validates the scheduler settings of `ork run`, naming
// each bad one by its flag (and environment variable).
func checkSchedConfig(cfg sched.Config) error {
	err := cfg.Validate()
	if err == nil {
		return nil
	}
	var msgs []string
	var fes []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		fes = j.Unwrap()
	} else {
		fes = []error{err}
	}
	for _, e := range fes {
		var fe *sched.FieldError
		if errors.As(e, &fe) {
			flag := strings.ReplaceAll(fe.JSON, "_", "-")
			msgs = append(msgs, fmt.Sprintf("--%s (ORK_%s) is %v: %s", flag, strings.ToUpper(fe.JSON), fe.Value, fe.Rule))
			continue
		}
		msgs = append(msgs, e.Error())
	}
	return errors.New(strings.Join(msgs, "; "))
}
