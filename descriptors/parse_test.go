package descriptors_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitmon-dev/gitmon/descriptors"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// yamlFiles returns the descriptor files under testdata/dir, sorted.
func yamlFiles(t testing.TB, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no testdata/%s/*.yaml", dir)
	}
	return files
}

func caseName(file string) string { return strings.TrimSuffix(filepath.Base(file), ".yaml") }

func readFile(t testing.TB, file string) []byte {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// golden compares got with the golden file, or rewrites it under -update.
func golden(t *testing.T, file string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test ./descriptors -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test ./descriptors -update if the change is right)\n--- got\n%s\n--- want\n%s", file, got, want)
	}
}

func indentJSON(t testing.TB, d *descriptors.Descriptor) []byte {
	t.Helper()
	raw, err := d.MarshalJSON()
	if err != nil {
		t.Fatalf("MarshalJSON: %v", err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		t.Fatalf("MarshalJSON wrote invalid JSON: %v\n%s", err, raw)
	}
	buf.WriteByte('\n')
	return buf.Bytes()
}

func mustParseFile(t testing.TB, file string) *descriptors.Descriptor {
	t.Helper()
	d, err := descriptors.Parse(file, readFile(t, file))
	if err != nil {
		t.Fatalf("Parse(%s): %v", file, err)
	}
	return d
}

// Facts the golden files hold too, spelled out so that a careless -update
// cannot bless a regression in what the SPEC promises.
var goodChecks = map[string]func(t *testing.T, d *descriptors.Descriptor){
	"payments": func(t *testing.T, d *descriptors.Descriptor) {
		if d.Version != "1.4.2" || d.Healthcheck.Retries != 5 || d.Healthcheck.InitialDelay.String() != "30s" {
			t.Errorf("got version %q, retries %d, initial_delay %s", d.Version, d.Healthcheck.Retries, d.Healthcheck.InitialDelay)
		}
		if d.Resources.CPU.Cmp(descriptors.MustParseQuantity("0.5")) != 0 {
			t.Errorf("cpu = %s, want 500m", d.Resources.CPU)
		}
	},
	"minimal": func(t *testing.T, d *descriptors.Descriptor) {
		h := d.Healthcheck
		if h.Scheme != "https" || h.Retries != 3 || h.Interval.String() != "5s" || h.Timeout.String() != "5s" || h.InitialDelay != 0 {
			t.Errorf("defaults not applied: %+v", h)
		}
		if d.Ports != nil || d.Params != nil || d.Extensions != nil || !d.Resources.CPU.IsZero() {
			t.Errorf("absent keys should stay unset: %+v", d)
		}
	},
	"float-version": func(t *testing.T, d *descriptors.Descriptor) {
		if d.Version != "1.10" {
			t.Errorf("version = %q, want the literal 1.10", d.Version)
		}
	},
	"plain-bytes": func(t *testing.T, d *descriptors.Descriptor) {
		if d.Resources.Memory.Cmp(descriptors.MustParseQuantity("512Mi")) != 0 || d.Resources.Memory.String() != "536870912" {
			t.Errorf("memory = %s", d.Resources.Memory)
		}
	},
	"nulls": func(t *testing.T, d *descriptors.Descriptor) {
		want := descriptors.New()
		want.Service, want.Version = "nulls", "7"
		if !descriptors.Equal(d, want) {
			t.Errorf("nulls should leave every default: %v", descriptors.Diff(want, d))
		}
	},
	"empty-lists": func(t *testing.T, d *descriptors.Descriptor) {
		if d.Ports == nil || len(d.Ports) != 0 || d.Healthcheck.Endpoints == nil || d.Notifications.Emails == nil {
			t.Errorf("[] should decode to empty, non-nil lists: %#v", d)
		}
	},
	"nested-params": func(t *testing.T, d *descriptors.Descriptor) {
		if got := d.Params["big"]; got != int64(9007199254740993) {
			t.Errorf("params.big = %#v, want the exact int64", got)
		}
		if v, ok := d.Params["unset"]; !ok || v != nil {
			t.Errorf("params.unset = %#v, %v; want a kept null", v, ok)
		}
	},
	"extensions": func(t *testing.T, d *descriptors.Descriptor) {
		if len(d.Extensions) != 6 || d.Extensions["x-team"] != "checkout" {
			t.Errorf("extensions = %#v", d.Extensions)
		}
	},
	"anchors": func(t *testing.T, d *descriptors.Descriptor) {
		if d.Params["release"] != "4.1.0" || len(d.Notifications.Emails) != 2 || d.Ports[0] != 9000 {
			t.Errorf("aliases not resolved: %#v", d)
		}
	},
}

func TestParseGood(t *testing.T) {
	for _, file := range yamlFiles(t, "good") {
		name := caseName(file)
		t.Run(name, func(t *testing.T) {
			d := mustParseFile(t, file)
			if d.Service != name {
				t.Errorf("service = %q, want the file stem %q", d.Service, name)
			}
			if err := d.Validate(); err != nil {
				t.Errorf("Validate after Parse: %v", err)
			}
			golden(t, strings.TrimSuffix(file, ".yaml")+".json", indentJSON(t, d))
			if check := goodChecks[name]; check != nil {
				check(t, d)
			}
		})
	}
	for name := range goodChecks {
		if _, err := os.Stat(filepath.Join("testdata", "good", name+".yaml")); err != nil {
			t.Errorf("goodChecks names a missing file: %v", err)
		}
	}
}

// Bad files whose problem is the file as a whole, not a key.
var noKeyPath = map[string]bool{
	"syntax-error":       true,
	"multiple-documents": true,
	"top-level-list":     true,
}

// Bad files whose error has a line but no column: the YAML library's
// syntax errors say only the line.
var noColumn = map[string]bool{
	"syntax-error": true,
}

func TestParseBad(t *testing.T) {
	for _, file := range yamlFiles(t, "bad") {
		name := caseName(file)
		t.Run(name, func(t *testing.T) {
			d, err := descriptors.Parse(file, readFile(t, file))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", d)
			}
			if d != nil {
				t.Errorf("Parse returned a descriptor with its error")
			}
			checkPlaced(t, file, err, !noKeyPath[name], !noColumn[name])
			golden(t, strings.TrimSuffix(file, ".yaml")+".err", []byte(err.Error()+"\n"))
		})
	}
}

// checkPlaced asserts that every problem in err names file, a line, and
// (when wanted) a column and a key path.
func checkPlaced(t *testing.T, file string, err error, wantPath, wantColumn bool) {
	t.Helper()
	var es descriptors.Errors
	if !errors.As(err, &es) || len(es) == 0 {
		t.Fatalf("error is %T, want a non-empty descriptors.Errors: %v", err, err)
	}
	for _, e := range es {
		switch {
		case e.File != file:
			t.Errorf("%q: file = %q, want %q", e, e.File, file)
		case e.Line < 1:
			t.Errorf("%q: no line", e)
		case wantColumn && e.Column < 1:
			t.Errorf("%q: no column", e)
		case wantPath && e.Path == "":
			t.Errorf("%q: no key path", e)
		case e.Msg == "":
			t.Errorf("%q: no message", e)
		}
		if !strings.HasPrefix(e.Error(), file+":") {
			t.Errorf("%q does not start with the file name", e)
		}
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		if !strings.HasPrefix(line, file+":") {
			t.Errorf("error line %q does not start with the file name", line)
		}
	}
}

// Every golden file belongs to a descriptor, so renames leave no litter.
func TestGoldenFilesHaveInputs(t *testing.T) {
	for _, pattern := range []string{"good/*.json", "bad/*.err"} {
		files, err := filepath.Glob(filepath.Join("testdata", pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			in := strings.TrimSuffix(f, filepath.Ext(f)) + ".yaml"
			if _, err := os.Stat(in); err != nil {
				t.Errorf("%s has no %s", f, in)
			}
		}
	}
}

func TestParseErrorsAreCollected(t *testing.T) {
	const file = "testdata/bad/many-problems.yaml"
	_, err := descriptors.Parse(file, readFile(t, file))
	var es descriptors.Errors
	if !errors.As(err, &es) {
		t.Fatalf("got %T", err)
	}
	var paths []string
	for _, e := range es {
		paths = append(paths, e.Path)
	}
	want := []string{"port", "healthcheck.retries", "healthcheck.scheme", "healthcheck.timeout", "maintainr", "resources.cpu"}
	if strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Errorf("paths in file order = %v, want %v", paths, want)
	}
	if !strings.Contains(err.Error(), `did you mean "maintainer"?`) {
		t.Errorf("no suggestion for the typo: %v", err)
	}
}

func TestParseDecodeErrorIsNotRepeated(t *testing.T) {
	const file = "testdata/bad/version-list.yaml"
	_, err := descriptors.Parse(file, readFile(t, file))
	if got := strings.Count(err.Error(), "\n") + 1; got != 2 {
		t.Errorf("want one problem for version and one for port, got %d:\n%v", got, err)
	}
}

func TestParseWithoutName(t *testing.T) {
	// Without a file name there is no stem to match, and errors start
	// with the line.
	d, err := descriptors.Parse("", []byte("service: anything\nversion: 1\n"))
	if err != nil || d.Service != "anything" {
		t.Fatalf("Parse: %v, %+v", err, d)
	}
	_, err = descriptors.Parse("", []byte("service: anything\nversion: 1\nport: 0\n"))
	if err == nil || err.Error() != "3:7: port: 0 is not a port number (1 to 65535)" {
		t.Errorf("got %v", err)
	}
}

func TestParseStemUsesBaseName(t *testing.T) {
	for _, name := range []string{"services/payments.yaml", "/abs/dir/payments.yml", "payments"} {
		if _, err := descriptors.Parse(name, []byte("service: payments\nversion: 1\n")); err != nil {
			t.Errorf("Parse(%q): %v", name, err)
		}
	}
}

func TestValidateBuiltInCode(t *testing.T) {
	d := descriptors.New()
	if err := d.Validate(); err == nil || !strings.Contains(err.Error(), "service") || !strings.Contains(err.Error(), "version") {
		t.Errorf("a descriptor without service and version validated: %v", err)
	}
	d.Service, d.Version = "payments", "1.0.0"
	if err := d.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	d.Healthcheck.Retries = 0
	if err := d.Validate(); err == nil || !strings.Contains(err.Error(), "healthcheck.retries") {
		t.Errorf("retries 0 validated: %v", err)
	}
}

// countingReader serves an endless file and counts what was read.
type countingReader struct{ n int }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	r.n += len(p)
	return len(p), nil
}

type failingReader struct{}

var errDisk = errors.New("disk on fire")

func (failingReader) Read([]byte) (int, error) { return 0, errDisk }

func TestRead(t *testing.T) {
	t.Run("good", func(t *testing.T) {
		f, err := os.Open("testdata/good/payments.yaml")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		d, err := descriptors.Read(f.Name(), f)
		if err != nil {
			t.Fatal(err)
		}
		if !descriptors.Equal(d, mustParseFile(t, "testdata/good/payments.yaml")) {
			t.Error("Read and Parse disagree")
		}
	})
	t.Run("oversized", func(t *testing.T) {
		r := &countingReader{}
		_, err := descriptors.Read("huge.yaml", io.LimitReader(r, 1<<30))
		if !errors.Is(err, descriptors.ErrTooLarge) {
			t.Fatalf("got %v, want ErrTooLarge", err)
		}
		if want := "huge.yaml: file is larger than the 256 KiB limit"; err.Error() != want {
			t.Errorf("got %q, want %q", err, want)
		}
		if r.n > 2*descriptors.MaxSize {
			t.Errorf("read %d bytes of an oversized file; the limit is %d", r.n, descriptors.MaxSize)
		}
	})
	t.Run("exactly the limit", func(t *testing.T) {
		data := []byte("service: limit\nversion: 1\nparams: {pad: ''}\n")
		pad := bytes.Repeat([]byte{'a'}, descriptors.MaxSize-len(data))
		data = append(data[:len(data)-3], append(pad, "'}\n"...)...)
		if len(data) != descriptors.MaxSize {
			t.Fatalf("built %d bytes", len(data))
		}
		if _, err := descriptors.Read("limit.yaml", bytes.NewReader(data)); err != nil {
			t.Errorf("a file of exactly MaxSize was rejected: %.200v", err)
		}
		data = append(data, '\n')
		if _, err := descriptors.Read("limit.yaml", bytes.NewReader(data)); !errors.Is(err, descriptors.ErrTooLarge) {
			t.Errorf("a file of MaxSize+1 bytes: got %.200v", err)
		}
	})
	t.Run("read error", func(t *testing.T) {
		_, err := descriptors.Read("broken.yaml", failingReader{})
		if !errors.Is(err, errDisk) || errors.Is(err, descriptors.ErrTooLarge) {
			t.Fatalf("got %v, want the reader's error", err)
		}
		if want := "broken.yaml: reading: disk on fire"; err.Error() != want {
			t.Errorf("got %q, want %q", err, want)
		}
	})
}
