package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/gitmon-dev/gitmon/internal/demo"
	"github.com/spf13/cobra"
)

func demoCommand(s Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "the whole flow on an embedded default repository",
		Long: `Builds a throwaway GitOps repository and runs the real daemon on it: local
exec and plugin runners, a local service for healthchecks, and notifications
to a local fake Slack and SMTP server. It needs nothing but this binary.`,
		Example: `  gitmon demo`,
		Args:    noArgs,
		RunE:    runs(func(ctx context.Context, _ []string) int { return runDemo(ctx, s) }),
	}
}

// runDemo runs the whole flow on an embedded default (package demo).
func runDemo(ctx context.Context, s Streams) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(s.Err, "gitmon demo: %v\n", err)
		return 1
	}
	fmt.Fprintln(s.Out, "gitmon demo: a throwaway GitOps repository, the real daemon, local exec and plugin runners, a local service for healthchecks, and notifications to a local fake Slack and SMTP server.")
	if err := demo.Run(ctx, s.Out, exe); err != nil {
		fmt.Fprintf(s.Err, "gitmon demo: %v\n", err)
		return 1
	}
	return ExitOK
}

// demoStageCommand is the hidden command the demo's exec pipelines run:
// its arguments go to demo.Stage as they are.
func demoStageCommand(s Streams) *cobra.Command {
	return &cobra.Command{
		Use:                demo.StageCommand + " deploy|regression|smoke",
		Short:              "a stage of the demo's pipelines",
		Example:            "  gitmon " + demo.StageCommand + " deploy",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE:               runs(func(_ context.Context, args []string) int { return demo.Stage(args, s.Out) }),
	}
}
