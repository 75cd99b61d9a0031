package yamlx

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Error is one problem in a YAML file, placed as precisely as it can be.
type Error struct {
	File   string // empty until the caller knows it
	Line   int    // 1-based; 0 when no line applies
	Column int    // 1-based; 0 when unknown
	Path   string // the key path, such as "healthcheck.retries" or "ports[1]"
	Msg    string
	Err    error // an underlying sentinel for errors.Is, if any
}

// Error renders "file:line:col: path: message", leaving out what is unknown.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Line > 0 {
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(":")
		if e.Column > 0 {
			b.WriteString(strconv.Itoa(e.Column))
			b.WriteString(":")
		}
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if e.Path != "" {
		b.WriteString(shortPath(e.Path))
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// shortPath keeps deep key paths readable: the head and the tail of the
// path, and how many levels were left out between them.
func shortPath(p string) string {
	const keep = 40
	if len(p) <= 2*keep+20 {
		return p
	}
	head, tail := p[:keep], p[len(p)-keep:]
	left := strings.Count(p[keep:len(p)-keep], "[") + strings.Count(p[keep:len(p)-keep], ".")
	return fmt.Sprintf("%s…(%d levels)…%s", head, left, tail)
}

// Errors is every problem found in one input, in file order.
type Errors []*Error

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Unwrap lets errors.Is and errors.As look at each problem.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// MaxReported is how many problems of one input are reported; the rest
// are counted in a last line, so hostile input cannot flood the output.
const MaxReported = 25

// Err returns es sorted and capped at MaxReported as an error, or nil
// when it is empty.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	es = es.sorted()
	if len(es) > MaxReported {
		more := len(es) - MaxReported
		last := es[MaxReported-1]
		es = append(es[:MaxReported:MaxReported], &Error{File: last.File, Line: last.Line, Column: last.Column,
			Msg: fmt.Sprintf("… and %d more problems", more)})
	}
	return es
}

func (es Errors) sorted() Errors {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Line != es[j].Line {
			return es[i].Line < es[j].Line
		}
		return es[i].Column < es[j].Column
	})
	return es
}

// List flattens err into its problems. A plain error becomes one problem
// with no position.
func List(err error) Errors {
	switch e := err.(type) {
	case nil:
		return nil
	case Errors:
		return e
	case *Error:
		return Errors{e}
	}
	return Errors{{Msg: err.Error(), Err: err}}
}

// WithFile sets the file of every problem in err and returns them.
func WithFile(err error, file string) Errors {
	es := List(err)
	for _, e := range es {
		e.File = file
	}
	return es
}

// Pos is where a value starts.
type Pos struct{ Line, Column int }

// Positions maps key paths to where their values start.
type Positions map[string]Pos

// At returns the position of path, or of its nearest ancestor that has one.
func (p Positions) At(path string) Pos {
	for {
		if pos, ok := p[path]; ok {
			return pos
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return p[""]
		}
		path = path[:i]
	}
}

// Errorf returns an *Error placed at path.
func (p Positions) Errorf(path, format string, args ...any) *Error {
	pos := p.At(path)
	return &Error{Line: pos.Line, Column: pos.Column, Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Join appends key to a path.
func Join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Index appends a sequence index to a path.
func Index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}
