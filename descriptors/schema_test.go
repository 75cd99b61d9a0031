package descriptors_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	yaml "go.yaml.in/yaml/v3"

	"github.com/gitmon-dev/gitmon/descriptors"
)

// schemaOnly lists the bad files the JSON Schema cannot reject, and why.
// Parse rejects them; the schema must accept them, so that this list
// stays true as the schema grows.
var goOnly = map[string]string{
	"service-stem":         "a schema cannot see the file name",
	"interval-11m":         "duration caps are not expressible as a pattern",
	"timeout-2m":           "duration caps are not expressible as a pattern",
	"initial-delay-31m":    "duration caps are not expressible as a pattern",
	"timeout-zero":         "a pattern that excludes every spelling of a zero duration would be unreadable",
	"duplicate-key":        "a JSON object has no duplicate keys: the converted value keeps the last",
	"duplicate-key-nested": "a JSON object has no duplicate keys: the converted value keeps the last",
	"merge-key":            "editors apply merge keys; gitmon rejects them so that each value is written where it applies",
	"too-many-fields":      "the bound counts leaves across nested params and x- keys, which a schema cannot count",
}

// notConvertible lists the bad files that are no single YAML document,
// so there is nothing to validate.
var notConvertible = map[string]string{
	"syntax-error":       "not YAML",
	"multiple-documents": "a schema validates one document",
}

func compileSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(descriptors.JSONSchema))
	if err != nil {
		t.Fatalf("descriptor.schema.json: %v", err)
	}
	const url = "https://raw.githubusercontent.com/gitmon-dev/gitmon/main/descriptors/descriptor.schema.json"
	if id, _ := doc.(map[string]any)["$id"].(string); id != url {
		t.Errorf("$id = %q, want %q", id, url)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return sch
}

// yamlToJSON converts one YAML document to the JSON value an editor
// validates: scalars by their YAML tag, merge keys applied, and the last
// of duplicate keys kept.
func yamlToJSON(data []byte) (any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, &n)
	}
	switch len(docs) {
	case 0:
		return nil, nil
	case 1:
		return nodeToJSON(docs[0], 0)
	}
	return nil, fmt.Errorf("%d documents", len(docs))
}

func nodeToJSON(n *yaml.Node, depth int) (any, error) {
	if depth > 200 {
		return nil, errors.New("too deep")
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return nodeToJSON(n.Content[0], depth+1)
	case yaml.AliasNode:
		return nodeToJSON(n.Alias, depth+1)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := nodeToJSON(c, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := map[string]any{}
		var merged []map[string]any
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			val, err := nodeToJSON(v, depth+1)
			if err != nil {
				return nil, err
			}
			if k.ShortTag() == "!!merge" {
				switch val := val.(type) {
				case map[string]any:
					merged = append(merged, val)
				case []any:
					for _, m := range val {
						if m, ok := m.(map[string]any); ok {
							merged = append(merged, m)
						}
					}
				}
				continue
			}
			out[k.Value] = val
		}
		for _, m := range merged {
			for k, v := range m {
				if _, ok := out[k]; !ok {
					out[k] = v
				}
			}
		}
		return out, nil
	}
	switch n.ShortTag() {
	case "!!null":
		return nil, nil
	case "!!bool":
		return strconv.ParseBool(strings.ToLower(n.Value))
	case "!!int":
		i, ok := new(big.Int).SetString(strings.ReplaceAll(n.Value, "_", ""), 0)
		if !ok {
			return nil, fmt.Errorf("bad !!int %q", n.Value)
		}
		return json.Number(i.String()), nil
	case "!!float":
		f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return n.Value, nil // .inf and .nan have no JSON form
		}
		return f, nil
	}
	return n.Value, nil
}

func TestSchemaAgreesWithParse(t *testing.T) {
	sch := compileSchema(t)
	for _, file := range yamlFiles(t, "good") {
		t.Run("good/"+caseName(file), func(t *testing.T) {
			v, err := yamlToJSON(readFile(t, file))
			if err != nil {
				t.Fatal(err)
			}
			if err := sch.Validate(v); err != nil {
				t.Errorf("the schema rejects a good descriptor:\n%v", err)
			}
		})
	}
	seen := map[string]bool{}
	for _, file := range yamlFiles(t, "bad") {
		name := caseName(file)
		seen[name] = true
		t.Run("bad/"+name, func(t *testing.T) {
			v, err := yamlToJSON(readFile(t, file))
			if err != nil {
				if notConvertible[name] == "" {
					t.Fatalf("cannot convert: %v", err)
				}
				return
			}
			if notConvertible[name] != "" {
				t.Fatalf("listed as not convertible (%s) but converts", notConvertible[name])
			}
			err = sch.Validate(v)
			if why := goOnly[name]; why != "" {
				if err != nil {
					t.Errorf("listed as Go-only (%s) but the schema rejects it:\n%v", why, err)
				}
				return
			}
			if err == nil {
				t.Errorf("the schema accepts it; reject it in the schema or add it to goOnly with a reason")
			}
		})
	}
	for name := range goOnly {
		if !seen[name] {
			t.Errorf("goOnly names a missing file %s", name)
		}
	}
	for name := range notConvertible {
		if !seen[name] {
			t.Errorf("notConvertible names a missing file %s", name)
		}
	}
}

// Edge values beyond the corpus, each checked against both Parse and the
// schema. parse says whether Parse accepts the file; schema whether the
// schema does.
func TestSchemaEdges(t *testing.T) {
	sch := compileSchema(t)
	cases := []struct {
		name, yaml    string
		parse, schema bool
	}{
		{"retries 1", "healthcheck: {retries: 1}", true, true},
		{"retries 100", "healthcheck: {retries: 100}", true, true},
		{"retries float", "healthcheck: {retries: 5.5}", false, false},
		{"port 65535", "port: 65535", true, true},
		{"port -1", "port: -1", false, false},
		{"version number", "version: 2.5", true, true},
		{"version negative", "version: -1", false, false},
		{"version with plus", "version: 1.0.0+build.5", true, true},
		{"version too long", "version: v" + strings.Repeat("1", 128), false, false},
		{"service too long", "service: " + strings.Repeat("a", 64), false, false},
		{"service ends with dash", "service: app-", false, false},
		{"cpu number", "resources: {cpu: 0.25}", true, true},
		{"cpu exponent", "resources: {cpu: 25e-2}", true, true},
		{"memory binary", "resources: {memory: 1.5Gi}", true, true},
		{"memory zero string", "resources: {memory: 0Mi}", false, false},
		{"memory zero point zero", `resources: {memory: "0.0"}`, false, false},
		{"memory bad suffix", "resources: {memory: 1GB}", false, false},
		{"quantity too long", "resources: {memory: \"1" + strings.Repeat("0", 64) + "\"}", false, false},
		{"interval 0", "healthcheck: {interval: 0}", true, true},
		{"interval compound", "healthcheck: {interval: 1m30.5s}", true, true},
		{"interval micro", "healthcheck: {interval: 500µs}", true, true},
		{"interval days", "healthcheck: {interval: 1d}", false, false},
		{"scheme null", "healthcheck: {scheme: ~}", true, true},
		{"scheme upper", "healthcheck: {scheme: HTTPS}", false, false},
		{"endpoint root", "domain: a.example.com\nhealthcheck: {endpoints: [/]}", true, true},
		{"endpoint space", "domain: a.example.com\nhealthcheck: {endpoints: [/a b]}", false, false},
		{"endpoint url with space", "healthcheck: {endpoints: [\"https://a.example.com/a b\"]}", false, false},
		{"relative endpoint, domain null", "domain: ~\nhealthcheck: {endpoints: [/healthz]}", false, false},
		{"relative endpoint, domain empty", "domain: ''\nhealthcheck: {endpoints: [/healthz]}", false, false},
		{"domain empty", "domain: ''", true, true},
		{"domain ipv6", "domain: '::1'", true, true},
		{"domain trailing dot", "domain: example.com.", true, true},
		{"domain label too long", "domain: " + strings.Repeat("a", 64) + ".com", false, false},
		{"maintainer empty", "maintainer: ''", true, true},
		{"email display name", "notifications: {emails: ['Bob <b@example.com>']}", false, false},
		{"slack empty", "notifications: {slack: ['']}", false, false},
		{"params list", "params: [a]", false, false},
		{"x- anything", "x-anything: [1, {a: b}]", true, true},
		{"unknown nested", "resources: {gpu: 1}", false, false},
		{"image with tab", "image: \"a\\tb\"", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.yaml + "\n"
			if !strings.Contains(body, "service:") {
				body = "service: edge\n" + body
			}
			if !strings.Contains(body, "version:") {
				body = "version: 1.0.0\n" + body
			}
			_, perr := descriptors.Parse("edge.yaml", []byte(body))
			if (perr == nil) != tc.parse {
				t.Errorf("Parse error = %v, want accepted = %v", perr, tc.parse)
			}
			v, err := yamlToJSON([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			serr := sch.Validate(v)
			if (serr == nil) != tc.schema {
				t.Errorf("schema error = %v, want accepted = %v", serr, tc.schema)
			}
		})
	}
}

// The schema names exactly the keys the Go types decode, so a new key
// cannot be added to one and forgotten in the other.
func TestSchemaKeysMatchTypes(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(descriptors.JSONSchema, &doc); err != nil {
		t.Fatal(err)
	}
	props := func(m map[string]any) []string {
		p, _ := m["properties"].(map[string]any)
		var keys []string
		for k := range p {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return keys
	}
	sub := func(key string) map[string]any {
		return doc["properties"].(map[string]any)[key].(map[string]any)
	}
	for _, tc := range []struct {
		name   string
		schema map[string]any
		typ    reflect.Type
	}{
		{"descriptor", doc, reflect.TypeFor[descriptors.Descriptor]()},
		{"healthcheck", sub("healthcheck"), reflect.TypeFor[descriptors.Healthcheck]()},
		{"resources", sub("resources"), reflect.TypeFor[descriptors.Resources]()},
		{"notifications", sub("notifications"), reflect.TypeFor[descriptors.Notifications]()},
	} {
		var keys, required []string
		for f := range tc.typ.Fields() {
			tag, ok := f.Tag.Lookup("yaml")
			name, opts, _ := strings.Cut(tag, ",")
			if !ok || name == "" {
				continue
			}
			keys = append(keys, name)
			if strings.Contains(opts, "required") {
				required = append(required, name)
			}
		}
		slices.Sort(keys)
		if got := props(tc.schema); !slices.Equal(got, keys) {
			t.Errorf("%s: schema properties %v, Go keys %v", tc.name, got, keys)
		}
		var schemaRequired []string
		if r, ok := tc.schema["required"].([]any); ok {
			for _, k := range r {
				schemaRequired = append(schemaRequired, k.(string))
			}
		}
		if !slices.Equal(schemaRequired, required) {
			t.Errorf("%s: schema requires %v, Go requires %v", tc.name, schemaRequired, required)
		}
		if tc.schema["additionalProperties"] != false {
			t.Errorf("%s: unknown keys are allowed", tc.name)
		}
	}
}
