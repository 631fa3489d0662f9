package cli

import (
	"fmt"
	"runtime"

	"github.com/urfave/cli/v2"
)

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version of ork",
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageErr(c, "version takes no arguments")
			}
			fmt.Fprintf(c.App.Writer, "ork %s (%s, %s/%s)\n", version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
