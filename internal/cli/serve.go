package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gitmon-dev/gitmon/internal/app"
	"github.com/gitmon-dev/gitmon/internal/buildinfo"
	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/internal/yamlx"
)

// loadConfig loads --config for a command, printing every problem; ok is
// false when the command must exit 2.
func loadConfig(s Streams, path string, mode config.Mode) (*config.Config, bool) {
	if path == "" {
		path = DefaultConfig
	}
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

func runServe(ctx context.Context, s Streams, args []string) int {
	fl := flag.NewFlagSet("serve", flag.ContinueOnError)
	fl.SetOutput(s.Err)
	cfgPath := fl.String("config", DefaultConfig, "config file")
	var lf logFlags
	lf.register(fl)
	fl.Usage = func() {
		fmt.Fprintln(s.Err, "usage: gitmon serve [--config F] [--log-level L] [--log-format F]")
		fmt.Fprintln(s.Err, "  runs the daemon until SIGINT or SIGTERM; exit 0 on a clean stop, 2 on a bad config or a locked or damaged state.")
		fmt.Fprintln(s.Err, "example:")
		fmt.Fprintln(s.Err, "  gitmon serve --config /etc/gitmon/gitmon.yaml --log-format json --log-level debug")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		return flagExit(err)
	}
	if fl.NArg() > 0 {
		fl.Usage()
		return ExitUsage
	}
	if err := lf.check(); err != nil {
		fmt.Fprintf(s.Err, "gitmon serve: %v\n", err)
		return ExitUsage
	}
	cfg, ok := loadConfig(s, *cfgPath, config.ModeServe)
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

func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	return ExitUsage
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

func runHistory(ctx context.Context, s Streams, args []string) int {
	fl := flag.NewFlagSet("history", flag.ContinueOnError)
	fl.SetOutput(s.Err)
	cfgPath := fl.String("config", DefaultConfig, "config file")
	env := fl.String("env", "", "only this environment")
	service := fl.String("service", "", "only this service")
	repo := fl.String("repo", "", "only this repository")
	events := fl.Bool("events", false, "list events instead of records")
	asJSON := fl.Bool("json", false, "print a JSON array (SPEC §7 records)")
	limit := fl.Int("limit", 0, "at most this many, newest first (0: all)")
	if err := fl.Parse(args); err != nil {
		return flagExit(err)
	}
	cfg, ok := loadConfig(s, *cfgPath, config.ModeValidate)
	if !ok {
		return ExitUsage
	}
	st, ok := openState(ctx, s, cfg, true)
	if !ok {
		return ExitUsage
	}
	defer st.Close()
	f := store.Filter{Repository: *repo, Environment: *env, Service: *service, Limit: *limit}
	if *events {
		evs, err := st.Events(ctx, f)
		if err != nil {
			fmt.Fprintf(s.Err, "gitmon history: %v\n", err)
			return ExitUsage
		}
		if evs == nil {
			evs = []store.Event{}
		}
		if *asJSON {
			return writeJSON(s, evs)
		}
		tw := tabwriter.NewWriter(s.Out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "AT\tREPOSITORY\tENV\tKIND\tCOMMIT\tMESSAGE")
		for _, e := range evs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.At.Format(time.RFC3339), e.Repository, e.Environment, e.Kind, shortSHA(e.Commit), e.Message)
		}
		tw.Flush()
		return ExitOK
	}
	recs, err := st.Records(ctx, f)
	if err != nil {
		fmt.Fprintf(s.Err, "gitmon history: %v\n", err)
		return ExitUsage
	}
	if recs == nil {
		recs = []*store.Record{}
	}
	if *asJSON {
		return writeJSON(s, recs)
	}
	tw := tabwriter.NewWriter(s.Out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CREATED\tENV\tSERVICE\tVERSION\tSTATUS\tCOMMIT\tCOMMITTER\tWHY")
	for _, r := range recs {
		why := make([]string, 0, len(r.Reasons))
		for _, rs := range r.Reasons {
			why = append(why, rs.Rule+": "+rs.Message)
		}
		for _, st := range r.Stages {
			if st.Status == store.StageFailed || st.Status == store.StageInterrupted {
				why = append(why, st.Name+" "+st.Status+": "+st.Message)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.CreatedAt.Format(time.RFC3339), r.Environment, r.Service,
			versionStep(r), r.Status, shortSHA(r.Commit), r.Committer, strings.Join(why, "; "))
	}
	tw.Flush()
	fmt.Fprintln(s.Err, "identities are unverified: signature verification is not available yet")
	return ExitOK
}

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

func runResume(ctx context.Context, s Streams, args []string) int {
	fl := flag.NewFlagSet("resume", flag.ContinueOnError)
	fl.SetOutput(s.Err)
	cfgPath := fl.String("config", DefaultConfig, "config file")
	env := fl.String("env", "", "the environment to resume (required)")
	repo := fl.String("repo", "", "only this repository's branch (default: all)")
	if err := fl.Parse(args); err != nil {
		return flagExit(err)
	}
	if *env == "" {
		fmt.Fprintln(s.Err, "usage: gitmon resume --config F --env E [--repo R]")
		return ExitUsage
	}
	cfg, ok := loadConfig(s, *cfgPath, config.ModeValidate)
	if !ok {
		return ExitUsage
	}
	if cfg.Environment(*env) == nil {
		fmt.Fprintf(s.Err, "gitmon resume: no environment %q in %s\n", *env, *cfgPath)
		return ExitUsage
	}
	st, ok := openState(ctx, s, cfg, false)
	if !ok {
		return ExitUsage
	}
	defer st.Close()
	actor := "unknown"
	if u, err := user.Current(); err == nil {
		actor = u.Username
	}
	if host, err := os.Hostname(); err == nil {
		actor += "@" + host
	}
	branches, err := st.Resume(ctx, *env, *repo, actor)
	if err != nil {
		fmt.Fprintf(s.Err, "gitmon resume: %v\n", err)
		return ExitUsage
	}
	if len(branches) == 0 {
		fmt.Fprintf(s.Out, "%s was not paused\n", *env)
		return ExitOK
	}
	for _, b := range branches {
		fmt.Fprintf(s.Out, "resumed %s (repository %s, branch %s, paused by %s since %s), recorded as %s\n",
			b.Environment, b.Repository, b.Branch, b.Paused, b.PausedAt.Format(time.RFC3339), actor)
	}
	return ExitOK
}
