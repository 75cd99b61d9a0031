package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/spf13/cobra"
)

// recordStatuses are the statuses a record can have (SPEC §5, §7), the
// values --status takes.
var recordStatuses = []string{
	store.StatusPending, store.StatusRunning, store.StatusSucceeded, store.StatusFailed,
	store.StatusSkipped, store.StatusRejected, store.StatusSuperseded,
}

// whyWidth is how many characters of reasons the WHY column shows.
const whyWidth = 100

// cellWidth bounds the other columns that show stored text.
const cellWidth = 60

// historyFlags are history's flags.
type historyFlags struct {
	cf                 configFlag
	env, service, repo string
	status             []string
	since              string
	limit              int
	events, asJSON     bool
}

func historyCommand(s Streams) *cobra.Command {
	var f historyFlags
	c := &cobra.Command{
		Use:   "history [--env E] [--service S] [--status S] [--since T] [--limit N] [--events] [--json]",
		Short: "list records (or --events), newest first",
		Long: `Lists the deployment records (or, with --events, the events), newest first.
It works while serve runs. T is an RFC 3339 time or a duration back from now,
such as 24h or 7d. An environment the config does not have, or a service
gitmon has never seen, is an error (exit 2). --json prints a JSON array of
the records of SPEC §7.`,
		Example: `  gitmon history --env prod --since 24h
  gitmon history --service payments --status failed,rejected --limit 10
  gitmon history --events --json`,
		Args: noArgs,
		RunE: runs(func(ctx context.Context, _ []string) int { return runHistory(ctx, s, &f) }),
	}
	f.cf.register(c)
	fl := c.Flags()
	envFlag(c, &f.env, &f.cf, "only this environment")
	fl.StringVar(&f.service, "service", "", "only this service")
	fl.StringVar(&f.repo, "repo", "", "only this repository")
	fl.StringSliceVar(&f.status, "status", nil, "only records with this status ("+strings.Join(recordStatuses, ", ")+"); repeat it or separate with commas")
	fl.StringVar(&f.since, "since", "", "only what happened at or after T")
	fl.IntVar(&f.limit, "limit", 0, "at most this many, newest first (0: all)")
	fl.BoolVar(&f.events, "events", false, "list events instead of records")
	fl.BoolVar(&f.asJSON, "json", false, "print a JSON array (SPEC §7 records)")
	_ = c.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(recordStatuses, cobra.ShellCompDirectiveNoFileComp))
	return c
}

// filter checks the flags that need no config and returns the store's
// filter.
func (f *historyFlags) filter(now time.Time) (store.Filter, error) {
	filt := store.Filter{Repository: f.repo, Environment: f.env, Service: f.service, Limit: f.limit}
	var errs []error
	if f.limit < 0 {
		errs = append(errs, fmt.Errorf("--limit %d: want 0 (all) or more", f.limit))
	}
	for _, st := range f.status {
		st = strings.TrimSpace(st)
		if !slices.Contains(recordStatuses, st) {
			errs = append(errs, fmt.Errorf("--status %q: want one of %s", st, strings.Join(recordStatuses, ", ")))
			continue
		}
		if !slices.Contains(filt.Status, st) {
			filt.Status = append(filt.Status, st)
		}
	}
	if len(f.status) > 0 && f.events {
		errs = append(errs, errors.New("--status selects records; events have none"))
	}
	if f.since != "" {
		t, err := parseTime(f.since, now, false)
		if err != nil {
			errs = append(errs, fmt.Errorf("--since %w", err))
		}
		filt.Since = t
	}
	return filt, errors.Join(errs...)
}

func runHistory(ctx context.Context, s Streams, f *historyFlags) int {
	filt, err := f.filter(time.Now())
	if err != nil {
		fmt.Fprintf(s.Err, "gitmon history: %v\n", strings.ReplaceAll(err.Error(), "\n", "\ngitmon history: "))
		return ExitUsage
	}
	cfg, ok := f.cf.load(s, config.ModeValidate)
	if !ok {
		return ExitUsage
	}
	if err := checkEnvironment(cfg, cfg.File, f.env); err != nil {
		fmt.Fprintf(s.Err, "gitmon history: %v\n", err)
		return ExitUsage
	}
	if f.repo != "" && cfg.Repository(f.repo) == nil {
		fmt.Fprintf(s.Err, "gitmon history: no repository %q in %s\n", f.repo, cfg.File)
		return ExitUsage
	}
	st, ok := openState(ctx, s, cfg, true)
	if !ok {
		return ExitUsage
	}
	defer st.Close()
	if f.events {
		return historyEvents(ctx, s, st, cfg, f, filt)
	}
	recs, err := st.Records(ctx, filt)
	if err != nil {
		fmt.Fprintf(s.Err, "gitmon history: %v\n", err)
		return ExitUsage
	}
	if len(recs) == 0 && f.service != "" {
		// Nothing: say so when the service is not one gitmon knows.
		if code := checkService(ctx, s, st, cfg, f.service); code != ExitOK {
			return code
		}
	}
	if recs == nil {
		recs = []*store.Record{}
	}
	if f.asJSON {
		return writeJSON(s, recs)
	}
	tw := tabwriter.NewWriter(s.Out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CREATED\tENV\tSERVICE\tVERSION\tSTATUS\tCOMMIT\tCOMMITTER\tWHY")
	for _, r := range recs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.CreatedAt.Format(time.RFC3339), cell(r.Environment), cell(r.Service),
			cell(versionStep(r)), r.Status, shortSHA(r.Commit), cell(r.Committer), why(r))
	}
	tw.Flush()
	fmt.Fprintln(s.Err, "identities are unverified: signature verification is not available yet")
	return ExitOK
}

func historyEvents(ctx context.Context, s Streams, st store.Store, cfg *config.Config, f *historyFlags, filt store.Filter) int {
	if f.service != "" {
		if code := checkService(ctx, s, st, cfg, f.service); code != ExitOK {
			return code
		}
	}
	evs, err := st.Events(ctx, filt)
	if err != nil {
		fmt.Fprintf(s.Err, "gitmon history: %v\n", err)
		return ExitUsage
	}
	if !filt.Since.IsZero() {
		// Newest first: what is older than --since is a tail.
		if i := slices.IndexFunc(evs, func(e store.Event) bool { return e.At.Before(filt.Since) }); i >= 0 {
			evs = evs[:i]
		}
	}
	if evs == nil {
		evs = []store.Event{}
	}
	if f.asJSON {
		return writeJSON(s, evs)
	}
	tw := tabwriter.NewWriter(s.Out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tREPOSITORY\tENV\tKIND\tCOMMIT\tMESSAGE")
	for _, e := range evs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.At.Format(time.RFC3339), cell(e.Repository), cell(e.Environment), cell(e.Kind),
			shortSHA(e.Commit), oneLine(e.Message, whyWidth))
	}
	tw.Flush()
	return ExitOK
}

// checkService reports a service gitmon has never seen in any
// environment: no branch holds it and no record names it.
func checkService(ctx context.Context, s Streams, st store.Store, cfg *config.Config, service string) int {
	known, err := serviceKnown(ctx, st, cfg, service)
	switch {
	case err != nil:
		fmt.Fprintf(s.Err, "gitmon history: %v\n", err)
		return ExitUsage
	case !known:
		fmt.Fprintf(s.Err, "gitmon history: gitmon has never seen a service %q in any environment\n", oneLine(service, cellWidth))
		return ExitUsage
	}
	return ExitOK
}

// serviceKnown looks for service in every environment of the config and
// of the state, with indexed queries only (services_claims and
// records_env_service).
func serviceKnown(ctx context.Context, st store.Store, cfg *config.Config, service string) (bool, error) {
	var envs []string
	for _, e := range cfg.Environments {
		envs = append(envs, e.Name)
	}
	branches, err := st.Branches(ctx)
	if err != nil {
		return false, err
	}
	for _, b := range branches {
		if !slices.Contains(envs, b.Environment) {
			envs = append(envs, b.Environment)
		}
	}
	for _, env := range envs {
		repos, err := st.Claims(ctx, env, service)
		if err != nil || len(repos) > 0 {
			return len(repos) > 0, err
		}
		recs, err := st.Records(ctx, store.Filter{Environment: env, Service: service, Limit: 1})
		if err != nil || len(recs) > 0 {
			return len(recs) > 0, err
		}
	}
	return false, nil
}

// why is the WHY column of a record: its reasons and its failed stages,
// on one line.
func why(r *store.Record) string {
	parts := make([]string, 0, len(r.Reasons))
	for _, rs := range r.Reasons {
		parts = append(parts, rs.Rule+": "+rs.Message)
	}
	for _, st := range r.Stages {
		if st.Status == store.StageFailed || st.Status == store.StageInterrupted {
			parts = append(parts, st.Name+" "+st.Status+": "+st.Message)
		}
	}
	return oneLine(strings.Join(parts, "; "), whyWidth)
}

// cell is a table cell of stored text: one line, bounded.
func cell(s string) string { return oneLine(s, cellWidth) }

func versionStep(r *store.Record) string {
	if r.Action == "remove" {
		return "remove " + r.Version
	}
	if r.PreviousVersion == "" || r.PreviousVersion == r.Version {
		return r.Version
	}
	return r.PreviousVersion + " → " + r.Version
}

func shortSHA(s string) string {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}

func writeJSON(s Streams, v any) int {
	enc := json.NewEncoder(s.Out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(s.Err, "gitmon: %v\n", err)
		return ExitUsage
	}
	return ExitOK
}
