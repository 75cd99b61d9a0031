package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/gitmon-dev/gitmon/internal/app"
	"github.com/gitmon-dev/gitmon/internal/buildinfo"
	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/internal/yamlx"
	"github.com/spf13/cobra"
)

func serveCommand(s Streams) *cobra.Command {
	var (
		cf configFlag
		lf logFlags
	)
	c := &cobra.Command{
		Use:   "serve",
		Short: "run the daemon until SIGINT/SIGTERM",
		Long: `Runs the daemon until SIGINT or SIGTERM, then shuts down cleanly: it polls the
repositories, decides every commit, runs the releases and records them.
Exit 0 on a clean stop; 2 on a bad config, or a locked or damaged state.`,
		Example: `  gitmon serve --config /etc/gitmon/gitmon.yaml
  gitmon serve --config gitmon.yaml --log-format json --log-level debug`,
		Args: noArgs,
		RunE: runs(func(ctx context.Context, _ []string) int { return runServe(ctx, s, &cf, &lf) }),
	}
	cf.register(c)
	lf.register(c.Flags())
	return c
}

func runServe(ctx context.Context, s Streams, cf *configFlag, lf *logFlags) int {
	if err := lf.check(); err != nil {
		fmt.Fprintf(s.Err, "gitmon serve: %v\n", err)
		return ExitUsage
	}
	cfg, ok := cf.load(s, config.ModeServe)
	if !ok {
		fmt.Fprintln(s.Err, "gitmon serve: invalid config; nothing was started")
		return ExitUsage
	}
	log := newLogger(s.Err, lf.override(cfg.Log), cfg.Secrets())
	a, err := app.New(ctx, cfg, app.Options{Logger: log})
	if err != nil {
		fmt.Fprintf(s.Err, "gitmon serve: %v\n", err)
		return ExitUsage
	}
	bi := buildinfo.Get()
	log.Info("gitmon serving", "version", bi.Version, "commit", bi.Commit, "listen", cfg.Listen, "state", cfg.State,
		"repositories", len(cfg.Repositories), "environments", len(cfg.Environments))
	// Run fails only while starting (recovering interrupted stages,
	// listening on cfg.Listen): like a locked state, that is exit 2.
	if err := a.Run(ctx); err != nil {
		log.Error("gitmon could not start", "err", err)
		return ExitUsage
	}
	log.Info("gitmon stopped cleanly")
	return ExitOK
}

// loadConfig loads the config at path for a command, printing every
// problem; ok is false when the command must stop.
func loadConfig(s Streams, path string, mode config.Mode) (*config.Config, bool) {
	cfg, warns, err := config.Load(path, config.Options{Mode: mode})
	for _, w := range warns {
		c := *w
		c.Msg = "warning: " + c.Msg
		fmt.Fprintln(s.Err, c.Error())
	}
	if err != nil {
		for _, e := range yamlx.WithFile(err, path) {
			fmt.Fprintln(s.Err, e.Error())
		}
		return nil, false
	}
	return cfg, true
}

// openState opens the store beside a running serve (no lock).
func openState(ctx context.Context, s Streams, cfg *config.Config, readOnly bool) (store.Store, bool) {
	if _, err := os.Stat(cfg.State); err != nil {
		fmt.Fprintf(s.Err, "gitmon: no state folder at %s: has `gitmon serve` run with this config?\n", cfg.State)
		return nil, false
	}
	st, err := store.Open(ctx, cfg.State, store.Options{ReadOnly: readOnly})
	if err != nil {
		fmt.Fprintf(s.Err, "gitmon: %v\n", err)
		return nil, false
	}
	return st, true
}
