package dbtest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ork-run/ork/model"
)

// ---- Comparing records ----

// The records compare as JSON, after normalizing what a backend may
// represent differently without being wrong.

func workflowJSON(w *model.Workflow) string {
	if w == nil {
		return "null"
	}
	return toJSON(normWorkflow(w))
}

func runJSON(r *model.Run) string {
	if r == nil {
		return "null"
	}
	c := cloneRun(r)
	c.CreatedAt = c.CreatedAt.UTC()
	c.StartedAt = utc(c.StartedAt)
	c.FinishedAt = utc(c.FinishedAt)
	c.ScheduledAt = utc(c.ScheduledAt)
	c.Params = normParams(c.Params)
	if c.Workflow != nil {
		c.Workflow = normWorkflow(c.Workflow)
	}
	return toJSON(c)
}

func taskJSON(tk *model.Task) string {
	if tk == nil {
		return "null"
	}
	c := cloneTask(tk)
	c.CreatedAt = c.CreatedAt.UTC()
	c.DispatchedAt = utc(c.DispatchedAt)
	c.StartedAt = utc(c.StartedAt)
	c.FinishedAt = utc(c.FinishedAt)
	c.Params = normParams(c.Params)
	c.Output = normOutput(c.Output)
	return toJSON(c)
}

func normWorkflow(w *model.Workflow) *model.Workflow {
	c := cloneWorkflow(w)
	c.CreatedAt = c.CreatedAt.UTC()
	c.UpdatedAt = c.UpdatedAt.UTC()
	c.Params = normParams(c.Params)
	return c
}

func normParams(p map[string]any) map[string]any {
	if len(p) == 0 {
		return nil
	}
	return p
}

func normOutput(m json.RawMessage) json.RawMessage {
	trimmed := bytes.TrimSpace(m)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return nil
	}
	var v any
	if err := json.Unmarshal(trimmed, &v); err != nil {
		return m // not JSON: compare the bytes
	}
	b, err := json.Marshal(v)
	if err != nil {
		return m
	}
	return b
}

func utc(p *time.Time) *time.Time {
	if p == nil {
		return nil
	}
	u := p.UTC()
	return &u
}

// diffJSON names the fields in which two JSON objects differ.
func diffJSON(got, want string) string {
	var g, w any
	if json.Unmarshal([]byte(got), &g) != nil || json.Unmarshal([]byte(want), &w) != nil {
		return "differs"
	}
	var diffs []string
	var walk func(path string, g, w any)
	walk = func(path string, g, w any) {
		gm, gok := g.(map[string]any)
		wm, wok := w.(map[string]any)
		if gok && wok {
			var keys []string
			for k := range gm {
				keys = append(keys, k)
			}
			for k := range wm {
				if _, ok := gm[k]; !ok {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			for _, k := range keys {
				walk(strings.TrimPrefix(path+"."+k, "."), gm[k], wm[k])
			}
			return
		}
		if gj, wj := toJSON(g), toJSON(w); gj != wj {
			diffs = append(diffs, fmt.Sprintf("%s is %s, want %s", cmp.Or(path, "value"), gj, wj))
		}
	}
	walk("", g, w)
	if len(diffs) == 0 {
		return "differs"
	}
	return strings.Join(diffs, ", ")
}

func toJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("(does not encode: %v) %+v", err, v)
	}
	return string(b)
}
