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
	"strings"
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
	// MaxTokens bounds the line breaks, commas and colons of the input:
	// a cheap count, made before parsing, of roughly how many lines, keys
	// and list items it holds. The YAML library parses a file of many
	// tiny tokens slowly (about 4 MB/s), so this keeps the worst case of
	// a file within MaxBytes fast.
	MaxTokens int
}

// DefaultLimits are the limits of SPEC §2.
var DefaultLimits = Limits{MaxBytes: 256 << 10, MaxDepth: 64, MaxAliasNodes: 10000, MaxTokens: 20000}

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
//
// Before parsing it rejects NUL bytes, invalid UTF-8 and the control
// characters YAML forbids, each placed at its line and column. After, it
// rejects more than one document, nesting past MaxDepth, aliases that
// expand past MaxAliasNodes or into themselves, duplicate keys, merge
// keys and keys that are not scalars. The walk is linear in the size of
// the file, whatever the aliases expand to.
func Parse(data []byte, lim Limits) (*yaml.Node, error) {
	if lim.MaxBytes > 0 && len(data) > lim.MaxBytes {
		return nil, &Error{Msg: fmt.Sprintf("file is %d bytes; the limit is %s", len(data), FormatBytes(int64(lim.MaxBytes))), Err: ErrTooLarge}
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		line, col := lineCol(data, i)
		return nil, &Error{Line: line, Column: col, Msg: "binary content: NUL byte"}
	}
	if lim.MaxTokens > 0 {
		if n := countTokens(data); n > lim.MaxTokens {
			return nil, &Error{Msg: fmt.Sprintf("too complex: %d line breaks, commas and colons; the limit is %d", n, lim.MaxTokens)}
		}
	}
	if !utf8.Valid(data) {
		i := firstInvalidUTF8(data)
		line, col := lineCol(data, i)
		return nil, &Error{Line: line, Column: col, Msg: fmt.Sprintf("invalid UTF-8 (byte 0x%02x)", data[i])}
	}
	if i, r := firstControl(data); i >= 0 {
		line, col := lineCol(data, i)
		return nil, &Error{Line: line, Column: col, Msg: fmt.Sprintf("control character %U is not allowed", r)}
	}
	docs, err := decodeAll(data)
	if err != nil {
		return nil, syntaxError(err, lim)
	}
	switch {
	case len(docs) == 0:
		return nil, nil
	case len(docs) > 1:
		return nil, &Error{Line: docs[1].Line, Column: docs[1].Column, Msg: "more than one YAML document"}
	}
	doc := docs[0]
	root := doc
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, nil
		}
		root = doc.Content[0]
	}
	c := checker{lim: lim, memo: map[*yaml.Node]shape{}, active: map[*yaml.Node]bool{}}
	s := c.check(root, 1)
	if lim.MaxDepth > 0 && s.depth > lim.MaxDepth && !c.tooDeep {
		c.errs = append(c.errs, &Error{Line: root.Line, Column: root.Column, Msg: fmt.Sprintf("nesting deeper than %d levels", lim.MaxDepth)})
	}
	if err := c.errs.Err(); err != nil {
		return nil, err
	}
	if lim.MaxAliasNodes > 0 && s.nodes-c.literal > lim.MaxAliasNodes {
		n := strconv.Itoa(s.nodes - c.literal)
		if s.nodes >= maxNodes {
			n = "over " + strconv.Itoa(maxNodes-c.literal)
		}
		return nil, &Error{Line: root.Line, Column: root.Column,
			Msg: fmt.Sprintf("aliases expand to %s more nodes; the limit is %d (alias bomb?)", n, lim.MaxAliasNodes)}
	}
	return root, nil
}

// decodeAll parses every document in data, stopping at the second: one
// is all Parse accepts. A panic inside the YAML library becomes an error,
// so one hostile file cannot take the daemon down with it.
func decodeAll(data []byte) (docs []*yaml.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			docs, err = nil, fmt.Errorf("yaml: parser failure: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for len(docs) < 2 {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, err
		}
		docs = append(docs, &doc)
	}
	return docs, nil
}

func countTokens(b []byte) int {
	return bytes.Count(b, []byte{'\n'}) + bytes.Count(b, []byte{','}) + bytes.Count(b, []byte{':'})
}

// parserProblems are the messages of yaml.v3's parser (parserc.go), as
// opposed to its scanner's.
var parserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

func syntaxError(err error, lim Limits) error {
	msg := err.Error()
	line := 0
	if m := yamlLineErr.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	if line > 0 && parserProblems[msg] {
		// yaml.v3 adds 1 to the 0-based line of scanner errors only;
		// parser errors name the 0-based line where the construct began.
		line++
	}
	if strings.HasPrefix(msg, "exceeded max depth") && lim.MaxDepth > 0 {
		// The YAML library's own cap (10000) is far above ours.
		return &Error{Line: line, Msg: fmt.Sprintf("nesting deeper than %d levels", lim.MaxDepth)}
	}
	return &Error{Line: line, Msg: "YAML syntax: " + msg}
}

// firstControl returns the offset of the first character YAML does not
// allow (C0 and C1 controls other than tab, line feed, carriage return and
// NEL, and U+FFFE/U+FFFF), or -1. The YAML library rejects them too, but
// without saying where. data must be valid UTF-8.
func firstControl(data []byte) (int, rune) {
	for i := 0; i < len(data); {
		c := data[i]
		if c < utf8.RuneSelf {
			if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f {
				return i, rune(c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(data[i:])
		if (r >= 0x80 && r <= 0x9f && r != 0x85) || r == 0xfffe || r == 0xffff {
			return i, r
		}
		i += n
	}
	return -1, 0
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

// lineCol returns the 1-based line and column (in characters, as YAML
// counts them) of the byte at off.
func lineCol(b []byte, off int) (int, int) {
	line := 1 + bytes.Count(b[:off], []byte{'\n'})
	start := bytes.LastIndexByte(b[:off], '\n') + 1
	return line, 1 + utf8.RuneCount(b[start:off])
}

// shape is the size of a subtree with its aliases expanded.
type shape struct {
	nodes int // saturates at maxNodes
	depth int
}

// maxNodes caps shape.nodes so that an alias bomb's expansion, which can
// exceed any integer, is counted without overflowing.
const maxNodes = 1 << 40

func addNodes(a, b int) int { return min(a+b, maxNodes) }

// segment is one step of a key path: a mapping key, or a sequence index
// when key is nil.
type segment struct {
	key   *string
	index int
}

type checker struct {
	lim Limits
	// memo and active hold anchored nodes only: no alias can reach the
	// others, so they are walked once anyway.
	memo    map[*yaml.Node]shape
	active  map[*yaml.Node]bool // anchored collections being walked
	literal int
	errs    Errors
	tooDeep bool
	path    []segment // of the node being walked; rendered only for errors
}

func (c *checker) fail(n *yaml.Node, format string, args ...any) {
	var b strings.Builder
	for _, s := range c.path {
		if s.key != nil {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(*s.key)
		} else {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s.index))
			b.WriteByte(']')
		}
	}
	c.errs = append(c.errs, &Error{Line: n.Line, Column: n.Column, Path: b.String(), Msg: fmt.Sprintf(format, args...)})
}

// check walks n once, memoising the expanded size and depth of every
// anchored node, so an alias bomb costs time linear in the file, not in
// its expansion. depth is n's own nesting level; the walk stops below
// MaxDepth, so neither the recursion nor the key paths grow with a
// hostile nesting.
func (c *checker) check(n *yaml.Node, depth int) shape {
	if s, ok := c.memo[n]; ok {
		return s
	}
	c.literal++
	s := shape{nodes: 1}
	if (n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode) && c.lim.MaxDepth > 0 && depth > c.lim.MaxDepth {
		if !c.tooDeep {
			c.tooDeep = true
			c.fail(n, "nesting deeper than %d levels", c.lim.MaxDepth)
		}
		return shape{nodes: 1, depth: 1}
	}
	anchored := n.Anchor != ""
	switch n.Kind {
	case yaml.AliasNode:
		switch {
		case n.Alias == nil:
			c.fail(n, "unknown alias")
		case c.active[n.Alias]:
			// YAML lets an anchored collection hold an alias to itself:
			// expanding it would never end.
			c.fail(n, "alias *%s refers to a value that contains it", n.Value)
		default:
			s = c.expanded(n.Alias, depth)
		}
	case yaml.MappingNode:
		if anchored {
			c.active[n] = true
		}
		s.depth = 1
		var seen map[string]*yaml.Node // for large mappings only
		if len(n.Content) > 32 {
			seen = make(map[string]*yaml.Node, len(n.Content)/2)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			c.literal++
			s.nodes = addNodes(s.nodes, 1)
			if k.Kind != yaml.ScalarNode {
				c.fail(k, "keys must be plain strings")
				continue
			}
			c.path = append(c.path, segment{key: &k.Value})
			switch first := duplicate(n.Content, i, seen); {
			case k.Tag == "!!merge" || (k.Value == "<<" && k.Style == 0):
				c.fail(k, "merge keys (<<) are not supported")
			case first != nil:
				c.fail(k, "duplicate key (first at line %d)", first.Line)
			default:
				if seen != nil {
					seen[k.Value] = k
				}
				cs := c.child(v, depth)
				s.nodes = addNodes(s.nodes, cs.nodes)
				s.depth = max(s.depth, 1+cs.depth)
			}
			c.path = c.path[:len(c.path)-1]
		}
		if anchored {
			delete(c.active, n)
		}
	case yaml.SequenceNode:
		if anchored {
			c.active[n] = true
		}
		s.depth = 1
		for i, v := range n.Content {
			c.path = append(c.path, segment{index: i})
			cs := c.child(v, depth)
			s.nodes = addNodes(s.nodes, cs.nodes)
			s.depth = max(s.depth, 1+cs.depth)
			c.path = c.path[:len(c.path)-1]
		}
		if anchored {
			delete(c.active, n)
		}
	}
	if anchored {
		c.memo[n] = s
	}
	return s
}

// duplicate returns the first key before content[i] equal to it, or nil.
// seen, when not nil, holds the keys before i; small mappings are scanned.
func duplicate(content []*yaml.Node, i int, seen map[string]*yaml.Node) *yaml.Node {
	key := content[i].Value
	if seen != nil {
		return seen[key]
	}
	for j := 0; j < i; j += 2 {
		if k := content[j]; k.Kind == yaml.ScalarNode && k.Value == key {
			return k
		}
	}
	return nil
}

// child checks v, a value held at nesting level depth, and reports when
// its expanded subtree reaches past MaxDepth: an alias to a shallow anchor
// can still nest too deep where it is used.
func (c *checker) child(v *yaml.Node, depth int) shape {
	s := c.check(v, depth+1)
	if c.lim.MaxDepth > 0 && depth+s.depth > c.lim.MaxDepth && !c.tooDeep {
		c.tooDeep = true
		c.fail(v, "nesting deeper than %d levels", c.lim.MaxDepth)
	}
	return s
}

// expanded returns the shape of an alias target. The target was defined
// earlier in the document, so it is memoised already unless the alias
// sits inside it.
func (c *checker) expanded(target *yaml.Node, depth int) shape {
	if s, ok := c.memo[target]; ok {
		return s
	}
	return c.check(target, depth)
}
