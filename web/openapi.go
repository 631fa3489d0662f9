package web

import (
	"net/http"
)

// openAPIDoc is the OpenAPI 3 description of the API. A test checks it
// against the routes the server really has and the statuses their
// handlers really answer with.
func openAPIDoc() map[string]any {
	type m = map[string]any
	ref := func(name string) m { return m{"$ref": "#/components/schemas/" + name} }
	jsonBody := func(schema m) m { return m{"application/json": m{"schema": schema}} }
	resp := func(desc string, schema m) m { return m{"description": desc, "content": jsonBody(schema)} }
	errResp := func(desc string) m { return resp(desc, ref("Error")) }
	pathParam := func(name, desc string, typ string) m {
		return m{"name": name, "in": "path", "required": true, "description": desc, "schema": m{"type": typ}}
	}
	query := func(name, desc string, schema m) m {
		return m{"name": name, "in": "query", "required": false, "description": desc, "schema": schema}
	}
	runID := pathParam("id", "run id", "string")
	forbidden := errResp("a cross-site request, refused")
	str, integer := m{"type": "string"}, m{"type": "integer"}
	tstamp := m{"type": "string", "format": "date-time"}
	statusEnum := m{"type": "string", "enum": []string{"pending", "dispatched", "running", "success", "failed", "cancelled", "skipped"}}
	runStatusEnum := m{"type": "string", "enum": []string{"pending", "running", "success", "failed", "cancelled"}}
	return m{
		"openapi": "3.0.3",
		"info": m{
			"title":       "ork",
			"version":     "1",
			"description": "The JSON API of `ork serve`. State-changing requests are POSTs and must be same-origin (Sec-Fetch-Site, else Origin); a cross-site one gets 403. Errors are {\"error\": \"...\"}.",
		},
		"paths": m{
			"/api/workflows": m{"get": m{
				"summary":   "The workflows, with their last runs",
				"responses": m{"200": resp("the workflows", m{"type": "object", "properties": m{"workflows": m{"type": "array", "items": ref("Workflow")}, "problems": m{"type": "array", "items": str}}})},
			}},
			"/api/workflows/{name}": m{"get": m{
				"summary":    "One workflow, with its DAG and last runs",
				"parameters": []m{pathParam("name", "workflow name", "string")},
				"responses":  m{"200": resp("the workflow", ref("Workflow")), "404": errResp("no such workflow")},
			}},
			"/api/workflows/{name}/trigger": m{"post": m{
				"summary":     "Trigger a run; the scheduler starts it",
				"parameters":  []m{pathParam("name", "workflow name", "string")},
				"requestBody": m{"required": false, "content": jsonBody(m{"type": "object", "additionalProperties": false, "properties": m{"params": m{"type": "object", "additionalProperties": true}}})},
				"responses":   m{"201": resp("the new run, pending", ref("Run")), "400": errResp("a malformed body (with line and column)"), "403": forbidden, "404": errResp("no such workflow"), "409": errResp("a workflow this ork cannot run (an executor it was built without)"), "413": errResp("a body over 1 MiB")},
			}},
			"/api/runs": m{"get": m{
				"summary": "Runs, newest first, a page at a time",
				"parameters": []m{
					query("workflow", "only runs of this workflow", str),
					query("status", "only runs in this status", runStatusEnum),
					query("limit", "at most this many (1-500, default 50)", m{"type": "integer", "minimum": 1, "maximum": 500}),
					query("before", "only runs created before this time: the `next` of the previous page", tstamp),
				},
				"responses": m{"200": resp("a page of runs", m{"type": "object", "properties": m{"runs": m{"type": "array", "items": ref("Run")}, "next": tstamp}}), "400": errResp("a bad filter")},
			}},
			"/api/runs/{id}": m{"get": m{
				"summary":    "One run, with its task counts and its DAG",
				"parameters": []m{runID},
				"responses":  m{"200": resp("the run", ref("RunDetail")), "404": errResp("no such run")},
			}},
			"/api/runs/{id}/tasks": m{"get": m{
				"summary":    "The tasks of a run, node by node (upstream first), then by index; those not created yet as pending",
				"parameters": []m{runID},
				"responses":  m{"200": resp("the tasks", m{"type": "object", "properties": m{"tasks": m{"type": "array", "items": ref("Task")}}}), "404": errResp("no such run")},
			}},
			"/api/runs/{id}/tasks/{name}/{index}/log": m{"get": m{
				"summary": "The log of one attempt of a task (text); with follow=1, streamed until the attempt ends",
				"parameters": []m{runID, pathParam("name", "task (node) name", "string"), pathParam("index", "task index", "integer"),
					query("attempt", "the attempt (default: the latest)", m{"type": "integer", "minimum": 1}),
					query("offset", "start at this byte", m{"type": "integer", "minimum": 0}),
					query("follow", "1: stream while the attempt runs", m{"type": "string", "enum": []string{"0", "1"}})},
				"responses": m{
					"200": m{"description": "the log from offset (empty when the attempt has not written one)", "content": m{"text/plain": m{"schema": str}},
						"headers": m{"X-Ork-Log-Size": m{"schema": integer}, "X-Ork-Attempt": m{"schema": integer}, "X-Ork-Task-Status": m{"schema": statusEnum}}},
					"400": errResp("a bad index, attempt or offset"),
					"404": errResp("no such run, task or attempt"),
				},
			}},
			"/api/runs/{id}/cancel": m{"post": m{
				"summary":    "Cancel a run: 200 if cancelled here (no scheduler running), 202 if the scheduler will",
				"parameters": []m{runID},
				"responses": m{"200": resp("cancelled", ref("CancelResult")), "202": resp("requested", ref("CancelResult")),
					"403": forbidden, "404": errResp("no such run"), "409": errResp("the run already ended")},
			}},
			"/api/runs/{id}/retry": m{"post": m{
				"summary":    "Retry a finished run that did not succeed: its failed and never-run tasks run again",
				"parameters": []m{runID},
				"responses": m{"202": resp("reopened; the scheduler runs it", m{"type": "object", "properties": m{"run": ref("Run"), "again": integer, "never_ran": integer}}),
					"403": forbidden, "404": errResp("no such run"), "409": errResp("the run has not ended, or it succeeded")},
			}},
			"/api/events": m{"get": m{
				"summary":    "Server-sent events: `ready` once subscribed, `run` (a Run) when a run changes, and with run=ID `tasks` ({run_id, tasks}) when its tasks change",
				"parameters": []m{query("run", "also send the task changes of this run", str)},
				"responses":  m{"200": m{"description": "the event stream", "content": m{"text/event-stream": m{"schema": str}}}, "404": errResp("no such run")},
			}},
			"/api/openapi.json": m{"get": m{
				"summary":   "This document",
				"responses": m{"200": resp("OpenAPI 3", m{"type": "object"})},
			}},
		},
		"components": m{"schemas": m{
			"Error": m{"type": "object", "required": []string{"error"}, "properties": m{"error": str}},
			"Node":  m{"type": "object", "properties": m{"name": str, "job_name": str, "depends_on": m{"type": "array", "items": str}, "task_count": integer, "when": str}},
			"Workflow": m{"type": "object", "properties": m{"name": str, "description": str, "job_name": str, "task_count": integer,
				"params": m{"type": "object"}, "nodes": m{"type": "array", "items": ref("Node")}, "last_runs": m{"type": "array", "items": ref("Run")}}},
			"Run": m{"type": "object", "properties": m{"id": str, "workflow_name": str, "status": runStatusEnum, "triggered_by": str,
				"params": m{"type": "object"}, "created_at": tstamp, "started_at": tstamp, "finished_at": tstamp, "error": str,
				"task_total": integer, "task_counts": m{"type": "object", "additionalProperties": integer}}},
			"RunDetail": m{"allOf": []m{ref("Run"), {"type": "object", "properties": m{"nodes": m{"type": "array", "items": ref("Node")}}}}},
			"Attempt":   m{"type": "object", "properties": m{"attempt": integer, "status": statusEnum, "started_at": tstamp, "finished_at": tstamp, "exit_code": integer, "error": str}},
			"Task": m{"type": "object", "properties": m{"id": str, "name": str, "index": integer, "status": statusEnum, "attempt": integer,
				"exit_code": integer, "error": str, "output": m{}, "dispatched_at": tstamp, "started_at": tstamp, "finished_at": tstamp,
				"retry_at": tstamp, "attempts": m{"type": "array", "items": ref("Attempt")}}},
			"CancelResult": m{"type": "object", "properties": m{"outcome": m{"type": "string", "enum": []string{"cancelled", "requested", "requested-no-scheduler"}}, "run": ref("Run")}},
		}},
	}
}

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, openAPIDoc())
}
