package descriptors_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitmon-dev/gitmon/descriptors"
)

// hostileInput is a file SPEC §2 says must be rejected with a clear
// error. They are generated rather than committed: some are large, and
// the rest are easier to read as the code that builds them.
type hostileInput struct {
	name string
	data []byte
	want string // in the error text
	line int    // of the first problem; 0 when the problem has no line
}

func hostileInputs() []hostileInput {
	head := func(service string) string { return "service: " + service + "\nversion: 1.0.0\n" }

	var laughs strings.Builder
	laughs.WriteString(head("laughs") + "params:\n  l0: &l0 lol\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&laughs, "  l%d: &l%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), 9), ", "))
	}

	// Sixty levels of three aliases each expand past any integer; the
	// count must saturate, not wrap around to something small.
	var overflow strings.Builder
	overflow.WriteString(head("overflow") + "params:\n  l0: &l0 [x]\n")
	for i := 1; i <= 60; i++ {
		fmt.Fprintf(&overflow, "  l%d: &l%d [*l%d, *l%d, *l%d]\n", i, i, i-1, i-1, i-1)
	}

	// The top-level mapping is level 1, so params holding n nested
	// mappings nests n+1 levels deep.
	nest := func(service string, n int) []byte {
		return []byte(head(service) + "params: " + strings.Repeat("{a: ", n-1) + "1" + strings.Repeat("}", n-1) + "\n")
	}

	rng := rand.New(rand.NewPCG(2, 64))
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}

	binary := []byte(head("binary") + "image: ")
	binary = append(binary, 0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0xff, 0xfe, '\n')

	return []hostileInput{
		{name: "too-large", data: []byte(head("large") + "params:\n  pad: " + strings.Repeat("a", descriptors.MaxSize) + "\n"),
			want: "256 KiB"},
		{name: "billion-laughs", data: []byte(laughs.String()), want: "alias bomb", line: 1},
		{name: "alias-overflow", data: []byte(overflow.String()), want: "alias bomb", line: 1},
		{name: "alias-cycle", data: []byte(head("cycle") + "params: &loop\n  self: *loop\n"), want: "alias *loop refers to a value that contains it", line: 4},
		{name: "nesting-65", data: nest("nesting", 65), want: "nesting deeper than 64 levels", line: 3},
		{name: "nesting-65-by-alias", data: []byte(head("nesting") + "x-deep: &deep " + strings.Repeat("[", 40) + strings.Repeat("]", 40) + "\nparams: " + strings.Repeat("{a: ", 30) + "*deep" + strings.Repeat("}", 30) + "\n"),
			want: "nesting deeper than 64 levels", line: 4},
		{name: "nesting-9000", data: nest("nesting", 9000), want: "nesting deeper than 64 levels", line: 3},
		{name: "nesting-10000", data: []byte(head("nesting") + "params: " + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + "\n"),
			want: "nesting deeper than 64 levels", line: 3},
		{name: "invalid-utf8", data: []byte(head("utf") + "maintainer: \"al\xc3\xafce\xff@example.com\"\n"), want: "3:19: invalid UTF-8 (byte 0xff)", line: 3},
		{name: "binary-nul", data: binary, want: "binary content: NUL byte", line: 3},
		{name: "control-character", data: []byte(head("control") + "image: \"app\x1b[31m\"\n"), want: "3:12: control character U+001B is not allowed", line: 3},
		{name: "random-bytes", data: random, want: ""},
	}
}

func TestHostileInputIsRejected(t *testing.T) {
	dir := t.TempDir()
	for _, h := range hostileInputs() {
		t.Run(h.name, func(t *testing.T) {
			file := filepath.Join(dir, h.name+".yaml")
			if err := os.WriteFile(file, h.data, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			d, err := descriptors.Read(file, f)
			if err == nil {
				t.Fatalf("accepted: %+v", d)
			}
			msg := err.Error()
			if len(msg) > 1000 {
				t.Errorf("the error is %d bytes long; a clear one is short: %.300s…", len(msg), msg)
			}
			if !strings.Contains(msg, h.want) {
				t.Errorf("error %q does not say %q", msg, h.want)
			}
			if !strings.HasPrefix(msg, file+":") {
				t.Errorf("error %q does not name the file", msg)
			}
			var es descriptors.Errors
			if !errors.As(err, &es) || len(es) == 0 || es[0].File != file {
				t.Errorf("error is %T, want descriptors.Errors naming the file", err)
			}
			if h.line > 0 && !strings.HasPrefix(msg, fmt.Sprintf("%s:%d:", file, h.line)) {
				t.Errorf("error %q is not placed at line %d", msg, h.line)
			}
			// Parse of the same bytes agrees with Read, which words the
			// size limit on its own as it stops reading early.
			if _, err2 := descriptors.Parse(file, h.data); err2 == nil || (err2.Error() != msg && h.name != "too-large") {
				t.Errorf("Parse says %v; Read says %v", err2, msg)
			}
		})
	}
}

// Limits are exclusive: exactly 64 levels still parse.
func TestNestingAtTheLimit(t *testing.T) {
	data := "service: deep\nversion: 1\nparams: " + strings.Repeat("{a: ", 63) + "1" + strings.Repeat("}", 63) + "\n"
	if _, err := descriptors.Parse("deep.yaml", []byte(data)); err != nil {
		t.Errorf("64 levels: %v", err)
	}
}

func BenchmarkParseHostile(b *testing.B) {
	for _, h := range hostileInputs() {
		b.Run(h.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(h.data)))
			for b.Loop() {
				if _, err := descriptors.Parse("hostile.yaml", h.data); err == nil {
					b.Fatal("accepted")
				}
			}
		})
	}
}
