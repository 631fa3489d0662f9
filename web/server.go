// Package web is `ork serve`: a JSON API, a stream of server-sent events
// and a browser UI (plain HTML, CSS and JavaScript embedded with go:embed),
// all on a model.Database — so it works on every backend.
//
// It reads and writes through model.Database only (and reads the log files
// the task records name); it never imports a backend. What it may change
// it changes as the CLI does, through package runctl: a trigger creates a
// pending run, a cancel is a request, a retry reopens a finished run; the
// scheduler applies them.
//
// Safety: every state-changing route is a POST that passes a same-origin
// check (Sec-Fetch-Site, else Origin); a server bound to a loopback
// address answers only requests whose Host is a loopback name, which
// defeats DNS rebinding. There is no authentication: bind a non-loopback
// address only on a trusted network. The log route serves only the log
// files named by the task's own record, and only when their name is the
// one the executor gives the logs of that task, whatever the request's
// encoding.
//
// Live updates: see events.go. A database that implements
// model.ChangeWatcher (the file database, with fsnotify) tells the server
// at once which runs changed; for one that does not, the server polls it,
// and only while a browser is connected. Browsers never poll.
package web

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ork-run/ork/model"
)

//go:embed static
var staticFS embed.FS

// Options configure a Server. The zero value is usable.
type Options struct {
	// Logger receives errors the server cannot return to a client.
	Logger *slog.Logger
	// PollInterval is how often a database that cannot watch changes is
	// looked at while a browser is connected. Default 50ms.
	PollInterval time.Duration
	// LoopbackOnly refuses (403) requests whose Host is not a loopback
	// name or address: set it when the server listens on loopback, so a
	// page of another site cannot reach it by DNS rebinding.
	LoopbackOnly bool
	// TriggeredBy is recorded in the runs the UI triggers. Default "web".
	TriggeredBy string
	// CheckWorkflow, if set, may refuse to trigger a workflow (409), as
	// `ork trigger` refuses one that needs an executor this ork was built
	// without.
	CheckWorkflow func(*model.Workflow) error
}

// Server serves the API, the events and the UI of one database.
type Server struct {
	db   model.Database
	opts Options
	log  *slog.Logger
	mux  *http.ServeMux
	hub  *hub
}

// route is one route of the API; the OpenAPI document is checked against
// this table by a test, and the mux is built from it.
type route struct {
	method, pattern string
	handler         func(*Server, http.ResponseWriter, *http.Request)
}

var routes = []route{
	{"GET", "/api/workflows", (*Server).listWorkflows},
	{"GET", "/api/workflows/{name}", (*Server).getWorkflow},
	{"POST", "/api/workflows/{name}/trigger", (*Server).trigger},
	{"GET", "/api/runs", (*Server).listRuns},
	{"GET", "/api/runs/{id}", (*Server).getRun},
	{"GET", "/api/runs/{id}/tasks", (*Server).listTasks},
	{"GET", "/api/runs/{id}/tasks/{name}/{index}/log", (*Server).taskLog},
	{"POST", "/api/runs/{id}/cancel", (*Server).cancel},
	{"POST", "/api/runs/{id}/retry", (*Server).retry},
	{"GET", "/api/events", (*Server).events},
	{"GET", "/api/openapi.json", (*Server).openAPI},
}

// New makes a server for db and starts watching it for changes until ctx
// ends.
func New(ctx context.Context, db model.Database, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 50 * time.Millisecond
	}
	if opts.TriggeredBy == "" {
		opts.TriggeredBy = "web"
	}
	s := &Server{db: db, opts: opts, log: opts.Logger, mux: http.NewServeMux()}
	h, err := newHub(ctx, db, opts.PollInterval, opts.Logger)
	if err != nil {
		return nil, err
	}
	s.hub = h
	for _, rt := range routes {
		s.mux.HandleFunc(rt.method+" "+rt.pattern, func(w http.ResponseWriter, r *http.Request) {
			if rt.method == "POST" && !sameOrigin(r) {
				writeError(w, http.StatusForbidden, "cross-site request refused: state-changing requests must come from this server's own pages")
				return
			}
			// An id or name no database could hold is not asked for.
			for _, k := range []string{"id", "name"} {
				if v := r.PathValue(k); v != "" && !plausibleName(v) {
					writeError(w, http.StatusNotFound, fmt.Sprintf("%s %.80q: %v", map[string]string{"id": "run", "name": "name"}[k], v, model.ErrNotFound))
					return
				}
			}
			if v := r.URL.Query().Get("run"); v != "" && !plausibleName(v) {
				writeError(w, http.StatusNotFound, fmt.Sprintf("run %.80q: %v", v, model.ErrNotFound))
				return
			}
			rt.handler(s, w, r)
		})
	}
	// Unknown API paths and wrong methods answer in JSON too.
	probe := http.NewServeMux()
	allow := map[string]string{}
	for _, rt := range routes {
		probe.HandleFunc(rt.pattern, func(http.ResponseWriter, *http.Request) {})
		allow[rt.pattern] = rt.method
	}
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		if _, pat := probe.Handler(r); pat != "" {
			w.Header().Set("Allow", allow[pat])
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, allow[pat]))
			return
		}
		writeError(w, http.StatusNotFound, "no such API route: "+r.URL.Path+" (see /api/openapi.json)")
	})
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	staticFile := func(w http.ResponseWriter, r *http.Request) {
		// Only the files there are; any other name is a 404 (the file
		// server would answer some odd names with a 500).
		name := r.PathValue("file")
		if st, err := fs.Stat(static, name); !fs.ValidPath(name) || err != nil || st.IsDir() {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	}
	page := func(w http.ResponseWriter, r *http.Request) {
		data, _ := fs.ReadFile(static, "index.html")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(data)
	}
	s.mux.HandleFunc("GET /{$}", page)
	s.mux.HandleFunc("GET /runs", page)
	s.mux.HandleFunc("GET /runs/{id}", page)
	s.mux.HandleFunc("GET /workflows/{name}", page)
	s.mux.HandleFunc("GET /static/{file}", staticFile)
	return s, nil
}

// ServeHTTP serves the API, the events and the UI.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.opts.LoopbackOnly && !loopbackHost(r.Host) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("host %q refused: this server answers only on a loopback address", r.Host))
		return
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
	s.mux.ServeHTTP(w, r)
}

// plausibleName reports whether s may name a run, a workflow or a task:
// valid UTF-8 of at most 200 bytes, without control characters. (Names
// with slashes stay possible: a flat workflow's task is named by its job's
// path.)
func plausibleName(s string) bool {
	if len(s) > 200 || !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// sameOrigin reports whether a state-changing request may go ahead: a
// browser says where it comes from (Sec-Fetch-Site, else Origin) and it
// must be this server; a client that is no browser sends neither and may.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin" || site == "none"
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	return origin == "http://"+r.Host || origin == "https://"+r.Host
}

// loopbackHost reports whether host (with or without port) names the
// loopback interface.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// IsLoopbackAddr reports whether a listen address binds loopback only.
func IsLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false // ":4000" listens on every interface
	}
	return loopbackHost(host)
}

type apiError struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiError{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		code, data = http.StatusInternalServerError, []byte(`{"error":"encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(data)
	w.Write([]byte("\n"))
}

// dbError answers for an error of the database: 404 for what does not
// exist, else 500 (logged).
func (s *Server) dbError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, model.ErrNotFound) {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away
	}
	s.log.Error("web: database", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, err.Error())
}
