// Package cli is gitmon's command line: it parses arguments, runs one
// subcommand and returns its exit code. main only wires it to the process,
// so tests run every command in-process.
package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"

	"github.com/gitmon-dev/gitmon/internal/buildinfo"
	"github.com/gitmon-dev/gitmon/internal/demo"
)

// Exit codes shared by the commands (SPEC §6).
const (
	ExitOK      = 0
	ExitInvalid = 1 // validate: something is invalid
	ExitUsage   = 2 // bad usage, a missing path, a bad config
)

// Streams are where a command writes.
type Streams struct {
	Out io.Writer
	Err io.Writer
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, s Streams, args []string) int
}

func commands() []command {
	return []command{
		{"serve", "run the daemon until SIGINT/SIGTERM", runServe},
		{"validate", "check the config and descriptors", runValidate},
		{"config", "print the effective config, every default applied, secrets as <secret>", runConfig},
		{"plan", "show what a branch would deploy, running nothing", runPlan},
		{"history", "list records (or --events), newest first", runHistory},
		{"resume", "lift a pause (force-push or deleted branch) of an environment", runResume},
		{"demo", "the whole flow on an embedded default repository", runDemo},
		{"version", "print the version, commit and build date", runVersion},
	}
}

// Run runs the command named by args[0] and returns its exit code.
func Run(ctx context.Context, s Streams, args []string) int {
	if len(args) == 0 {
		usage(s.Err)
		return ExitUsage
	}
	switch args[0] {
	case "-h", "--help", "help":
		usage(s.Out)
		return ExitOK
	case "--version", "-version":
		return runVersion(ctx, s, nil)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, s, args[1:])
		}
	}
	if args[0] == demo.StageCommand {
		return runDemoStage(ctx, s, args[1:])
	}
	fmt.Fprintf(s.Err, "gitmon: unknown command %q\n\n", args[0])
	usage(s.Err)
	return ExitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: gitmon <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'gitmon <command> -h' for a command's flags.")
}

// runVersion prints one line: the version, the commit and the build date
// (SPEC §6), and the toolchain and platform.
func runVersion(_ context.Context, s Streams, args []string) int {
	fl := flag.NewFlagSet("version", flag.ContinueOnError)
	fl.SetOutput(s.Err)
	fl.Usage = func() {
		fmt.Fprintln(s.Err, "usage: gitmon version")
		fmt.Fprintln(s.Err, "  prints the version, the commit it was built from and the build date, such as")
		fmt.Fprintln(s.Err, "  gitmon v1.2.3 commit 0123456789abcdef0123456789abcdef01234567 built 2026-12-01T08:00:00Z (go1.26.0, linux/amd64)")
	}
	if err := fl.Parse(args); err != nil {
		return flagExit(err)
	}
	if fl.NArg() > 0 {
		fl.Usage()
		return ExitUsage
	}
	bi := buildinfo.Get()
	fmt.Fprintf(s.Out, "gitmon %s commit %s built %s (%s, %s/%s)\n", bi.Version, bi.Commit, bi.Date, bi.GoVersion, runtime.GOOS, runtime.GOARCH)
	return ExitOK
}
