package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ork-run/ork/filedb"
	"github.com/ork-run/ork/model"
)

// resolveRunID turns what the user typed for a run id into the run's full
// id: the id itself, or any prefix of exactly one run's id (`ork status
// 1a2b3c4d`). An unknown id is model.ErrNotFound; an ambiguous prefix is an
// error that lists the runs it matches.
func resolveRunID(c *cli.Context, arg string) (string, error) {
	if arg == "" {
		return "", fmt.Errorf("empty run id: %w", model.ErrNotFound)
	}
	dir := filepath.Join(orkDir(c), filedb.RunsDir)
	if _, err := os.Stat(filepath.Join(dir, arg+".json")); err == nil || strings.ContainsAny(arg, `/\`) {
		return arg, nil // the full id (or not an id: GetRun says so)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return arg, nil // GetRun reports the directory's problem
	}
	var ids []string
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".json") {
			continue
		}
		if id := strings.TrimSuffix(n, ".json"); strings.HasPrefix(id, arg) {
			ids = append(ids, id)
		}
	}
	switch len(ids) {
	case 0:
		return "", fmt.Errorf("run %s %w (no run id is or starts with it)", arg, model.ErrNotFound)
	case 1:
		return ids[0], nil
	}
	slices.Sort(ids)
	shown := ids
	if len(shown) > 10 {
		shown = shown[:10]
	}
	more := ""
	if len(ids) > len(shown) {
		more = fmt.Sprintf(" and %d more", len(ids)-len(shown))
	}
	return "", fmt.Errorf("run id prefix %q is ambiguous: it matches %d runs: %s%s; give more of the id", arg, len(ids), strings.Join(shown, ", "), more)
}
