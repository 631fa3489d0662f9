package cli

import (
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"
)

// orkDir returns the ork directory the command works on: --dir (or
// ORK_DIR) when given, else the nearest .ork found from the current
// directory upward, as git finds .git, else .ork here (which does not
// exist: the command then says to run `ork init`).
func orkDir(c *cli.Context) string {
	if c.IsSet("dir") || os.Getenv("ORK_DIR") != "" {
		return c.String("dir")
	}
	if d := findProject(); d != "" {
		return d
	}
	return c.String("dir")
}

// findProject returns the nearest .ork directory in the current directory
// or one of its parents, as a path relative to the current directory when
// it is above it (../../.ork), or "" when there is none.
func findProject() string {
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	up := ""
	for dir := wd; ; {
		if st, err := os.Stat(filepath.Join(dir, ".ork")); err == nil && st.IsDir() {
			return filepath.Join(up, ".ork")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
		up = filepath.Join(up, "..")
	}
}
