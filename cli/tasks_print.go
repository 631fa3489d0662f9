package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/ork-run/ork/model"
)

// taskBlockRows is how many tasks `ork tasks` aligns and prints at a time.
// A run of up to this many prints exactly as one table; a larger one is
// printed a block at a time, so that its first lines come before its last
// record is read, each block's columns at least as wide as those before.
const taskBlockRows = 1000

// taskPrinter prints the tasks of `ork tasks` as they come: a table, or a
// JSON array (the same bytes as encoding the whole slice at once with
// printJSON).
type taskPrinter struct {
	w      *bufio.Writer
	json   bool
	n      int // tasks printed
	widths [6]int
	block  [][]string // the rows of the block being gathered
	elem   bytes.Buffer
}

func newTaskPrinter(w io.Writer, asJSON bool) *taskPrinter {
	p := &taskPrinter{w: bufio.NewWriterSize(w, 64<<10), json: asJSON}
	if !asJSON {
		p.add([]string{"NAME", "INDEX", "STATUS", "ATTEMPT", "EXIT", "DURATION", "ERROR"})
	}
	return p
}

func (p *taskPrinter) print(t *model.Task) error {
	p.n++
	if p.json {
		p.elem.Reset()
		enc := json.NewEncoder(&p.elem)
		enc.SetIndent("  ", "  ")
		if err := enc.Encode(t); err != nil {
			return err
		}
		sep := ",\n  "
		if p.n == 1 {
			sep = "[\n  "
		}
		p.w.WriteString(sep)
		_, err := p.w.Write(bytes.TrimSuffix(p.elem.Bytes(), []byte("\n")))
		return err
	}
	exit := "-"
	if t.ExitCode != nil {
		exit = fmt.Sprint(*t.ExitCode)
	}
	dur := "-"
	if t.Status == model.TaskRunning || t.Status.Terminal() {
		dur = fmtDur(t.StartedAt, t.FinishedAt)
	}
	p.add([]string{t.Name, fmt.Sprint(t.TaskIndex), string(t.Status), fmt.Sprint(t.Attempt), exit, dur, truncate(t.Error, 60)})
	if len(t.Attempts) > 1 || (len(t.Attempts) == 1 && t.Attempt > 1) {
		for _, a := range t.Attempts {
			exit := "-"
			if a.ExitCode != nil {
				exit = fmt.Sprint(*a.ExitCode)
			}
			p.add([]string{"  └", "", string(a.Status), fmt.Sprint(a.Attempt), exit, fmtDur(a.StartedAt, a.FinishedAt), truncate(a.Error, 60)})
		}
	}
	if p.n%taskBlockRows == 0 {
		return p.flushBlock()
	}
	return nil
}

// add gathers a row of the table.
func (p *taskPrinter) add(cells []string) {
	p.block = append(p.block, cells)
}

// flushBlock aligns the gathered rows with a tabwriter and writes them out.
// The first row's cells are padded with spaces to the widths of the blocks
// before, so that the columns never narrow: with padding of spaces a cell
// and its trailing spaces print as the cell alone would.
func (p *taskPrinter) flushBlock() error {
	if len(p.block) == 0 {
		return p.w.Flush()
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	for i, cells := range p.block {
		for j := range p.widths {
			n := utf8.RuneCountInString(cells[j])
			if i == 0 && n < p.widths[j] {
				cells[j] += strings.Repeat(" ", p.widths[j]-n)
				n = p.widths[j]
			}
			p.widths[j] = max(p.widths[j], n)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6])
	}
	p.block = p.block[:0]
	if err := tw.Flush(); err != nil {
		return err
	}
	return p.w.Flush()
}

// end writes what is left: the last block, or the end of the JSON array.
func (p *taskPrinter) end() error {
	if p.json {
		if p.n == 0 {
			p.w.WriteString("[]\n")
		} else {
			p.w.WriteString("\n]\n")
		}
		return p.w.Flush()
	}
	return p.flushBlock()
}
