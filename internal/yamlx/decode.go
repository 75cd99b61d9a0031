package yamlx

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// ScalarUnmarshaler is implemented by types read from one scalar, such as
// quantities or byte sizes. tag is the node's short tag ("!!str", "!!int"…).
type ScalarUnmarshaler interface {
	UnmarshalYAMLScalar(value, tag string) error
}

var (
	nodeType     = reflect.TypeOf((*yaml.Node)(nil))
	durationType = reflect.TypeOf(time.Duration(0))
	scalarType   = reflect.TypeOf((*ScalarUnmarshaler)(nil)).Elem()
)

// Decode fills out, a pointer, from n, a node returned by Parse.
//
// Struct fields are named by their `yaml:"name"` tag; fields without one
// are not decoded. Tag options:
//   - required: a missing or null key is an error;
//   - extensions (on a map[string]any): receives the keys starting with
//     "x-", which are otherwise unknown.
//
// Unknown keys are errors. A *yaml.Node field receives the raw node. A null
// value counts as absent: the target keeps what it held, so callers set
// defaults before decoding, and a pointer field stays nil, so callers can
// tell "absent" from "empty". A time.Duration is read with ParseDuration
// (Go's syntax, and d for days). Every problem is reported, in file order, as Errors.
// The returned Positions hold where each decoded path starts.
func Decode(n *yaml.Node, out any) (Positions, error) {
	d := &decoder{pos: Positions{}}
	v := reflect.ValueOf(out)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		panic("yamlx: Decode needs a non-nil pointer")
	}
	if n == nil {
		n = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: 1, Column: 1}
	}
	d.value(n, "", v.Elem())
	return d.pos, d.errs.Err()
}

// DecodeInto is Decode that adds its positions and problems to the
// caller's, for inputs decoded in several parts (such as a merged policy).
func DecodeInto(n *yaml.Node, path string, out any, pos Positions, errs *Errors) {
	if n == nil {
		return // absent: out keeps its defaults, as Decode does
	}
	d := &decoder{pos: pos}
	d.value(n, path, reflect.ValueOf(out).Elem())
	*errs = append(*errs, d.errs...)
}

type decoder struct {
	errs Errors
	pos  Positions
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{Line: n.Line, Column: n.Column, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}

func (d *decoder) value(n *yaml.Node, path string, v reflect.Value) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if _, ok := d.pos[path]; !ok {
		d.pos[path] = Pos{n.Line, n.Column}
	}
	t := v.Type()
	if t == nodeType {
		v.Set(reflect.ValueOf(n))
		return
	}
	if isNull(n) {
		return // null means absent: the value keeps its default
	}
	if t.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		d.value(n, path, v.Elem())
		return
	}
	if reflect.PointerTo(t).Implements(scalarType) {
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a single value, found %s", kindName(n))
			return
		}
		if err := v.Addr().Interface().(ScalarUnmarshaler).UnmarshalYAMLScalar(n.Value, n.ShortTag()); err != nil {
			d.fail(n, path, "%v", err)
		}
		return
	}
	if t == durationType {
		d.duration(n, path, v)
		return
	}
	switch t.Kind() {
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a string, found %s", kindName(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || err != nil {
			d.fail(n, path, "expected true or false, found %s", kindName(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(n.Value, 0, t.Bits())
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || err != nil {
			d.fail(n, path, "expected an integer, found %s", kindName(n))
			return
		}
		v.SetInt(i)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, t.Bits())
		tag := n.ShortTag()
		if n.Kind != yaml.ScalarNode || (tag != "!!int" && tag != "!!float") || err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			d.fail(n, path, "expected a number, found %s", kindName(n))
			return
		}
		v.SetFloat(f)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "expected a list, found %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.value(c, Index(path, i), s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "expected a mapping, found %s", kindName(n))
			return
		}
		if t.Key().Kind() != reflect.String {
			panic("yamlx: map keys must be strings")
		}
		m := reflect.MakeMapWithSize(t, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			e := reflect.New(t.Elem()).Elem()
			d.value(n.Content[i+1], Join(path, k), e)
			m.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), e)
		}
		v.Set(m)
	case reflect.Struct:
		d.structure(n, path, v)
	case reflect.Interface:
		if t.NumMethod() != 0 {
			panic("yamlx: cannot decode into " + t.String())
		}
		if g := d.generic(n, path); g != nil {
			v.Set(reflect.ValueOf(g))
		}
	default:
		panic("yamlx: cannot decode into " + t.String())
	}
}

func (d *decoder) duration(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "expected a duration such as 30s, 5m or 7d, found %s", kindName(n))
		return
	}
	dur, err := ParseDuration(n.Value)
	if err != nil {
		d.fail(n, path, "expected a duration such as 30s, 5m or 7d, found %q", n.Value)
		return
	}
	if dur < 0 {
		d.fail(n, path, "duration must not be negative")
		return
	}
	v.SetInt(int64(dur))
}

// generic decodes free-form YAML into map[string]any, []any, string, bool,
// int64, float64 or nil, as JSON would hold it.
func (d *decoder) generic(n *yaml.Node, path string) any {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if _, ok := d.pos[path]; !ok {
		d.pos[path] = Pos{n.Line, n.Column}
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			m[k] = d.generic(n.Content[i+1], Join(path, k))
		}
		return m
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		for i, c := range n.Content {
			s[i] = d.generic(c, Index(path, i))
		}
		return s
	}
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool":
		if b, err := strconv.ParseBool(n.Value); err == nil {
			return b
		}
	case "!!int":
		if i, err := strconv.ParseInt(n.Value, 0, 64); err == nil {
			return i
		}
	case "!!float":
		if f, err := strconv.ParseFloat(n.Value, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return f
		}
	}
	return n.Value
}

type field struct {
	name       string
	index      []int
	required   bool
	extensions bool
}

type structInfo struct {
	fields []field
	byName map[string]int
	ext    int // index into fields of the extensions field, or -1
}

var structCache sync.Map // reflect.Type → *structInfo

func infoFor(t reflect.Type) *structInfo {
	if si, ok := structCache.Load(t); ok {
		return si.(*structInfo)
	}
	si := &structInfo{byName: map[string]int{}, ext: -1}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag, ok := sf.Tag.Lookup("yaml")
		if !ok || tag == "-" || !sf.IsExported() {
			continue
		}
		parts := strings.Split(tag, ",")
		f := field{name: parts[0], index: sf.Index}
		for _, o := range parts[1:] {
			switch o {
			case "required":
				f.required = true
			case "extensions":
				f.extensions = true
			}
		}
		si.fields = append(si.fields, f)
		if f.extensions {
			si.ext = len(si.fields) - 1
		} else {
			si.byName[f.name] = len(si.fields) - 1
		}
	}
	structCache.Store(t, si)
	return si
}

func (d *decoder) structure(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, found %s", kindName(n))
		return
	}
	si := infoFor(v.Type())
	seen := make([]bool, len(si.fields))
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		kp := Join(path, k.Value)
		fi, ok := si.byName[k.Value]
		if !ok {
			if si.ext >= 0 && strings.HasPrefix(k.Value, "x-") {
				ev := v.FieldByIndex(si.fields[si.ext].index)
				if ev.IsNil() {
					ev.Set(reflect.MakeMap(ev.Type()))
				}
				d.pos[kp] = Pos{val.Line, val.Column}
				g := d.generic(val, kp)
				ev.SetMapIndex(reflect.ValueOf(k.Value), reflect.ValueOf(&g).Elem())
				continue
			}
			d.fail(k, kp, "unknown key%s", suggest(k.Value, si))
			continue
		}
		seen[fi] = true
		f := si.fields[fi]
		if f.required && isNull(val) {
			d.fail(val, kp, "must not be empty")
			continue
		}
		d.value(val, kp, v.FieldByIndex(f.index))
	}
	for i, f := range si.fields {
		if f.required && !seen[i] {
			d.errs = append(d.errs, &Error{Line: n.Line, Column: n.Column, Path: Join(path, f.name), Msg: "missing required key"})
		}
	}
}

// suggest names a known key close to an unknown one, for typos.
func suggest(key string, si *structInfo) string {
	best, bestD := "", 3
	for name := range si.byName {
		if dd := distance(strings.ToLower(key), name); dd < bestD || (dd == bestD && name < best && best != "") {
			best, bestD = name, dd
		}
	}
	if best == "" || bestD > 2 {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// distance is the Levenshtein distance, capped at 3 for speed.
func distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 3
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], 3)
}
