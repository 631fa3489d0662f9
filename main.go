// Command ork is a workflow orchestrator in one binary. See README.md; the
// commands live in package cli.
package main

import "github.com/ork-run/ork/cli"

func main() { cli.Main() }
