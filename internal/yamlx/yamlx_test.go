package yamlx_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/gitmon-dev/gitmon/internal/yamlx"
)

func nested(open, close string, n int) string {
	return strings.Repeat(open, n) + strings.Repeat(close, n)
}

func TestParseLimits(t *testing.T) {
	lim := yamlx.Limits{MaxBytes: 1 << 10, MaxDepth: 64, MaxAliasNodes: 10}
	aliases := func(n int) string {
		return "a: &a [1, 2, 3]\nb: [" + strings.TrimSuffix(strings.Repeat("*a, ", n), ", ") + "]\n"
	}
	cases := []struct {
		name string
		in   string
		lim  *yamlx.Limits // lim when nil
		want string        // the whole error text; "" means accepted
	}{
		{name: "empty", in: ""},
		{name: "comment only", in: "# nothing here\n"},
		{name: "plain mapping", in: "a: 1\nb: [x, y]\n"},
		{name: "byte order mark", in: "\ufeffa: 1\n"},
		{name: "CRLF line ends", in: "a: 1\r\nb: 2\r\n"},
		{name: "tab in a value", in: "a: \"x\ty\"\n"},
		{name: "next line character", in: "a: \"x\u0085y\"\n"},

		{name: "size at the limit", in: "a: " + strings.Repeat("x", 1<<10-4) + "\n"},
		{name: "size over the limit", in: "a: " + strings.Repeat("x", 1<<10-3) + "\n", want: "file is 1025 bytes; the limit is 1 KiB"},
		{name: "no size limit", in: strings.Repeat("# pad\n", 1000), lim: &yamlx.Limits{}},

		{name: "NUL byte", in: "a: 1\nb: x\x00y\n", want: "2:5: binary content: NUL byte"},
		{name: "invalid UTF-8", in: "a: 1\nb: é\xff\n", want: "2:5: invalid UTF-8 (byte 0xff)"},
		{name: "truncated UTF-8", in: "a: caf\xc3", want: "1:7: invalid UTF-8 (byte 0xc3)"},
		{name: "control character", in: "a: 1\n  # ok\nb: \"\x07\"\n", want: "3:5: control character U+0007 is not allowed"},
		{name: "DEL", in: "a: \x7f\n", want: "1:4: control character U+007F is not allowed"},
		{name: "C1 control", in: "a: \u0080\n", want: "1:4: control character U+0080 is not allowed"},
		{name: "noncharacter", in: "a: \uffff\n", want: "1:4: control character U+FFFF is not allowed"},

		{name: "depth 64 flow", in: "a: " + nested("[", "]", 63) + "\n"},
		{name: "depth 65 flow", in: "a: " + nested("[", "]", 64) + "\n",
			want: "1:67: a" + strings.Repeat("[0]", 63) + ": nesting deeper than 64 levels"},
		{name: "depth 65 block", in: blockNest(65), lim: &yamlx.DefaultLimits,
			want: "65:129: " + strings.TrimSuffix(strings.Repeat("k.", 64), ".") + ": nesting deeper than 64 levels"},
		{name: "depth 64 block", in: blockNest(64), lim: &yamlx.DefaultLimits},
		{name: "depth 65 top-level sequence", in: nested("[", "]", 65), want: "1:65: " + strings.Repeat("[0]", 64) + ": nesting deeper than 64 levels"},
		{name: "depth 65 through an alias", lim: &yamlx.DefaultLimits, in: "a: &deep " + nested("[", "]", 40) + "\nb: " + strings.Repeat("{k: ", 24) + "*deep" + strings.Repeat("}", 24) + "\n",
			want: "2:100: b" + strings.Repeat(".k", 24) + ": nesting deeper than 64 levels"},
		{name: "depth 64 through an alias", lim: &yamlx.DefaultLimits, in: "a: &deep " + nested("[", "]", 40) + "\nb: " + strings.Repeat("{k: ", 23) + "*deep" + strings.Repeat("}", 23) + "\n"},
		{name: "depth 10000", in: "a: " + nested("[", "]", 10000) + "\n", lim: &yamlx.Limits{MaxDepth: 64},
			want: "1:67: a" + strings.Repeat("[0]", 63) + ": nesting deeper than 64 levels"},
		{name: "depth 10001, past the YAML library's own cap", in: "a: " + nested("[", "]", 10001) + "\n", lim: &yamlx.Limits{MaxDepth: 64},
			want: "nesting deeper than 64 levels"}, // the YAML library gives no line for line 1
		{name: "no depth limit", in: "a: " + nested("[", "]", 200) + "\n", lim: &yamlx.Limits{}},

		{name: "aliases within the limit", in: aliases(3)},
		{name: "aliases over the limit", in: aliases(4), want: "1:1: aliases expand to 12 more nodes; the limit is 10 (alias bomb?)"},
		{name: "alias bomb", in: laughs(9, 9), lim: &yamlx.Limits{MaxAliasNodes: 10000},
			want: "1:1: aliases expand to 490328964 more nodes; the limit is 10000 (alias bomb?)"},
		{name: "alias count saturates", in: laughs(60, 3), lim: &yamlx.Limits{MaxAliasNodes: 10000},
			want: "1:1: aliases expand to over 1099511627473 more nodes; the limit is 10000 (alias bomb?)"},
		{name: "alias to itself", in: "a: &x\n  b: [1, *x]\n", want: "2:10: a.b[1]: alias *x refers to a value that contains it"},
		{name: "unknown alias", in: "a: *nope\n", want: "YAML syntax: unknown anchor 'nope' referenced"},

		{name: "duplicate key", in: "a: 1\nb: 2\na: 3\n", want: "3:1: a: duplicate key (first at line 1)"},
		{name: "duplicate nested key", in: "a:\n  x: 1\n  y: 2\n  x: 3\n", want: "4:3: a.x: duplicate key (first at line 2)"},
		{name: "duplicate key in flow", in: "a: {x: 1, x: 2}\n", want: "1:11: a.x: duplicate key (first at line 1)"},
		{name: "duplicate key quoted", in: "a: 1\n\"a\": 2\n", want: "2:1: a: duplicate key (first at line 1)"},
		{name: "duplicate key in a large mapping", in: largeMapping(40) + "k7: again\n", want: "41:1: k7: duplicate key (first at line 8)"},
		{name: "duplicates, all reported", in: "a: 1\na: 2\nb: {c: 1, c: 2}\n",
			want: "2:1: a: duplicate key (first at line 1)\n3:11: b.c: duplicate key (first at line 3)"},
		{name: "merge key", in: "base: &b {x: 1}\nc:\n  <<: *b\n", want: "3:3: c.<<: merge keys (<<) are not supported"},
		{name: "quoted << is a key", in: "\"<<\": 1\n"},
		{name: "non-scalar key", in: "? [a, b]\n: 1\n", want: "1:3: keys must be plain strings"},

		{name: "two documents", in: "a: 1\n---\nb: 2\n", want: "2:1: more than one YAML document"},
		{name: "document end then another", in: "a: 1\n...\n---\nb: 2\n", want: "3:1: more than one YAML document"},
		{name: "one explicit document", in: "---\na: 1\n...\n"},
		{name: "syntax error", in: "a: [1, 2\nb: 3\n", want: "YAML syntax: did not find expected ',' or ']'"},
		{name: "bad indentation", in: "a:\n  b: 1\n c: 2\n", want: "YAML syntax: did not find expected key"},
		{name: "tab indentation", in: "a:\n\tb: 1\n", want: "YAML syntax: found character that cannot start any token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := lim
			if tc.lim != nil {
				l = *tc.lim
			}
			_, err := yamlx.Parse([]byte(tc.in), l)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.want == "":
				return
			case err == nil:
				t.Fatalf("accepted; want %q", tc.want)
			}
			// Compared field by field: Error() shortens long key paths.
			if got := render(err); got != tc.want && !(strings.HasPrefix(tc.want, "YAML") && strings.HasSuffix(got, tc.want)) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
			if len(err.Error()) > 600 {
				t.Errorf("the error is %d bytes long", len(err.Error()))
			}
			var list yamlx.Errors
			var one *yamlx.Error
			if !errors.As(err, &list) && !errors.As(err, &one) {
				t.Errorf("error is %T, want *Error or Errors", err)
			}
		})
	}
}

// render writes each problem as line:col: path: message, in full.
func render(err error) string {
	var lines []string
	for _, e := range yamlx.List(err) {
		lines = append(lines, (&yamlx.Error{Line: e.Line, Column: e.Column, Msg: e.Msg}).Error())
		if e.Path != "" {
			pos, _, _ := strings.Cut(lines[len(lines)-1], " ")
			if e.Line == 0 {
				pos = ""
			} else {
				pos += " "
			}
			lines[len(lines)-1] = pos + e.Path + ": " + e.Msg
		}
	}
	return strings.Join(lines, "\n")
}

// blockNest nests depth block mappings.
func blockNest(depth int) string {
	var b strings.Builder
	for i := 0; i < depth-1; i++ {
		b.WriteString(strings.Repeat("  ", i) + "k:\n")
	}
	b.WriteString(strings.Repeat("  ", depth-1) + "leaf: 1\n")
	return b.String()
}

// laughs is an alias bomb: levels anchors, each a list of n aliases to
// the one before.
func laughs(levels, n int) string {
	var b strings.Builder
	b.WriteString("l0: &l0 lol\n")
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(&b, "l%d: &l%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), n), ", "))
	}
	return b.String()
}

func largeMapping(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "k%d: %d\n", i, i)
	}
	return b.String()
}

func TestParseTooLargeIsErrTooLarge(t *testing.T) {
	_, err := yamlx.Parse(make([]byte, 11), yamlx.Limits{MaxBytes: 10})
	if !errors.Is(err, yamlx.ErrTooLarge) {
		t.Errorf("got %v", err)
	}
}

func TestParseReturnsTheRoot(t *testing.T) {
	for in, want := range map[string]yaml.Kind{
		"a: 1":   yaml.MappingNode,
		"- 1":    yaml.SequenceNode,
		"plain":  yaml.ScalarNode,
		"~":      yaml.ScalarNode,
		"--- ~":  yaml.ScalarNode,
		"[1, 2]": yaml.SequenceNode,
	} {
		n, err := yamlx.Parse([]byte(in), yamlx.DefaultLimits)
		if err != nil || n == nil || n.Kind != want {
			t.Errorf("Parse(%q) = %v, %v; want kind %v", in, n, err, want)
		}
	}
	for _, in := range []string{"", "# c\n", "---\n", "\n\n"} {
		n, err := yamlx.Parse([]byte(in), yamlx.DefaultLimits)
		if err != nil || (n != nil && !(n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")) {
			t.Errorf("Parse(%q) = %v, %v; want no document", in, n, err)
		}
	}
}

func TestParseCapsTheProblems(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 40; i++ {
		b.WriteString("a: 1\n")
	}
	_, err := yamlx.Parse([]byte(b.String()), yamlx.DefaultLimits)
	list := yamlx.List(err)
	if len(list) != yamlx.MaxReported+1 || !strings.Contains(list[len(list)-1].Msg, "and 14 more problems") {
		t.Errorf("got %d problems, last %q", len(list), list[len(list)-1])
	}
}

func TestReadLimited(t *testing.T) {
	data, err := yamlx.ReadLimited(strings.NewReader("12345"), 5)
	if err != nil || string(data) != "12345" {
		t.Errorf("at the limit: %q, %v", data, err)
	}
	r := &countingReader{r: strings.NewReader(strings.Repeat("x", 100))}
	_, err = yamlx.ReadLimited(r, 5)
	if !errors.Is(err, yamlx.ErrTooLarge) || err.Error() != "input too large: over 5 bytes" {
		t.Errorf("over the limit: %v", err)
	}
	if r.n > 6 {
		t.Errorf("read %d bytes; at most 6 are needed", r.n)
	}
	boom := errors.New("boom")
	if _, err := yamlx.ReadLimited(io.MultiReader(strings.NewReader("x"), errReader{boom}), 5); !errors.Is(err, boom) {
		t.Errorf("read error: %v", err)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 bytes", 1000: "1000 bytes", 1024: "1 KiB", 256 << 10: "256 KiB", 1536: "1536 bytes",
		64 << 20: "64 MiB", 1 << 30: "1 GiB", 3 << 30: "3 GiB", (1 << 30) + 1024: "1048577 KiB",
	} {
		if got := yamlx.FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestErrorText(t *testing.T) {
	sentinel := errors.New("sentinel")
	cases := []struct {
		e    yamlx.Error
		want string
	}{
		{yamlx.Error{File: "f.yaml", Line: 3, Column: 7, Path: "a.b", Msg: "bad"}, "f.yaml:3:7: a.b: bad"},
		{yamlx.Error{File: "f.yaml", Line: 3, Msg: "bad"}, "f.yaml:3: bad"},
		{yamlx.Error{File: "f.yaml", Msg: "bad"}, "f.yaml: bad"},
		{yamlx.Error{Line: 3, Column: 7, Path: "a", Msg: "bad"}, "3:7: a: bad"},
		{yamlx.Error{Path: "a", Msg: "bad"}, "a: bad"},
		{yamlx.Error{Msg: "bad", Err: sentinel}, "bad"},
	}
	for _, tc := range cases {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
	es := yamlx.Errors{{Line: 2, Msg: "two"}, {Line: 1, Msg: "one", Err: sentinel}}
	err := es.Err()
	if err.Error() != "1: one\n2: two" {
		t.Errorf("Errors = %q, want sorted by line", err)
	}
	if !errors.Is(err, sentinel) {
		t.Error("errors.Is does not see into Errors")
	}
	if yamlx.Errors(nil).Err() != nil {
		t.Error("empty Errors is not nil")
	}
	withFile := yamlx.WithFile(fmt.Errorf("plain"), "x.yaml")
	if withFile.Error() != "x.yaml: plain" {
		t.Errorf("WithFile(plain) = %q", withFile)
	}
	if yamlx.List(nil) != nil {
		t.Error("List(nil) is not nil")
	}
	if got := yamlx.Join(yamlx.Index(yamlx.Join("", "a"), 2), "b"); got != "a[2].b" {
		t.Errorf("path = %q", got)
	}
}

// size is a ScalarUnmarshaler, such as a quantity.
type size struct{ value, tag string }

func (s *size) UnmarshalYAMLScalar(value, tag string) error {
	if value == "bad" {
		return errors.New(`"bad" is not a size`)
	}
	*s = size{value, tag}
	return nil
}

type inner struct {
	Name  string `yaml:"name,required"`
	Count int    `yaml:"count"`
}

type config struct {
	Name    string            `yaml:"name,required"`
	Port    int               `yaml:"port"`
	Small   int8              `yaml:"small"`
	Ratio   float64           `yaml:"ratio"`
	On      bool              `yaml:"on"`
	Wait    time.Duration     `yaml:"wait"`
	Tags    []string          `yaml:"tags"`
	Allow   *[]string         `yaml:"allow"`
	Opt     *inner            `yaml:"opt"`
	Inner   inner             `yaml:"inner"`
	Items   []inner           `yaml:"items"`
	Labels  map[string]int    `yaml:"labels"`
	Any     any               `yaml:"any"`
	Raw     *yaml.Node        `yaml:"raw"`
	Size    size              `yaml:"size"`
	Ext     map[string]any    `yaml:",extensions"`
	Hidden  string            // no tag: never decoded
	Skipped string            `yaml:"-"`
	Aliased map[string]string `yaml:"aliased"`
}

func decode(t *testing.T, in string, out any) (yamlx.Positions, error) {
	t.Helper()
	n, err := yamlx.Parse([]byte(in), yamlx.DefaultLimits)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return yamlx.Decode(n, out)
}

func TestDecodeValues(t *testing.T) {
	in := `name: svc
port: 0x1F90
small: -8
ratio: 1.5
on: true
wait: 1m30s
tags: [a, b]
allow: []
inner: {name: in, count: 2}
items:
  - {name: one}
  - {name: two, count: 2}
labels: {x: 1, y: 2}
any: {k: [1, 2.5, true, ~, s]}
raw: [keep, me]
size: !!str 10Gi
x-team: {lead: bob}
x-n: 7
aliased: {a: &v shared, b: *v}
`
	var c config
	c.Hidden, c.Skipped = "h", "s"
	if _, err := decode(t, in, &c); err != nil {
		t.Fatal(err)
	}
	want := config{
		Name: "svc", Port: 8080, Small: -8, Ratio: 1.5, On: true, Wait: 90 * time.Second,
		Tags: []string{"a", "b"}, Allow: &[]string{},
		Inner: inner{Name: "in", Count: 2}, Items: []inner{{Name: "one"}, {Name: "two", Count: 2}},
		Labels: map[string]int{"x": 1, "y": 2},
		Any:    map[string]any{"k": []any{int64(1), 2.5, true, nil, "s"}},
		Raw:    c.Raw, Size: size{"10Gi", "!!str"},
		Ext:    map[string]any{"x-team": map[string]any{"lead": "bob"}, "x-n": int64(7)},
		Hidden: "h", Skipped: "s",
		Aliased: map[string]string{"a": "shared", "b": "shared"},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %#v\nwant %#v", c, want)
	}
	if c.Raw == nil || c.Raw.Kind != yaml.SequenceNode || len(c.Raw.Content) != 2 {
		t.Errorf("raw node = %#v", c.Raw)
	}
	if c.Opt != nil {
		t.Error("an absent pointer field was allocated")
	}
	if c.Allow == nil || *c.Allow == nil || len(*c.Allow) != 0 {
		t.Error("[] must decode to a non-nil pointer to an empty, non-nil list")
	}
}

func TestDecodeNullKeepsDefaults(t *testing.T) {
	c := config{Port: 8080, Tags: []string{"default"}, Wait: time.Second, Inner: inner{Count: 3}}
	pos, err := decode(t, "name: svc\nport: ~\ntags: null\nwait:\ninner: ~\nallow: ~\nopt: null\nany: ~\n", &c)
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 8080 || len(c.Tags) != 1 || c.Wait != time.Second || c.Inner.Count != 3 || c.Allow != nil || c.Opt != nil || c.Any != nil {
		t.Errorf("null changed a default: %+v", c)
	}
	// The file still holds the key: callers can tell "port: ~" from no port.
	if _, ok := pos["port"]; !ok {
		t.Error("a null key has no position")
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name, in string
		want     string // the whole error text
	}{
		{"unknown key with suggestion", "name: a\nprot: 1\n", `2:1: prot: unknown key (did you mean "port"?)`},
		{"unknown key, other case", "Name: a\n", "1:1: Name: unknown key (did you mean \"name\"?)\n1:1: name: missing required key"},
		{"unknown key far from any", "name: a\nzzzzzzz: 1\n", "2:1: zzzzzzz: unknown key"},
		{"unknown nested key", "name: a\ninner: {name: b, cuont: 1}\n", `2:18: inner.cuont: unknown key (did you mean "count"?)`},
		{"x- key without extensions", "name: a\ninner: {name: b, x-y: 1}\n", "2:18: inner.x-y: unknown key"},
		{"missing required", "port: 1\n", "1:1: name: missing required key"},
		{"null required", "name: ~\n", "1:7: name: must not be empty"},
		{"missing nested required", "name: a\ninner: {count: 1}\n", "2:8: inner.name: missing required key"},
		{"missing required in a list", "name: a\nitems: [{count: 1}]\n", "2:9: items[0].name: missing required key"},
		{"string given a list", "name: [a]\n", "1:7: name: expected a string, found a list"},
		{"int given a word", "name: a\nport: eighty\n", `2:7: port: expected an integer, found "eighty"`},
		{"int given a float", "name: a\nport: 80.5\n", `2:7: port: expected an integer, found "80.5"`},
		{"int given a quoted number", "name: a\nport: \"80\"\n", `2:7: port: expected an integer, found "80"`},
		{"int overflow", "name: a\nsmall: 300\n", `2:8: small: expected an integer, found "300"`},
		{"bool given yes", "name: a\non: yes\n", `2:5: on: expected true or false, found "yes"`},
		{"float given a word", "name: a\nratio: much\n", `2:8: ratio: expected a number, found "much"`},
		{"float given infinity", "name: a\nratio: .inf\n", `2:8: ratio: expected a number, found ".inf"`},
		{"list given a scalar", "name: a\ntags: a\n", `2:7: tags: expected a list, found "a"`},
		{"struct given a list", "name: a\ninner: [1]\n", "2:8: inner: expected a mapping, found a list"},
		{"map given a scalar", "name: a\nlabels: x\n", `2:9: labels: expected a mapping, found "x"`},
		{"map value of wrong type", "name: a\nlabels: {x: one}\n", `2:13: labels.x: expected an integer, found "one"`},
		{"duration without unit", "name: a\nwait: 10\n", `2:7: wait: expected a duration such as 30s, 5m or 7d, found "10"`},
		{"negative duration", "name: a\nwait: -1s\n", "2:7: wait: duration must not be negative"},
		{"duration given a list", "name: a\nwait: [1s]\n", "2:7: wait: expected a duration such as 30s, 5m or 7d, found a list"},
		{"scalar unmarshaler error", "name: a\nsize: bad\n", `2:7: size: "bad" is not a size`},
		{"scalar unmarshaler given a mapping", "name: a\nsize: {a: 1}\n", "2:7: size: expected a single value, found a mapping"},
		{"top level not a mapping", "- a\n", "1:1: expected a mapping, found a list"},
		{"every problem at once", "port: x\ninner: {count: y}\nbogus: 1\ntags: {}\n",
			"1:1: name: missing required key\n" +
				`1:7: port: expected an integer, found "x"` + "\n" +
				"2:8: inner.name: missing required key\n" +
				`2:16: inner.count: expected an integer, found "y"` + "\n" +
				"3:1: bogus: unknown key\n" +
				"4:7: tags: expected a list, found a mapping"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c config
			_, err := decode(t, tc.in, &c)
			if err == nil {
				t.Fatalf("no error; want %q", tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("got\n%s\nwant\n%s", err, tc.want)
			}
			var es yamlx.Errors
			if !errors.As(err, &es) {
				t.Errorf("error is %T, want Errors", err)
			}
		})
	}
}

func TestDecodePositions(t *testing.T) {
	in := "name: svc\ntags:\n  - a\n  - b\ninner:\n  count: 2\nx-team: {lead: bob}\n"
	var c config
	pos, err := decode(t, in, &c)
	if err == nil || !strings.Contains(err.Error(), "inner.name: missing required key") {
		t.Fatalf("want the missing inner.name, got %v", err)
	}
	for path, want := range map[string]yamlx.Pos{
		"":                {1, 1},
		"name":            {1, 7},
		"tags":            {3, 3},
		"tags[1]":         {4, 5},
		"inner":           {6, 3},
		"inner.count":     {6, 10},
		"x-team":          {7, 9},
		"x-team.lead":     {7, 16},
		"tags[7]":         {3, 3}, // no such element: its list
		"inner.nope.deep": {6, 3}, // nearest ancestor
		"nowhere":         {1, 1}, // the root
	} {
		if got := pos.At(path); got != want {
			t.Errorf("At(%q) = %v, want %v", path, got, want)
		}
	}
	e := pos.Errorf("tags[1]", "bad %s", "tag")
	if e.Error() != "4:5: tags[1]: bad tag" {
		t.Errorf("Errorf = %q", e)
	}
}

func TestDecodeNilNode(t *testing.T) {
	var c config
	_, err := yamlx.Decode(nil, &c)
	if err == nil || err.Error() != "1:1: name: missing required key" {
		t.Errorf("Decode(nil) = %v", err)
	}
}

func TestDecodeInto(t *testing.T) {
	n, err := yamlx.Parse([]byte("outer:\n  count: x\n  name: b\n"), yamlx.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	pos := yamlx.Positions{}
	var errs yamlx.Errors
	var in inner
	yamlx.DecodeInto(n.Content[1], "outer", &in, pos, &errs)
	if in.Name != "b" || len(errs) != 1 || errs[0].Error() != `2:10: outer.count: expected an integer, found "x"` {
		t.Errorf("got %+v, %v", in, errs)
	}
	if pos.At("outer.name") != (yamlx.Pos{Line: 3, Column: 9}) {
		t.Errorf("positions = %v", pos)
	}
}

func TestDecodeNeedsAPointer(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	var c config
	yamlx.Decode(nil, c) //nolint:govet // the point of the test
}

func TestDecodeMatchesTheYAMLLibrary(t *testing.T) {
	// Free-form values decode as yaml.v3 itself would, numbers aside:
	// integers are int64 so that JSON keeps them exact.
	in := []byte("a: [1, -2, 0x10, 1.5, .5, 1e3, true, false, ~, text, '3']\n")
	var ours struct {
		A []any `yaml:"a"`
	}
	if _, err := decode(t, string(in), &ours); err != nil {
		t.Fatal(err)
	}
	want := []any{int64(1), int64(-2), int64(16), 1.5, 0.5, 1000.0, true, false, nil, "text", "3"}
	if !reflect.DeepEqual(ours.A, want) {
		t.Errorf("got %#v\nwant %#v", ours.A, want)
	}
	var theirs struct{ A []any }
	if err := yaml.NewDecoder(bytes.NewReader(in)).Decode(&theirs); err != nil {
		t.Fatal(err)
	}
	if len(theirs.A) != len(ours.A) {
		t.Errorf("yaml.v3 reads %d values", len(theirs.A))
	}
}
