package cli

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/gitmon-dev/gitmon/internal/app"
	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/internal/redact"
)

// Exit codes of plan (SPEC §6).
const (
	ExitPlanNoChange = 0
	ExitPlanDeploy   = 3
	ExitPlanReject   = 4
)

func runPlan(ctx context.Context, s Streams, args []string) int {
	fl := flag.NewFlagSet("plan", flag.ContinueOnError)
	fl.SetOutput(s.Err)
	cfgPath := fl.String("config", DefaultConfig, "config file")
	env := fl.String("env", "", "environment (required)")
	repo := fl.String("repo", "", "only this repository")
	ref := fl.String("ref", "", "branch or commit to plan for (default: the environment branch tip)")
	asJSON := fl.Bool("json", false, "print a JSON array")
	if err := fl.Parse(args); err != nil {
		return flagExit(err)
	}
	if *env == "" || fl.NArg() > 0 {
		fmt.Fprintln(s.Err, "usage: gitmon plan --config F --env E [--repo R] [--ref REF] [--json]")
		return ExitUsage
	}
	cfg, ok := loadConfig(s, *cfgPath, config.ModeValidate)
	if !ok {
		return ExitUsage
	}
	entries, err := app.Plan(ctx, cfg, app.PlanOptions{Env: *env, Repo: *repo, Ref: *ref})
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
	if *asJSON {
		if c := writeJSON(s, entries); c != ExitOK {
			return c
		}
		return code
	}
	if len(entries) == 0 {
		fmt.Fprintf(s.Out, "%s: no change\n", *env)
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
