package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/gitmon-dev/gitmon/internal/app"
	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/internal/redact"
	"github.com/spf13/cobra"
)

// Exit codes of plan (SPEC §6).
const (
	ExitPlanNoChange = 0
	ExitPlanDeploy   = 3
	ExitPlanReject   = 4
)

// planFlags are plan's flags.
type planFlags struct {
	cf             configFlag
	env, repo, ref string
	asJSON         bool
}

func planCommand(s Streams) *cobra.Command {
	var f planFlags
	c := &cobra.Command{
		Use:   "plan --env E [--repo R] [--ref REF] [--json]",
		Short: "show what a branch would deploy, running nothing",
		Long: `Shows what serve would do in environment E if its branch were at REF (a
branch, refs/heads/..., a tag, a full or short SHA; default: the tip): per
service, last good -> requested, the field diff, the attributed commits, the
verdict or the wait. It runs nothing and needs no lock; without a state
folder the branch tip stands in for the last good, as in CI on a pull request.
Exit 0 no change, 3 changes that would deploy, 4 some change would be
rejected, 2 an error.`,
		Example: `  gitmon plan --env prod
  gitmon plan --env staging --ref feature/payments-1.5 --json`,
		Args: noArgs,
		RunE: runs(func(ctx context.Context, _ []string) int { return runPlan(ctx, s, &f) }),
	}
	f.cf.register(c)
	envFlag(c, &f.env, &f.cf, "the environment (required)")
	c.Flags().StringVar(&f.repo, "repo", "", "only this repository")
	c.Flags().StringVar(&f.ref, "ref", "", "branch or commit to plan for (default: the environment branch tip)")
	c.Flags().BoolVar(&f.asJSON, "json", false, "print a JSON array")
	return c
}

func runPlan(ctx context.Context, s Streams, f *planFlags) int {
	if f.env == "" {
		fmt.Fprintln(s.Err, "gitmon plan: --env is required: gitmon plan --env E [--repo R] [--ref REF] [--json]")
		return ExitUsage
	}
	cfg, ok := f.cf.load(s, config.ModeValidate)
	if !ok {
		return ExitUsage
	}
	entries, err := app.Plan(ctx, cfg, app.PlanOptions{Env: f.env, Repo: f.repo, Ref: f.ref})
	if err != nil {
		fmt.Fprintf(s.Err, "gitmon plan: %v\n", redact.URL(err.Error()))
		return ExitUsage
	}
	code := ExitPlanNoChange
	for _, e := range entries {
		switch e.Decision {
		case "reject":
			code = ExitPlanReject
		case "deploy", "pending":
			if code == ExitPlanNoChange {
				code = ExitPlanDeploy
			}
		}
	}
	if entries == nil {
		entries = []app.PlanEntry{}
	}
	if f.asJSON {
		if c := writeJSON(s, entries); c != ExitOK {
			return c
		}
		return code
	}
	if len(entries) == 0 {
		fmt.Fprintf(s.Out, "%s: no change\n", f.env)
	}
	for _, e := range entries {
		from := e.LastGood
		if from == "" {
			from = "(none)"
		}
		to := e.Requested
		if e.Action == "remove" {
			to = "(removed)"
		}
		fmt.Fprintf(s.Out, "%s/%s: %s → %s: %s\n", e.Environment, e.Service, from, to, strings.ToUpper(e.Decision))
		for _, c := range e.Diff {
			fmt.Fprintf(s.Out, "    %-24s %s → %s\n", c.Field, orDash(c.Old), orDash(c.New))
		}
		for _, c := range e.Commits {
			fmt.Fprintf(s.Out, "    commit %s by %s: %s\n", shortSHA(c.Commit), c.Committer, strings.Join(c.Fields, ", "))
		}
		for _, r := range e.Reasons {
			fmt.Fprintf(s.Out, "    %s: %s\n", r.Rule, r.Message)
		}
	}
	fmt.Fprintln(s.Err, "identities are unverified: signature verification is not available yet")
	return code
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
