// Package cli is gitmon's command line: it parses arguments, runs one
// subcommand and returns its exit code. main only wires it to the process,
// so tests run every command in-process.
//
// Each command lives in its own file as a constructor listed in commands;
// adding one is that file plus one line in the list.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
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

// commands are the subcommands, in the order help lists them. Each
// constructor returns its command with its flags, help and example.
func commands() []func(Streams) *cobra.Command {
	return []func(Streams) *cobra.Command{
		serveCommand,
		validateCommand,
		configCommand,
		planCommand,
		historyCommand,
		resumeCommand,
		freezeCommand,
		unfreezeCommand,
		statusCommand,
		retryCommand,
		demoCommand,
		completionCommand,
		versionCommand,
		demoStageCommand,
	}
}

// Run runs the command that args name and returns its exit code.
func Run(ctx context.Context, s Streams, args []string) int {
	root := rootCommand(s)
	for _, c := range commands() {
		root.AddCommand(c(s))
	}
	root.SetArgs(longFlags(root, args))
	c, err := root.ExecuteContextC(ctx)
	var code exitCode
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &code):
		return int(code) // the command said why
	}
	// What cobra refused: an unknown command or flag, a missing or extra
	// argument. Name the command and where its help is.
	prefix := "gitmon"
	if c != nil && c != root {
		prefix = c.CommandPath()
	}
	fmt.Fprintf(s.Err, "%s: %v\n", prefix, err)
	help := "gitmon --help"
	if c != nil {
		help = c.CommandPath() + " --help"
	}
	fmt.Fprintf(s.Err, "Run '%s' for usage.\n", help)
	return ExitUsage
}

// rootCommand is gitmon itself: with no command it prints the list of
// commands (exit 2, as before cobra), with --version the version.
func rootCommand(s Streams) *cobra.Command {
	var version bool
	root := &cobra.Command{
		Use:   "gitmon",
		Short: "gitmon turns commits on environment branches into policy-checked, recorded releases",
		Long: `gitmon watches the environment branches of GitOps repositories of service
descriptors. Every commit is a deployment request: policy decides it, the
environment's release pipeline runs it, and the store records it.`,
		Example: `  gitmon validate --config gitmon.yaml .
  gitmon serve --config /etc/gitmon/gitmon.yaml
  gitmon history --env prod --since 24h`,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(c *cobra.Command, _ []string) error {
			if version {
				return exitCode(printVersion(s))
			}
			fmt.Fprint(s.Err, c.UsageString())
			return exitCode(ExitUsage)
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true // completionCommand replaces it
	root.Flags().BoolVar(&version, "version", false, "print the version, as gitmon version does")
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return err })
	return root
}

// exitCode is a command's exit code, returned as an error so that cobra
// passes it up; the command has printed what went wrong.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

// runs adapts a command body that returns an exit code to cobra.
func runs(body func(ctx context.Context, args []string) int) func(*cobra.Command, []string) error {
	return func(c *cobra.Command, args []string) error {
		if code := body(c.Context(), args); code != ExitOK {
			return exitCode(code)
		}
		return nil
	}
}

// noArgs refuses positional arguments, naming the first.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("takes no arguments, got %q", args[0])
	}
	return nil
}

// longFlags rewrites the single-dash long flags Go's flag package took
// (-config F, -log-json, -limit=5, -help) into the double-dash form, for
// the flags of the command that args select. A flag's value and
// everything after "--" are left alone.
func longFlags(root *cobra.Command, args []string) []string {
	out := make([]string, 0, len(args)) // never nil: cobra reads os.Args for nil
	c, _, err := root.Find(args)
	if err != nil || c == nil || c.DisableFlagParsing {
		return append(out, args...)
	}
	c.InitDefaultHelpFlag()
	fs := c.Flags()
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' {
			name, _, _ := strings.Cut(a[1:], "=")
			if len(name) > 1 && fs.Lookup(name) != nil {
				a = "-" + a
			}
		}
		out = append(out, a)
		if takesValue(fs, a) && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	return out
}

// takesValue reports whether a is a flag of fs whose value is the next
// argument.
func takesValue(fs *pflag.FlagSet, a string) bool {
	var f *pflag.Flag
	switch {
	case strings.Contains(a, "="):
		return false
	case strings.HasPrefix(a, "--"):
		f = fs.Lookup(a[2:])
	case len(a) == 2 && a[0] == '-':
		f = fs.ShorthandLookup(a[1:])
	}
	return f != nil && f.NoOptDefVal == ""
}
