package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// FileError is a problem with one file. Line and Column, when not zero,
// point at the problem (both count from 1).
type FileError struct {
	Path   string
	Line   int
	Column int
	Err    error
}

func (e *FileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s: line %d, column %d: %v", e.Path, e.Line, e.Column, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Path, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// lineCol turns a byte offset of data into a 1-based line and column.
func lineCol(data []byte, offset int64) (line, col int) {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	if offset < 0 {
		offset = 0
	}
	before := data[:offset]
	line = bytes.Count(before, []byte{'\n'}) + 1
	col = int(offset) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

// DecodeJSON decodes data, the contents of the file at path, into v. It
// requires exactly one JSON value; with strict, unknown fields are errors.
// Errors are *FileError with the line and column of the problem.
func DecodeJSON(path string, data []byte, v any, strict bool) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	// Numbers keep every digit: a parameter 12345678901234567890 or 1.10
	// is read (and written back) as it was written, never through float64.
	dec.UseNumber()
	if strict {
		dec.DisallowUnknownFields()
	}
	fail := func(off int64, err error) error {
		l, c := lineCol(data, off)
		return &FileError{Path: path, Line: l, Column: c, Err: err}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return &FileError{Path: path, Err: errors.New("file is empty")}
	}
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			// Offset counts the bytes read, the bad one included.
			return fail(se.Offset-1, err)
		case errors.As(err, &te):
			// Offset is just past a bad literal, or just past the '[' or
			// '{' of a bad array or object: point at the start of it.
			msg := fmt.Errorf("%s must be %s, not %s", fieldName(te), jsonKind(te.Type.Kind().String()), te.Value)
			return fail(tokenStart(data, te.Offset-1), msg)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return fail(int64(len(data)), errors.New("unexpected end of file: the JSON is cut short"))
		default:
			if off := unknownFieldStart(data, err); off >= 0 {
				return fail(off, err)
			}
			return fail(dec.InputOffset(), err)
		}
	}
	// Exactly one value: anything after it but white space is an error.
	if dec.More() {
		return fail(dec.InputOffset(), errors.New("unexpected data after the JSON value"))
	}
	if _, err := dec.Token(); err != io.EOF {
		return fail(dec.InputOffset(), errors.New("unexpected data after the JSON value"))
	}
	return nil
}

// walkTokens calls fn with every token of the JSON in data, the offsets
// where it starts and ends, and its depth (the top-level value is at depth
// 0, the members of a top-level object at 1), until fn returns false, the
// data ends, or it stops being valid JSON.
func walkTokens(data []byte, fn func(tok json.Token, start, end int64, depth int) bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	depth := 0
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return
		}
		end := dec.InputOffset()
		for start < end && strings.IndexByte(" \t\r\n,:", data[start]) >= 0 {
			start++
		}
		if tok == json.Delim('}') || tok == json.Delim(']') {
			depth--
		}
		if !fn(tok, start, end, depth) {
			return
		}
		if tok == json.Delim('{') || tok == json.Delim('[') {
			depth++
		}
	}
}

// tokenStart returns the offset where the JSON token that covers byte pos
// of data starts, or pos if no token does.
func tokenStart(data []byte, pos int64) int64 {
	found := pos
	walkTokens(data, func(_ json.Token, start, end int64, _ int) bool {
		if start <= pos && pos < end {
			found = start
		}
		return end <= pos
	})
	return found
}

// unknownFieldStart returns the offset of the object key that err, an
// "unknown field" error of encoding/json, names: the first one in a
// top-level object, else the first one anywhere. It returns -1 when err is
// not such an error or the key is not found.
func unknownFieldStart(data []byte, err error) int64 {
	quoted, ok := strings.CutPrefix(err.Error(), "json: unknown field ")
	if !ok {
		return -1
	}
	name, uerr := strconv.Unquote(quoted)
	if uerr != nil {
		return -1
	}
	top, any := int64(-1), int64(-1)
	walkTokens(data, func(tok json.Token, start, end int64, depth int) bool {
		if s, ok := tok.(string); !ok || s != name || !isKey(data, end) {
			return true
		}
		if any < 0 {
			any = start
		}
		if depth == 1 {
			top = start
			return false
		}
		return true
	})
	if top >= 0 {
		return top
	}
	return any
}

// isKey reports whether the string token that ends at offset end of data
// is an object key: whether a ':' follows it.
func isKey(data []byte, end int64) bool {
	rest := bytes.TrimLeft(data[end:], " \t\r\n")
	return len(rest) > 0 && rest[0] == ':'
}

func fieldName(te *json.UnmarshalTypeError) string {
	if te.Field != "" {
		return fmt.Sprintf("field %q", te.Field)
	}
	return "the file"
}

func jsonKind(goKind string) string {
	switch goKind {
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "int", "int64", "int32", "uint", "uint64", "float64", "float32":
		return "a number"
	}
	return "a " + goKind
}

// DecodeWorkflow decodes, normalizes and validates a workflow file. Unknown
// fields are errors, so a typo in a hand-written file is caught. A file that
// leaves out "name" is named after the file ("hello.json" is "hello").
func DecodeWorkflow(path string, data []byte) (*Workflow, error) {
	var w Workflow
	if err := DecodeJSON(path, data, &w, true); err != nil {
		return nil, err
	}
	if w.Name == "" {
		base := path[strings.LastIndexByte(path, '/')+1:]
		w.Name = strings.TrimSuffix(base, ".json")
	}
	if name, off, dup := duplicateTaskNames(data); dup {
		l, c := lineCol(data, off)
		return nil, &FileError{Path: path, Line: l, Column: c, Err: fmt.Errorf("task %q is defined twice", name)}
	}
	w.Normalize()
	if w.Schedule != nil {
		if err := w.Schedule.Validate(); err != nil {
			return nil, scheduleFileError(path, data, err)
		}
	}
	if err := w.Validate(); err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	return &w, nil
}

// DecodeWorkflowFile decodes a workflow file the way ork reads one from a
// workflows directory, where a workflow is known by its file name: on top
// of DecodeWorkflow's checks, a "name" field must be the file's name
// ("hello.json" holds the workflow "hello"). `ork validate`, `ork trigger`
// and the scheduler all read workflow files through it, so they agree on
// every file.
func DecodeWorkflowFile(path string, data []byte) (*Workflow, error) {
	w, err := DecodeWorkflow(path, data)
	if err != nil {
		return nil, err
	}
	base := path[strings.LastIndexAny(path, `/\`)+1:]
	if file := strings.TrimSuffix(base, ".json"); w.Name != file {
		return nil, &FileError{Path: path, Err: fmt.Errorf("the file is named %q but its name field says %q: rename the file to %s.json or fix the field", file, w.Name, w.Name)}
	}
	return w, nil
}

// DecodeRun decodes a run record and checks the fields ork relies on.
func DecodeRun(path string, data []byte) (*Run, error) {
	var r Run
	if err := DecodeJSON(path, data, &r, false); err != nil {
		return nil, err
	}
	switch {
	case r.ID == "":
		return nil, &FileError{Path: path, Err: errors.New("run has no id")}
	case !r.Status.Valid():
		return nil, &FileError{Path: path, Err: fmt.Errorf("run status %q is unknown", r.Status)}
	}
	if r.Workflow != nil {
		r.Workflow.Normalize()
	}
	return &r, nil
}

// DecodeTask decodes a task record and checks the fields ork relies on.
func DecodeTask(path string, data []byte) (*Task, error) {
	var t Task
	if err := DecodeJSON(path, data, &t, false); err != nil {
		return nil, err
	}
	switch {
	case t.ID == "" || t.RunID == "":
		return nil, &FileError{Path: path, Err: errors.New("task has no id or run_id")}
	case !t.Status.Valid():
		return nil, &FileError{Path: path, Err: fmt.Errorf("task status %q is unknown", t.Status)}
	case t.TaskIndex < 0:
		return nil, &FileError{Path: path, Err: fmt.Errorf("task_index %d is negative", t.TaskIndex)}
	}
	return &t, nil
}
