package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitmon-dev/gitmon/internal/yamlx"
)

const fuzzCanary = "zq-fuzz-canary-7f3"

// FuzzParse checks that no input makes Parse panic, that every problem
// is placed in the file, and that no output shows a secret. The seed
// corpus is testdata/fuzz/FuzzParse plus every good and bad config.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"testdata/good/*.yaml", "testdata/bad/*.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, name := range files {
			data, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	opts := Options{
		Mode:      ModeServe,
		LookupEnv: func(k string) (string, bool) { return fuzzCanary + "-" + k, !strings.HasPrefix(k, "UNSET") },
		ReadFile:  func(string) ([]byte, error) { return []byte(fuzzCanary + "-file\n"), nil },
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, warns, err := Parse("gitmon.yaml", data, opts)
		if err == nil && cfg == nil {
			t.Fatal("no config and no error")
		}
		if err != nil && cfg != nil {
			t.Fatal("a config and an error")
		}
		var es yamlx.Errors
		if err != nil && !errors.As(err, &es) {
			t.Fatalf("error is %T, want yamlx.Errors", err)
		}
		for _, e := range append(es, warns...) {
			if e.File != "gitmon.yaml" || e.Msg == "" {
				t.Fatalf("badly placed problem: %#v", e)
			}
		}
		if strings.Contains(string(data), "canary") {
			return // the input may hold the text itself
		}
		out := ""
		if err != nil {
			out += err.Error()
		}
		out += warns.String()
		if cfg != nil {
			out += cfg.String()
			for _, s := range cfg.Secrets() {
				if !strings.Contains(s, fuzzCanary) {
					t.Fatalf("Secrets() lists %q, which was never a secret", s)
				}
			}
		}
		if strings.Contains(out, fuzzCanary) {
			t.Fatalf("output shows a secret:\n%s", out)
		}
	})
}
