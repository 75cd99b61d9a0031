// Package cli is gitmon's command line: it parses arguments, runs one
// subcommand and returns its exit code. main only wires it to the process,
// so tests run every command in-process.
package cli

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/gitmon-dev/gitmon/internal/demo"
)

// Version is the release version, set at build time with
// -ldflags "-X github.com/gitmon-dev/gitmon/internal/cli.Version=v1.2.3".
var Version = "dev"

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
		{"plan", "show what a branch would deploy, running nothing", runPlan},
		{"history", "list records (or --events), newest first", runHistory},
		{"resume", "lift a pause (force-push or deleted branch) of an environment", runResume},
		{"demo", "the whole flow on an embedded default repository", runDemo},
		{"version", "print the version", runVersion},
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

func runVersion(_ context.Context, s Streams, _ []string) int {
	rev := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, kv := range bi.Settings {
			if kv.Key == "vcs.revision" && len(kv.Value) >= 12 {
				rev = " " + kv.Value[:12]
			}
		}
	}
	fmt.Fprintf(s.Out, "gitmon %s%s (%s, %s/%s)\n", Version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return ExitOK
}
