package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/gitmon-dev/gitmon/internal/demo"
)

// runDemo runs the whole flow on an embedded default (package demo).
func runDemo(ctx context.Context, s Streams, args []string) int {
	if len(args) > 0 {
		fmt.Fprintln(s.Err, "usage: gitmon demo")
		return ExitUsage
	}
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

// runDemoStage is the hidden command the demo's exec pipelines run.
func runDemoStage(_ context.Context, s Streams, args []string) int {
	return demo.Stage(args, s.Out)
}
