package descriptors_test

import (
	"strings"
	"testing"

	"github.com/gitmon-dev/gitmon/descriptors"
	yaml "go.yaml.in/yaml/v3"
)

// BenchmarkYAMLNodeBaseline is the floor under BenchmarkParseSpecExample:
// the YAML library alone building the node tree of the same file. Report
// Parse as a ratio to it.
func BenchmarkYAMLNodeBaseline(b *testing.B) {
	data := readFile(b, "testdata/good/payments.yaml")
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var n yaml.Node
		if err := yaml.Unmarshal(data, &n); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseSpecExample parses and validates the SPEC §2 example.
// Goal: at most 100 µs/op.
func BenchmarkParseSpecExample(b *testing.B) {
	data := readFile(b, "testdata/good/payments.yaml")
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := descriptors.Parse("services/payments.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDiff compares two realistic descriptors that differ in version
// and ports, as a promotion does. Goal: at most 5 µs/op.
func BenchmarkDiff(b *testing.B) {
	text := string(readFile(b, "testdata/good/payments.yaml"))
	old := mustParseFile(b, "testdata/good/payments.yaml")
	text = strings.Replace(text, "version: 1.4.2", "version: 1.5.0", 1)
	text = strings.Replace(text, "ports: [8080, 9090]", "ports: [9090, 8080, 8443]", 1)
	new, err := descriptors.Parse("payments.yaml", []byte(text))
	if err != nil {
		b.Fatal(err)
	}
	if got := descriptors.Diff(old, new).Fields(); strings.Join(got, " ") != "ports version" {
		b.Fatalf("fields = %v", got)
	}
	b.ReportAllocs()
	for b.Loop() {
		descriptors.Diff(old, new)
	}
}

// BenchmarkEqual is the common case of an unchanged descriptor.
func BenchmarkEqual(b *testing.B) {
	a := mustParseFile(b, "testdata/good/payments.yaml")
	c := mustParseFile(b, "testdata/good/payments.yaml")
	b.ReportAllocs()
	for b.Loop() {
		if !descriptors.Equal(a, c) {
			b.Fatal("not equal")
		}
	}
}
