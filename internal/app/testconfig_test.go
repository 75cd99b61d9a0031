package app

import (
	"context"
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

// runApp runs a until the returned stop is called; stop waits for Run to
// return.
func runApp(a *App) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan error, 1)
	go func() { exited <- a.Run(ctx) }()
	return func() { cancel(); <-exited }
}
