package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/spf13/cobra"
)

// resumeFlags are resume's flags.
type resumeFlags struct {
	cf               configFlag
	env, repo, actor string
}

func resumeCommand(s Streams) *cobra.Command {
	var f resumeFlags
	c := &cobra.Command{
		Use:   "resume --env E [--repo R] [--actor A]",
		Short: "lift a pause (force-push or deleted branch) of an environment",
		Long: `Lifts the pause that a force-push or a deleted branch put on environment E,
in every repository or only in R, and records who did it. It works beside a
running serve, which acts on it within a second.`,
		Example: `  gitmon resume --env prod
  gitmon resume --env qa --repo deployments --actor alice@example.com`,
		Args: noArgs,
		RunE: runs(func(ctx context.Context, _ []string) int { return runResume(ctx, s, &f) }),
	}
	f.cf.register(c)
	envFlag(c, &f.env, &f.cf, "the environment to resume (required)")
	c.Flags().StringVar(&f.repo, "repo", "", "only this repository's branch (default: all)")
	actorFlag(c, &f.actor)
	return c
}

func runResume(ctx context.Context, s Streams, f *resumeFlags) int {
	if f.env == "" {
		fmt.Fprintln(s.Err, "gitmon resume: --env is required: gitmon resume --env E [--repo R] [--actor A]")
		return ExitUsage
	}
	actor, err := actorOf(f.actor)
	if err != nil {
		fmt.Fprintf(s.Err, "gitmon resume: %v\n", err)
		return ExitUsage
	}
	cfg, ok := f.cf.load(s, config.ModeValidate)
	if !ok {
		return ExitUsage
	}
	if err := checkEnvironment(cfg, cfg.File, f.env); err != nil {
		fmt.Fprintf(s.Err, "gitmon resume: %v\n", err)
		return ExitUsage
	}
	st, ok := openState(ctx, s, cfg, false)
	if !ok {
		return ExitUsage
	}
	defer st.Close()
	branches, err := st.Resume(ctx, f.env, f.repo, actor)
	if err != nil {
		fmt.Fprintf(s.Err, "gitmon resume: %v\n", err)
		return ExitUsage
	}
	if len(branches) == 0 {
		fmt.Fprintf(s.Out, "%s was not paused\n", f.env)
		return ExitOK
	}
	for _, b := range branches {
		fmt.Fprintf(s.Out, "resumed %s (repository %s, branch %s, paused by %s since %s), recorded as %s\n",
			b.Environment, b.Repository, b.Branch, b.Paused, b.PausedAt.Format(time.RFC3339), actor)
	}
	return ExitOK
}
