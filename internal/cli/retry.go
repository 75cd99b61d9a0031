package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gitmon-dev/gitmon/internal/app"
	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/spf13/cobra"
)

// ExitRetryRejected is retry's exit code when the new record is rejected
// (SPEC §6).
const ExitRetryRejected = 4

// retryFlags are retry's flags.
type retryFlags struct {
	cf                        configFlag
	env, service, repo, actor string
}

func retryCommand(s Streams) *cobra.Command {
	var f retryFlags
	c := &cobra.Command{
		Use:   "retry --env E --service S [--repo R] [--actor A]",
		Short: "ask again for the last failed release of a service",
		Long: `Makes a new record (trigger retry, with the actor) for the descriptor of the
service's last failed or interrupted release, at the same commit. It is
decided against today's state: the identity and ticket rules, the change
rules, the promotion gate and the windows and freezes apply again; "already
in place" does not. A running serve starts it within a second. Exit 0 when
it is queued (or waits at a gate), 4 when it is rejected, 2 on an error or
when there is nothing to retry.`,
		Example: `  gitmon retry --env staging --service payments
  gitmon retry --env prod --service payments --repo deployments --actor alice@example.com`,
		Args: noArgs,
		RunE: runs(func(ctx context.Context, _ []string) int { return runRetry(ctx, s, &f) }),
	}
	f.cf.register(c)
	envFlag(c, &f.env, &f.cf, "the environment (required)")
	c.Flags().StringVar(&f.service, "service", "", "the service (required)")
	c.Flags().StringVar(&f.repo, "repo", "", "the repository, when several hold the service")
	actorFlag(c, &f.actor)
	return c
}

func runRetry(ctx context.Context, s Streams, f *retryFlags) int {
	fail := func(err error) int {
		fmt.Fprintf(s.Err, "gitmon retry: %v\n", err)
		return ExitUsage
	}
	if f.env == "" || f.service == "" {
		return fail(errors.New("--env and --service are required: gitmon retry --env E --service S"))
	}
	actor, err := actorOf(f.actor)
	if err != nil {
		return fail(err)
	}
	cfg, ok := f.cf.load(s, config.ModeValidate)
	if !ok {
		return ExitUsage
	}
	if err := checkEnvironment(cfg, cfg.File, f.env); err != nil {
		return fail(err)
	}
	st, ok := openState(ctx, s, cfg, false)
	if !ok {
		return ExitUsage
	}
	defer st.Close()
	rec, err := app.Retry(ctx, cfg, st, app.RetryOptions{Env: f.env, Service: f.service, Repo: f.repo, Actor: actor, Now: time.Now()})
	if err != nil {
		return fail(err)
	}
	switch {
	case rec.Status == store.StatusRejected:
		fmt.Fprintf(s.Out, "retry of %s %s in %s is rejected (record %s): %s\n", rec.Service, rec.Version, rec.Environment, rec.ID, reasonLine(rec))
		return ExitRetryRejected
	case rec.Phase == store.PhaseQueued:
		fmt.Fprintf(s.Out, "queued a retry of %s %s in %s at %s (record %s), asked by %s\n", rec.Service, rec.Version,
			rec.Environment, shortSHA(rec.Commit), rec.ID, actor)
	default:
		fmt.Fprintf(s.Out, "queued a retry of %s %s in %s (record %s), asked by %s; it waits: %s\n", rec.Service, rec.Version,
			rec.Environment, rec.ID, actor, reasonLine(rec))
	}
	return ExitOK
}

// reasonLine is a record's reasons on one line.
func reasonLine(rec *store.Record) string {
	parts := make([]string, 0, len(rec.Reasons))
	for _, r := range rec.Reasons {
		parts = append(parts, r.Rule+": "+r.Message)
	}
	return oneLine(strings.Join(parts, "; "), 200)
}
