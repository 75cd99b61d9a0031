package cli

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/gitmon-dev/gitmon/internal/demo"
	"github.com/spf13/cobra"
)

func demoCommand(s Streams) *cobra.Command {
	var keep string
	c := &cobra.Command{
		Use:   "demo [--keep DIR]",
		Short: "the whole flow on an embedded default repository",
		Long: `Builds a throwaway GitOps repository and runs the real daemon on it: local
exec and plugin runners, a local service for healthchecks, and notifications
to a local fake Slack and SMTP server. It needs nothing but this binary.

It shows policy at work in qa, then the promotion story: a version skipped in
qa is rejected at staging (rule promotion), a promotion waits for upstream and
follows the moment it succeeds, a freeze of prod holds a promotion until
unfreeze, and a failed release is retried once its cause is fixed.

With --keep DIR (an empty or new folder) the repository, its gitmon.yaml and
the state stay in DIR, for status, history and plan to be tried on them.`,
		Example: `  gitmon demo
  gitmon demo --keep /tmp/gitmon-demo && gitmon status --config /tmp/gitmon-demo/gitmon.yaml`,
		Args: noArgs,
		RunE: runs(func(ctx context.Context, _ []string) int { return runDemo(ctx, s, keep) }),
	}
	c.Flags().StringVar(&keep, "keep", "", "leave the repository, config and state in `DIR`, which must be empty or not exist")
	_ = c.MarkFlagDirname("keep")
	return c
}

// runDemo runs the whole flow on an embedded default (package demo).
func runDemo(ctx context.Context, s Streams, keep string) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(s.Err, "gitmon demo: %v\n", err)
		return 1
	}
	fmt.Fprintln(s.Out, "gitmon demo: a throwaway GitOps repository, the real daemon, local exec and plugin runners, a local service for healthchecks, and notifications to a local fake Slack and SMTP server.")
	if err := demo.Run(ctx, s.Out, demo.Options{Exe: exe, Keep: keep}); err != nil {
		fmt.Fprintf(s.Err, "gitmon demo: %v\n", err)
		if errors.Is(err, demo.ErrKeep) {
			return ExitUsage
		}
		return 1
	}
	return ExitOK
}

// demoStageCommand is the hidden command the demo's exec pipelines run:
// its arguments go to demo.Stage as they are.
func demoStageCommand(s Streams) *cobra.Command {
	return &cobra.Command{
		Use:                demo.StageCommand + " deploy CLUSTER | regression | smoke",
		Short:              "a stage of the demo's pipelines",
		Example:            "  gitmon " + demo.StageCommand + " deploy ./cluster",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE:               runs(func(_ context.Context, args []string) int { return demo.Stage(args, s.Out) }),
	}
}
