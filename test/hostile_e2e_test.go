package test

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gitmon-dev/gitmon/test/hostile"
)

// What each hostile file's error must say, and whether it has a line.
var hostileWant = map[string]struct {
	msg  string
	line bool
}{
	"too-big.yaml":        {"256 KiB", false},
	"billion-laughs.yaml": {"alias", true},
	"deep-65.yaml":        {"nesting deeper than 64", true},
	"deep-10000.yaml":     {"nesting deeper than 64", true},
	"duplicate-keys.yaml": {"duplicate key", true},
	"invalid-utf8.yaml":   {"invalid UTF-8", true},
	"latin1.yaml":         {"invalid UTF-8", true},
	"binary.yaml":         {"NUL", true},
	"text-junk.yaml":      {"", false},
	"many-keys.yaml":      {"duplicate key", true},
	"too-complex.yaml":    {"too complex", false},
}

// TestValidateRejectsHostileDescriptors runs `gitmon validate` on each
// hostile file alone and on a checkout holding all of them beside a good
// one: each is rejected with its file named, the good one is not.
func TestValidateRejectsHostileDescriptors(t *testing.T) {
	dir := t.TempDir()
	services := filepath.Join(dir, "services")
	paths, err := writeHostile(t, services)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(hostileWant) {
		t.Fatalf("hostile.Files has %d files, the test knows %d: keep them in step", len(paths), len(hostileWant))
	}
	for _, p := range paths {
		name := filepath.Base(p)
		t.Run(name, func(t *testing.T) {
			want := hostileWant[name]
			rel := filepath.Join("services", name)
			r := gitmon(t, dir, "validate", rel)
			if r.code != 1 {
				t.Fatalf("want exit 1: %v", r)
			}
			first := strings.SplitN(r.stdout, "\n", 2)[0]
			if !strings.HasPrefix(first, rel+":") {
				t.Errorf("error does not start with the file name %s: %q", rel, first)
			}
			if want.line && !regexp.MustCompile(`^`+regexp.QuoteMeta(rel)+`:\d+:\d+: `).MatchString(first) {
				t.Errorf("error has no line:col: %q", first)
			}
			if !strings.Contains(r.stdout, want.msg) {
				t.Errorf("error does not say %q: %q", want.msg, r.stdout)
			}
			if len(r.stdout) > 4096 {
				t.Errorf("the error is %d bytes: hostile input must not echo itself back", len(r.stdout))
			}
		})
	}

	writeFile(t, filepath.Join(services, "payments.yaml"), "service: payments\nversion: 1.4.2\n")
	r := gitmon(t, dir, "validate", ".")
	if r.code != 1 {
		t.Fatalf("checkout with hostile files: %v", r)
	}
	for _, p := range paths {
		if !strings.Contains(r.stdout, filepath.Join("services", filepath.Base(p))+":") {
			t.Errorf("%s not reported in the checkout run", filepath.Base(p))
		}
	}
	if strings.Contains(r.stdout, "payments.yaml") {
		t.Errorf("the good descriptor was reported:\n%s", r.stdout)
	}
}

func writeHostile(t *testing.T, dir string) ([]string, error) {
	t.Helper()
	writeFile(t, filepath.Join(dir, ".keep"), "")
	return hostile.Write(dir)
}
