package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ork-run/ork/filedb"
	"github.com/ork-run/ork/model"
)

func cmdInit(c *cli.Context) error {
	// init makes .ork here (or --dir), never in the project above.
	dir := c.String("dir")
	if outer := findProject(); outer != "" && outer != ".ork" && !c.IsSet("dir") && os.Getenv("ORK_DIR") == "" {
		fmt.Fprintf(c.App.ErrWriter, "warning: this directory is inside the ork project %s; the new %s will hide it for commands run here and below\n", outer, dir)
	}
	if err := filedb.Init(dir); err != nil {
		return fmt.Errorf("init %s: %w", dir, err)
	}
	fmt.Fprintf(c.App.Writer, "Initialized ork in %s\nPut job scripts in %s, then: ork create-workflow --name NAME --job-name SCRIPT\n", dir, scriptDir(c))
	return nil
}

func cmdCreateWorkflow(c *cli.Context) error {
	params, err := parseParams(c.StringSlice("param"))
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	w := &model.Workflow{
		Name:         c.String("name"),
		Description:  c.String("description"),
		JobName:      c.String("job-name"),
		ExecutorType: c.String("executor"),
		TaskCount:    c.Int("task-count"),
		Params:       params,
		Project:      c.String("project"),
		Region:       c.String("region"),
		CreatedAt:    now,
		UpdatedAt:    now,

		Retries:       c.Int("retries"),
		RetryBackoff:  model.Duration(c.Duration("retry-backoff")),
		Timeout:       model.Duration(c.Duration("timeout")),
		MaxParallel:   c.Int("max-parallel"),
		MaxActiveRuns: c.Int("max-active-runs"),
	}
	if w.TaskCount < 1 {
		return fmt.Errorf("--task-count %d: must be at least 1", w.TaskCount)
	}
	w.Normalize()
	if err := w.Validate(); err != nil {
		return fmt.Errorf("workflow %q is not valid: %w", w.Name, err)
	}
	db, err := openDB(c, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.CreateWorkflow(c.Context, w); err != nil {
		if errors.Is(err, model.ErrExists) {
			return fmt.Errorf("%w: delete it first with `ork delete-workflow %s`, or edit %s", err, w.Name, filepath.Join(orkDir(c), filedb.WorkflowsDir, w.Name+".json"))
		}
		return err
	}
	if _, err := os.Stat(filepath.Join(scriptDir(c), w.JobName)); err != nil && w.ExecutorType == model.ExecutorProcess {
		fmt.Fprintf(c.App.ErrWriter, "warning: script %s does not exist yet\n", filepath.Join(scriptDir(c), w.JobName))
	}
	if err := executorsBuilt(w); err != nil {
		fmt.Fprintf(c.App.ErrWriter, "warning: %v\n", err)
	}
	fmt.Fprintf(c.App.Writer, "Created workflow %s (%s, %d task(s), executor %s)\n", w.Name, w.JobName, w.TaskCount, w.ExecutorType)
	return nil
}

func cmdListWorkflows(c *cli.Context) error {
	db, err := openDB(c, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	ws, lerr := db.ListWorkflows(c.Context)
	if ws == nil {
		ws = []*model.Workflow{}
	}
	if c.Bool("json") {
		if err := printJSON(c.App.Writer, ws); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tJOB\tEXECUTOR\tTASKS\tDESCRIPTION")
		for _, w := range ws {
			job, count := w.JobName, fmt.Sprint(w.TaskCount)
			if w.IsDAG() {
				nodes := w.Nodes()
				n := 0
				for _, nd := range nodes {
					n += nd.TaskCount
				}
				job, count = fmt.Sprintf("(DAG of %d jobs)", len(nodes)), fmt.Sprint(n)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", w.Name, job, w.ExecutorType, count, w.Description)
		}
		tw.Flush()
	}
	if lerr != nil {
		return fmt.Errorf("some workflow files do not load: %w", lerr)
	}
	return nil
}

func cmdDeleteWorkflow(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageErr(c, "give the name of the workflow to delete")
	}
	db, err := openDB(c, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	name := c.Args().First()
	if err := db.DeleteWorkflow(c.Context, name); err != nil {
		return notFoundHint(err, "`ork list-workflows` shows the workflows")
	}
	fmt.Fprintf(c.App.Writer, "Deleted workflow %s\n", name)
	return nil
}

func cmdValidate(c *cli.Context) error {
	if c.NArg() == 0 {
		return usageErr(c, "give one or more files to check")
	}
	bad := 0
	for _, p := range c.Args().Slice() {
		data, err := os.ReadFile(p)
		if err == nil {
			err = validateFile(p, data)
		}
		if err != nil {
			bad++
			fmt.Fprintln(c.App.ErrWriter, oneLine(err.Error()))
			continue
		}
		fmt.Fprintf(c.App.Writer, "%s: ok\n", p)
	}
	if bad > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("%d of %d files are not valid", bad, c.NArg())}
	}
	return nil
}

// validateFile checks a file by where it lives: a run record under runs/,
// a task record under tasks/, else a workflow.
func validateFile(p string, data []byte) error {
	slash := filepath.ToSlash(p)
	switch {
	case strings.Contains(slash, "/"+filedb.RunsDir+"/"):
		_, err := model.DecodeRun(p, data)
		return err
	case strings.Contains(slash, "/"+filedb.TasksDir+"/"):
		_, err := model.DecodeTask(p, data)
		return err
	}
	w, err := model.DecodeWorkflowFile(p, data)
	if err != nil {
		return err
	}
	if err := executorsBuilt(w); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}
