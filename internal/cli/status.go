package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gitmon-dev/gitmon/internal/app"
	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/spf13/cobra"
)

// statusFlags are status's flags.
type statusFlags struct {
	cf     configFlag
	env    string
	asJSON bool
}

func statusCommand(s Streams) *cobra.Command {
	var f statusFlags
	c := &cobra.Command{
		Use:   "status [--env E] [--json]",
		Short: "what runs where, what waits and why",
		Long: `Shows, per environment and service, the last good version with its commit,
time and committer, the last record's status, and what waits and why (a
promotion, a window, a freeze, JIRA); and which environments are paused,
frozen or halted, and how many notifications became dead letters. It reads
the state folder and works beside a running serve.`,
		Example: `  gitmon status
  gitmon status --env prod --json | jq '.environments[0].services[] | {service, version}'`,
		Args: noArgs,
		RunE: runs(func(ctx context.Context, _ []string) int { return runStatus(ctx, s, &f) }),
	}
	f.cf.register(c)
	envFlag(c, &f.env, &f.cf, "only this environment")
	c.Flags().BoolVar(&f.asJSON, "json", false, "print SPEC §7's status JSON")
	return c
}

func runStatus(ctx context.Context, s Streams, f *statusFlags) int {
	cfg, ok := f.cf.load(s, config.ModeValidate)
	if !ok {
		return ExitUsage
	}
	if f.env != "" {
		if err := checkEnvironment(cfg, cfg.File, f.env); err != nil {
			fmt.Fprintf(s.Err, "gitmon status: %v\n", err)
			return ExitUsage
		}
	}
	st, ok := openState(ctx, s, cfg, true)
	if !ok {
		return ExitUsage
	}
	defer st.Close()
	rep, err := app.Status(ctx, cfg, st, app.StatusOptions{Env: f.env, Now: time.Now()})
	if err != nil {
		fmt.Fprintf(s.Err, "gitmon status: %v\n", err)
		return ExitUsage
	}
	if f.asJSON {
		enc := json.NewEncoder(s.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(s.Err, "gitmon status: %v\n", err)
			return ExitUsage
		}
		return ExitOK
	}
	if err := rep.WriteText(s.Out); err != nil {
		fmt.Fprintf(s.Err, "gitmon status: %v\n", err)
		return ExitUsage
	}
	return ExitOK
}
