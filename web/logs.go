package web

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/model"
)

// taskLog serves the log of one attempt of one task, from byte offset on.
// The file is the one the task's record names for that attempt, and only
// if its name is the one the executor gives that task's log
// (<run id>/<name>.<index>.<attempt>.log) and it is a regular file: the
// request chooses a task, never a path. With follow=1 the response stays
// open and streams what the attempt writes until it ends.
//
// Headers: X-Ork-Attempt (the attempt served), X-Ork-Task-Status, and
// X-Ork-Log-Size (the file's size when read, to resume at).
func (s *Server) taskLog(w http.ResponseWriter, r *http.Request) {
	id, name := r.PathValue("id"), r.PathValue("name")
	index, err := strconv.Atoi(r.PathValue("index"))
	if err != nil || index < 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("task index %q: give a number, 0 or more", r.PathValue("index")))
		return
	}
	q := r.URL.Query()
	attempt := 0
	if a := q.Get("attempt"); a != "" {
		if attempt, err = strconv.Atoi(a); err != nil || attempt < 1 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("attempt %q: give a number, 1 or more", a))
			return
		}
	}
	var offset int64
	if o := q.Get("offset"); o != "" {
		if offset, err = strconv.ParseInt(o, 10, 64); err != nil || offset < 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("offset %q: give a number of bytes, 0 or more", o))
			return
		}
	}
	follow := q.Get("follow") == "1" || q.Get("follow") == "true"
	run, t, err := s.runTask(r, id, name, index)
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	if t == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("run %s has no task %s[%d]", run.ID, name, index))
		return
	}
	if attempt == 0 {
		attempt = max(t.Attempt, 1)
	}
	if attempt > max(t.Attempt, 1) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("task %s has no attempt %d: it is at attempt %d", t.Label(), attempt, t.Attempt))
		return
	}
	p, err := logFile(run.ID, t, attempt)
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Ork-Attempt", strconv.Itoa(attempt))
	h.Set("X-Ork-Task-Status", string(t.Status))
	ended := t.Status.Terminal() || attempt < t.Attempt || (attempt == t.Attempt && t.Status == model.TaskPending && t.Attempt > 0)
	if !follow || ended {
		var f *os.File
		if p != "" {
			f, err = openLog(p)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				writeError(w, http.StatusNotFound, err.Error())
				return
			}
		}
		if f == nil {
			h.Set("X-Ork-Log-Size", "0")
			w.WriteHeader(http.StatusOK)
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			s.dbError(w, r, err)
			return
		}
		h.Set("X-Ork-Log-Size", strconv.FormatInt(st.Size(), 10))
		if offset < st.Size() {
			f.Seek(offset, io.SeekStart)
			io.CopyN(w, f, st.Size()-offset)
		}
		return
	}
	s.followLog(w, r, run.ID, t, attempt, offset)
}

// runTask returns run id and its task name[index] — read alone
// (model.GetTask), or as the run will create it (model.CompleteTasks) —
// or a nil task if the run has none such.
func (s *Server) runTask(r *http.Request, id, name string, index int) (*model.Run, *model.Task, error) {
	run, err := s.db.GetRun(r.Context(), id)
	if err != nil {
		return nil, nil, err
	}
	t, err := model.GetTask(r.Context(), s.db, run.ID, name, index)
	if err == nil {
		return run, t, nil
	}
	if !errors.Is(err, model.ErrNotFound) {
		return nil, nil, err
	}
	for _, x := range model.CompleteTasks(run, nil) {
		if x.Name == name && x.TaskIndex == index {
			return run, x, nil
		}
	}
	return run, nil, nil
}

// followLog streams the log of a running attempt: the hub says when the
// task changes (its end, or a new attempt); the file is read as it grows.
func (s *Server) followLog(w http.ResponseWriter, r *http.Request, runID string, t *model.Task, attempt int, offset int64) {
	sub, _ := s.hub.subscribe(r.Context(), runID, false)
	defer s.hub.unsubscribe(sub)
	fl, _ := w.(http.Flusher)
	w.WriteHeader(http.StatusOK)
	if fl != nil {
		fl.Flush()
	}
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	cur := t
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if f == nil {
			if p, err := logFile(runID, cur, attempt); err == nil && p != "" {
				if f, err = openLog(p); err == nil {
					f.Seek(offset, io.SeekStart)
				} else {
					f = nil
				}
			}
		}
		if f != nil {
			n, _ := io.Copy(w, f)
			offset += n
			if n > 0 && fl != nil {
				fl.Flush()
			}
		}
		if cur.Status.Terminal() || cur.Attempt > attempt || (cur.Status == model.TaskPending && cur.Attempt >= attempt && cur.Attempt > 0) {
			if f != nil {
				io.Copy(w, f)
			}
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-sub.lost:
			return
		case ev := <-sub.ch:
			for _, x := range ev.tasks {
				if x.ID == t.ID {
					cur = x
				}
			}
		case <-tick.C:
		}
	}
}

// logFile returns the log file that task t's record names for attempt
// ("" when the attempt has not written one yet), refusing any file that is
// not where the executor puts that task's log.
func logFile(runID string, t *model.Task, attempt int) (string, error) {
	p := ""
	if attempt == t.Attempt {
		p = t.Log
	}
	for _, a := range t.Attempts {
		if a.Attempt == attempt && a.Log != "" {
			p = a.Log
		}
	}
	if p == "" {
		return "", nil
	}
	// <run id>/<name>.<index>.<attempt>.log, where a flat workflow's task
	// name is its job's path and may hold slashes, never "..": the end of
	// the path that the executor gives the log (exec.LogPath), which
	// refuses the names it could not have given a log.
	want, err := exec.LogPath(string(filepath.Separator), runID, t.Name, t.TaskIndex, attempt)
	clean := filepath.Clean(p)
	if err != nil || path.Clean("/"+t.Name) != "/"+t.Name || !strings.HasSuffix(clean, want) {
		return "", fmt.Errorf("task %s names log file %q for attempt %d, which is not that task's log", t.Label(), p, attempt)
	}
	return clean, nil
}

// openLog opens a log file that must be a regular file, not a link.
func openLog(p string) (*os.File, error) {
	st, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("log %s is not a regular file", filepath.Base(p))
	}
	return os.Open(p)
}
