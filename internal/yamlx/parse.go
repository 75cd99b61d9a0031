// Package yamlx reads untrusted YAML strictly. It owns the two steps every
// gitmon input goes through: Parse rejects hostile input (size, encoding,
// alias bombs, nesting, duplicate keys) before anything is decoded, and
// Decode fills Go values from the node tree, reporting every problem at once
// with its line, column and key path.
//
// Descriptors and the config file both use it, so their errors look alike.
package yamlx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

// Limits bound what Parse accepts.
type Limits struct {
	// MaxBytes is the largest input accepted.
	MaxBytes int
	// MaxDepth is the deepest nesting of mappings and sequences, aliases
	// expanded. The top-level mapping is depth 1.
	MaxDepth int
	// MaxAliasNodes is how many nodes aliases may add once expanded.
	MaxAliasNodes int
}

// DefaultLimits are the limits of SPEC §2.
var DefaultLimits = Limits{MaxBytes: 256 << 10, MaxDepth: 64, MaxAliasNodes: 10000}

// ErrTooLarge is wrapped by the error for input over Limits.MaxBytes.
var ErrTooLarge = errors.New("input too large")

// ReadLimited reads at most max bytes from r. Input longer than that is an
// error wrapping ErrTooLarge; nothing past max+1 bytes is read.
func ReadLimited(r io.Reader, max int) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, err
	}
	if len(data) > max {
		return nil, fmt.Errorf("%w: over %s", ErrTooLarge, FormatBytes(int64(max)))
	}
	return data, nil
}

// FormatBytes renders n bytes the way limits are written in the docs.
func FormatBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

var yamlLineErr = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse checks data against lim and parses it into a node tree. It returns
// the document's root node, or nil for an empty document. Every error is an
// *Error or an Errors list.
func Parse(data []byte, lim Limits) (*yaml.Node, error) {
	if lim.MaxBytes > 0 && len(data) > lim.MaxBytes {
		return nil, &Error{Msg: fmt.Sprintf("file is %d bytes; the limit is %s", len(data), FormatBytes(int64(lim.MaxBytes))), Err: ErrTooLarge}
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		line, col := lineCol(data, i)
		return nil, &Error{Line: line, Column: col, Msg: "binary content: NUL byte"}
	}
	if !utf8.Valid(data) {
		i := firstInvalidUTF8(data)
		line, col := lineCol(data, i)
		return nil, &Error{Line: line, Column: col, Msg: fmt.Sprintf("invalid UTF-8 (byte 0x%02x)", data[i])}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, syntaxError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &Error{Line: extra.Line, Column: extra.Column, Msg: "more than one YAML document"}
	} else if !errors.Is(err, io.EOF) {
		return nil, syntaxError(err)
	}
	root := &doc
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, nil
		}
		root = doc.Content[0]
	}
	c := checker{lim: lim, memo: map[*yaml.Node]shape{}}
	if s := c.check(root, "", 1); lim.MaxDepth > 0 && s.depth > lim.MaxDepth && !c.tooDeep {
		c.errs = append(c.errs, &Error{Line: root.Line, Column: root.Column, Msg: fmt.Sprintf("nesting deeper than %d levels", lim.MaxDepth)})
	}
	if len(c.errs) > 0 {
		return nil, c.errs.sorted()
	}
	if s := c.memo[root]; lim.MaxAliasNodes > 0 && s.nodes-c.literal > lim.MaxAliasNodes {
		return nil, &Error{Line: root.Line, Column: root.Column,
			Msg: fmt.Sprintf("aliases expand to %d more nodes; the limit is %d (alias bomb?)", s.nodes-c.literal, lim.MaxAliasNodes)}
	}
	return root, nil
}

func syntaxError(err error) error {
	msg := err.Error()
	if m := yamlLineErr.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{Line: line, Msg: "YAML syntax: " + m[2]}
	}
	if len(msg) > 6 && msg[:6] == "yaml: " {
		msg = msg[6:]
	}
	return &Error{Msg: "YAML syntax: " + msg}
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return 0
}

func lineCol(b []byte, off int) (int, int) {
	line := 1 + bytes.Count(b[:off], []byte{'\n'})
	col := off - bytes.LastIndexByte(b[:off], '\n')
	return line, col
}

// shape is the size of a subtree with its aliases expanded.
type shape struct {
	nodes int
	depth int
}

type checker struct {
	lim     Limits
	memo    map[*yaml.Node]shape
	literal int
	errs    Errors
	tooDeep bool
}

// check walks n once, memoising the expanded size and depth of every node,
// so an alias bomb costs time linear in the file, not in its expansion.
func (c *checker) check(n *yaml.Node, path string, depth int) shape {
	if s, ok := c.memo[n]; ok {
		return s
	}
	c.literal++
	s := shape{nodes: 1}
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias == nil {
			c.errs = append(c.errs, &Error{Line: n.Line, Column: n.Column, Path: path, Msg: "unknown alias"})
			break
		}
		s = c.expanded(n.Alias, path, depth)
	case yaml.MappingNode:
		s.depth = 1
		seen := make(map[string]*yaml.Node, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			c.literal++
			s.nodes++
			if k.Kind != yaml.ScalarNode {
				c.errs = append(c.errs, &Error{Line: k.Line, Column: k.Column, Path: path, Msg: "keys must be plain strings"})
				continue
			}
			kp := Join(path, k.Value)
			if k.Tag == "!!merge" || (k.Value == "<<" && k.Style == 0) {
				c.errs = append(c.errs, &Error{Line: k.Line, Column: k.Column, Path: kp, Msg: "merge keys (<<) are not supported"})
				continue
			}
			if first, dup := seen[k.Value]; dup {
				c.errs = append(c.errs, &Error{Line: k.Line, Column: k.Column, Path: kp, Msg: fmt.Sprintf("duplicate key (first at line %d)", first.Line)})
				continue
			}
			seen[k.Value] = k
			cs := c.child(v, kp, depth)
			s.nodes += cs.nodes
			s.depth = max(s.depth, 1+cs.depth)
		}
	case yaml.SequenceNode:
		s.depth = 1
		for i, v := range n.Content {
			cs := c.child(v, Index(path, i), depth)
			s.nodes += cs.nodes
			s.depth = max(s.depth, 1+cs.depth)
		}
	}
	c.memo[n] = s
	return s
}

func (c *checker) child(v *yaml.Node, path string, depth int) shape {
	s := c.check(v, path, depth+1)
	if c.lim.MaxDepth > 0 && depth+s.depth > c.lim.MaxDepth && !c.tooDeep {
		c.tooDeep = true
		c.errs = append(c.errs, &Error{Line: v.Line, Column: v.Column, Path: path, Msg: fmt.Sprintf("nesting deeper than %d levels", c.lim.MaxDepth)})
	}
	return s
}

// expanded returns the shape of an alias target. The target was defined
// earlier in the document, so it is usually memoised already.
func (c *checker) expanded(target *yaml.Node, path string, depth int) shape {
	if s, ok := c.memo[target]; ok {
		return s
	}
	return c.check(target, path, depth)
}
