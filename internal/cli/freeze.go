package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/spf13/cobra"
)

// freezeFlags are the flags of freeze and unfreeze.
type freezeFlags struct {
	cf                  configFlag
	env, actor          string
	all                 bool
	reason, until       string // freeze only
	haltUsage, envUsage string
}

// target checks --env and --all: exactly one. It returns the store's
// name of what they select ("" is every environment, a halt).
func (f *freezeFlags) target() (string, error) {
	switch {
	case f.all && f.env != "":
		return "", errors.New("--env and --all exclude each other: one environment, or all of them")
	case !f.all && f.env == "":
		return "", errors.New("say which: --env E, or --all for every environment")
	}
	return f.env, nil
}

func (f *freezeFlags) register(c *cobra.Command) {
	f.cf.register(c)
	envFlag(c, &f.env, &f.cf, f.envUsage)
	c.Flags().BoolVar(&f.all, "all", false, f.haltUsage)
	actorFlag(c, &f.actor)
}

func freezeCommand(s Streams) *cobra.Command {
	f := freezeFlags{envUsage: "the environment to freeze", haltUsage: "freeze every environment (a halt)"}
	c := &cobra.Command{
		Use:   "freeze (--env E | --all) --reason R [--until T] [--actor A]",
		Short: "hold new releases in an environment, or in all of them",
		Long: `Holds new releases in environment E, or with --all in every environment (a
halt), until unfreeze or until T. Running stages finish; held records wait
pending (rule window) and start in commit order when the freeze lifts. A
freeze replaces the one already set. It works beside a running serve, which
acts on it within a second, and is recorded as an event with its actor.
T is an RFC 3339 time or a duration from now, such as 4h or 2d.`,
		Example: `  gitmon freeze --env prod --reason "quarter-end close" --until 2d
  gitmon freeze --all --reason "incident INC-42: stop the line" --actor alice@example.com`,
		Args: noArgs,
		RunE: runs(func(ctx context.Context, _ []string) int { return runFreeze(ctx, s, &f, time.Now()) }),
	}
	f.register(c)
	c.Flags().StringVar(&f.reason, "reason", "", "why, as recorded and shown while it holds (required)")
	c.Flags().StringVar(&f.until, "until", "", "lift it by itself at T (default: only unfreeze lifts it)")
	return c
}

func unfreezeCommand(s Streams) *cobra.Command {
	f := freezeFlags{envUsage: "the environment to unfreeze", haltUsage: "lift the halt of every environment (freeze --all)"}
	c := &cobra.Command{
		Use:   "unfreeze (--env E | --all) [--actor A]",
		Short: "lift a freeze",
		Long: `Lifts the freeze of environment E, or with --all the halt of every
environment; what they held starts in commit order. A freeze of E and the
halt are separate: lifting one leaves the other. It works beside a running
serve, which acts on it within a second, and is recorded as an event with its
actor.`,
		Example: `  gitmon unfreeze --env prod
  gitmon unfreeze --all --actor alice@example.com`,
		Args: noArgs,
		RunE: runs(func(ctx context.Context, _ []string) int { return runUnfreeze(ctx, s, &f) }),
	}
	f.register(c)
	return c
}

func runFreeze(ctx context.Context, s Streams, f *freezeFlags, now time.Time) int {
	fail := func(err error) int {
		fmt.Fprintf(s.Err, "gitmon freeze: %v\n", err)
		return ExitUsage
	}
	env, err := f.target()
	if err != nil {
		return fail(err)
	}
	if f.reason == "" {
		return fail(errors.New("--reason is required: say why, it is shown while the freeze holds"))
	}
	if err := checkText("--reason", f.reason, maxReason); err != nil {
		return fail(err)
	}
	var until *time.Time
	if f.until != "" {
		t, err := parseTime(f.until, now, true)
		if err != nil {
			return fail(fmt.Errorf("--until %w", err))
		}
		if !t.After(now) {
			return fail(fmt.Errorf("--until %s is in the past (%s): a freeze must end later", f.until, t.UTC().Format(time.RFC3339)))
		}
		until = &t
	}
	actor, err := actorOf(f.actor)
	if err != nil {
		return fail(err)
	}
	cfg, ok := f.cf.load(s, config.ModeValidate)
	if !ok {
		return ExitUsage
	}
	if err := checkEnvironment(cfg, cfg.File, env); err != nil {
		return fail(err)
	}
	st, ok := openState(ctx, s, cfg, false)
	if !ok {
		return ExitUsage
	}
	defer st.Close()
	// What it replaces, for the line printed; the store replaces it.
	var replaced *store.Freeze
	if fs, err := st.Freezes(ctx); err == nil {
		if i := slices.IndexFunc(fs, func(x store.Freeze) bool { return x.Environment == env }); i >= 0 {
			replaced = &fs[i]
		}
	}
	if err := st.Freeze(ctx, store.Freeze{Environment: env, Reason: f.reason, Actor: actor, Until: until}); err != nil {
		return fail(err)
	}
	line := "froze " + env
	if env == "" {
		line = "halted every environment"
	}
	if until != nil {
		line += " until " + until.UTC().Format(time.RFC3339)
	}
	line += fmt.Sprintf(": %s; recorded as %s", f.reason, actor)
	if replaced != nil {
		line += fmt.Sprintf(" (it replaces the freeze set by %s: %s)", cell(replaced.Actor), cell(replaced.Reason))
	}
	fmt.Fprintln(s.Out, line)
	return ExitOK
}

func runUnfreeze(ctx context.Context, s Streams, f *freezeFlags) int {
	fail := func(err error) int {
		fmt.Fprintf(s.Err, "gitmon unfreeze: %v\n", err)
		return ExitUsage
	}
	env, err := f.target()
	if err != nil {
		return fail(err)
	}
	actor, err := actorOf(f.actor)
	if err != nil {
		return fail(err)
	}
	cfg, ok := f.cf.load(s, config.ModeValidate)
	if !ok {
		return ExitUsage
	}
	st, ok := openState(ctx, s, cfg, false)
	if !ok {
		return ExitUsage
	}
	defer st.Close()
	if err := checkEnvironment(cfg, cfg.File, env); err != nil {
		// An environment removed from the config may still hold a freeze
		// in the state: lifting that is allowed, nothing else.
		fs, ferr := st.Freezes(ctx)
		if ferr != nil || !slices.ContainsFunc(fs, func(x store.Freeze) bool { return x.Environment == env }) {
			return fail(err)
		}
	}
	lifted, found, err := st.Unfreeze(ctx, env, actor)
	if err != nil {
		return fail(err)
	}
	switch {
	case !found && env == "":
		fmt.Fprintln(s.Out, "no halt was set")
	case !found:
		fmt.Fprintf(s.Out, "%s was not frozen\n", env)
	default:
		verb := "unfroze " + env
		if env == "" {
			verb = "lifted the halt of every environment"
		}
		fmt.Fprintf(s.Out, "%s (frozen by %s since %s: %s); recorded as %s\n", verb, cell(lifted.Actor),
			lifted.Since.UTC().Format(time.RFC3339), cell(lifted.Reason), actor)
	}
	if env != "" {
		// The halt holds every environment whatever their own freezes.
		if fs, err := st.Freezes(ctx); err == nil && len(fs) > 0 && fs[0].Environment == "" && fs[0].Active(time.Now()) {
			fmt.Fprintf(s.Err, "gitmon unfreeze: note: every environment is still halted (by %s: %s); gitmon unfreeze --all lifts it\n",
				cell(fs[0].Actor), cell(fs[0].Reason))
		}
	}
	return ExitOK
}
