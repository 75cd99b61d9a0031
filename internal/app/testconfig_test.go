package app

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gitmon-dev/gitmon/internal/config"
)

// testConfig writes text as dir/gitmon.yaml and loads it as serve does.
func testConfig(tb testing.TB, dir, text string) *config.Config {
	tb.Helper()
	path := filepath.Join(dir, "gitmon.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		tb.Fatal(err)
	}
	cfg, _, err := config.Load(path, config.Options{Mode: config.ModeServe})
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}
