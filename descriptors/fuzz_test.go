package descriptors_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/gitmon-dev/gitmon/descriptors"
)

// FuzzParse checks that Parse never panics, that every error is placed
// in the file, and that what Parse accepts survives the JSON round trip
// runners and the store rely on. The seeds are every testdata file plus
// the corpus in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"good", "bad"} {
		for _, file := range yamlFiles(f, dir) {
			f.Add(readFile(f, file))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := descriptors.Parse("", data)
		if err != nil {
			var es descriptors.Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error is %T, want a non-empty descriptors.Errors: %v", err, err)
			}
			for _, e := range es {
				if e.Msg == "" {
					t.Fatalf("a problem without a message in %v", err)
				}
			}
			if d != nil {
				t.Fatal("a descriptor returned with an error")
			}
			return
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate rejects: %v", err)
		}
		if c := descriptors.Diff(d, d); len(c) != 0 {
			t.Fatalf("Diff(d, d) = %v", c)
		}
		b, err := d.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON: %v", err)
		}
		var back descriptors.Descriptor
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("UnmarshalJSON of MarshalJSON: %v\n%s", err, b)
		}
		if !descriptors.Equal(d, &back) {
			t.Fatalf("JSON round trip changed %v\n%s", descriptors.Diff(d, &back), b)
		}
		if c := descriptors.Diff(d, &back); len(c) != 0 {
			t.Fatalf("Equal but Diff = %v", c)
		}
		b2, err := back.MarshalJSON()
		if err != nil || string(b2) != string(b) {
			t.Fatalf("MarshalJSON is not stable:\n%s\n%s", b, b2)
		}
	})
}
