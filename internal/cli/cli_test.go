package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitmon-dev/gitmon/internal/demo"
	"github.com/spf13/cobra"
)

// visible returns the commands help lists.
func visible(t *testing.T) []*cobra.Command {
	t.Helper()
	var out []*cobra.Command
	for _, c := range commands() {
		cmd := c(Streams{})
		if !cmd.Hidden {
			out = append(out, cmd)
		}
	}
	if len(out) < 11 {
		t.Fatalf("only %d commands", len(out))
	}
	return out
}

// TestEveryCommandHasHelpWithAnExample: -h and --help of gitmon and of
// every command print a description and an example of that command, on
// stdout, exit 0 (SPEC §6).
func TestEveryCommandHasHelpWithAnExample(t *testing.T) {
	for _, help := range []string{"-h", "--help", "-help"} {
		r := gitmon(t, help)
		if r.code != ExitOK || !strings.Contains(r.out, "Examples:") || !strings.Contains(r.out, "gitmon watches") {
			t.Errorf("gitmon %s: %v", help, r)
		}
		for _, c := range visible(t) {
			if !strings.Contains(r.out, "\n  "+c.Name()+" ") {
				t.Errorf("gitmon %s does not list %s:\n%s", help, c.Name(), r.out)
			}
		}
	}
	if r := gitmon(t, "help"); r.code != ExitOK || !strings.Contains(r.out, "Available Commands:") {
		t.Errorf("gitmon help: %v", r)
	}
	for _, c := range visible(t) {
		for _, args := range [][]string{{c.Name(), "-h"}, {c.Name(), "--help"}, {"help", c.Name()}} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				r := gitmon(t, args...)
				if r.code != ExitOK {
					t.Fatalf("exit %d: %v", r.code, r)
				}
				firstLine, _, _ := strings.Cut(strings.TrimSpace(c.Long), "\n")
				if c.Long == "" || !strings.Contains(r.out, firstLine) {
					t.Errorf("no description:\n%s", r.out)
				}
				_, examples, ok := strings.Cut(r.out, "Examples:\n")
				if !ok || !strings.Contains(examples, "  gitmon "+c.Name()) {
					t.Errorf("no example of gitmon %s:\n%s", c.Name(), r.out)
				}
			})
		}
	}
}

// TestUsageErrors: an unknown command, an unknown flag, a missing or
// extra argument, a bad shell: exit 2 with a message naming the command
// and where its help is, and nothing on stdout.
func TestUsageErrors(t *testing.T) {
	r := newRig(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"deploy-everything"}, `unknown command "deploy-everything"`},
		{[]string{"histroy"}, "Did you mean this?"},
		{[]string{"history", "--config", r.cfg, "--frobnicate"}, "gitmon history: unknown flag: --frobnicate"},
		{[]string{"validate", "--frobnicate", "."}, "gitmon validate: unknown flag: --frobnicate"},
		{[]string{"serve", "--config", r.cfg, "now"}, `gitmon serve: takes no arguments, got "now"`},
		{[]string{"history", "--config", r.cfg, "qa"}, `takes no arguments, got "qa"`},
		{[]string{"version", "--short"}, "unknown flag: --short"},
		{[]string{"history", "--limit", "ten"}, `invalid argument "ten" for "--limit"`},
		{[]string{"history", "--config"}, "flag needs an argument: --config"},
		{[]string{"completion"}, "want one shell: bash, zsh, fish"},
		{[]string{"completion", "nushell"}, `want one shell: bash, zsh, fish; got "nushell"`},
		{[]string{"completion", "bash", "zsh"}, "want one shell"},
		{[]string{"demo", "now"}, "takes no arguments"},
		{[]string{"plan", "--config", r.cfg}, "--env is required"},
		{[]string{"resume", "--config", r.cfg}, "--env is required"},
		{[]string{"resume", "--config", r.cfg, "--env", "nope"}, `no environment "nope" in ` + r.cfg + " (it has qa, staging, prod)"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			res := gitmon(t, tc.args...)
			if res.code != ExitUsage || !strings.Contains(res.errOut, tc.want) || res.out != "" {
				t.Errorf("want exit 2 saying %q: %v", tc.want, res)
			}
		})
	}
	// No command at all: the list of commands, on stderr, exit 2 (as
	// before cobra).
	if res := gitmon(t); res.code != ExitUsage || !strings.Contains(res.errOut, "Available Commands:") || res.out != "" {
		t.Errorf("gitmon with no command: %v", res)
	}
}

// TestVersionForms: gitmon version, --version and -version print the
// same line.
func TestVersionForms(t *testing.T) {
	want := gitmon(t, "version")
	if want.code != ExitOK || !strings.HasPrefix(want.out, "gitmon ") || !strings.Contains(want.out, " commit ") || !strings.Contains(want.out, " built ") {
		t.Fatalf("gitmon version: %v", want)
	}
	for _, form := range []string{"--version", "-version"} {
		if r := gitmon(t, form); r.code != ExitOK || r.out != want.out {
			t.Errorf("gitmon %s: %v, want %q", form, r, want.out)
		}
	}
}

// TestOldInvocationForms: every way test/ and the demo run gitmon, and
// the single-dash long flags Go's flag package took, still work.
func TestOldInvocationForms(t *testing.T) {
	r := newRig(t)
	t.Chdir(r.dir)
	for _, tc := range []struct {
		args []string
		code int
		want string // on stdout, or on stderr for a failure
	}{
		{[]string{"history", "--config", r.cfg}, ExitOK, "CREATED"},
		{[]string{"history", "--config", r.cfg, "--json"}, ExitOK, "[]"},
		{[]string{"history", "--config", r.cfg, "--events", "--json"}, ExitOK, "[]"},
		{[]string{"history", "--config", r.cfg, "--json", "--env", "qa"}, ExitOK, "[]"},
		{[]string{"history", "-config", r.cfg, "-json", "-limit", "5"}, ExitOK, "[]"},
		{[]string{"history", "-config=" + r.cfg, "-events", "-json=true", "-limit=5"}, ExitOK, "[]"},
		{[]string{"history", "--config=" + r.cfg, "--limit=0", "--events=false", "--json"}, ExitOK, "[]"},
		{[]string{"resume", "--config", r.cfg, "--env", "qa"}, ExitOK, "qa was not paused"},
		{[]string{"resume", "-config", r.cfg, "-env", "qa"}, ExitOK, "qa was not paused"},
		{[]string{"validate", "--config", r.cfg}, ExitOK, ""},
		{[]string{"validate", "-config", r.cfg}, ExitOK, ""},
		{[]string{"validate"}, ExitOK, ""}, // ./gitmon.yaml
		{[]string{"validate", "."}, ExitOK, ""},
		{[]string{"validate", "no/such/place.yaml"}, ExitUsage, "no such file or folder"},
		{[]string{"validate", "--config", "nope.yaml"}, ExitUsage, "nope.yaml: no such file"},
		{[]string{"config", "--config", r.cfg}, ExitOK, "environments:"},
		{[]string{"config", "-config", r.cfg}, ExitOK, "environments:"},
		{[]string{"config"}, ExitOK, "environments:"},
		{[]string{"serve", "--config", "/nonexistent/gitmon.yaml", "--log-level", "warn", "--log-format", "text"}, ExitUsage, "invalid config; nothing was started"},
		{[]string{"serve", "-config", "/nonexistent/gitmon.yaml", "-log-json"}, ExitUsage, "invalid config; nothing was started"},
		{[]string{"serve", "-log-json", "-log-format", "text"}, ExitUsage, "-log-json and --log-format text disagree"},
		{[]string{demo.StageCommand, "smoke"}, ExitOK, "smoke suite for"},
		{[]string{demo.StageCommand, "--weird", "-flags"}, ExitUsage, "usage: gitmon demo-stage"},
		{[]string{demo.StageCommand}, ExitUsage, "usage: gitmon demo-stage"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			res := gitmon(t, tc.args...)
			where := res.out
			if tc.code != ExitOK {
				where = res.errOut + res.out
			}
			if res.code != tc.code || !strings.Contains(where, tc.want) {
				t.Errorf("want exit %d with %q: %v", tc.code, tc.want, res)
			}
		})
	}
}

// TestFlagsAfterArguments: flags may come before or after positional
// arguments, and mean the same either way.
func TestFlagsAfterArguments(t *testing.T) {
	r := newRig(t)
	r.write("checkout/services/bad.yaml", "service: bad\nversion: [\n", 0o644)
	before := gitmon(t, "validate", "--config", r.cfg, filepath.Join(r.dir, "checkout"))
	after := gitmon(t, "validate", filepath.Join(r.dir, "checkout"), "--config", r.cfg)
	single := gitmon(t, "validate", filepath.Join(r.dir, "checkout"), "-config", r.cfg)
	if before.code != ExitInvalid || !strings.Contains(before.out, "bad.yaml") || !strings.Contains(before.errOut, "1 config, 1 descriptors") {
		t.Fatalf("validate --config F PATH: %v", before)
	}
	for _, res := range []result{after, single} {
		if res.code != before.code || res.out != before.out || res.errOut != before.errOut {
			t.Errorf("flags after the path differ:\n%v\nwant:\n%v", res, before)
		}
	}
}

// TestGitmonConfig: without --config, commands read $GITMON_CONFIG, else
// ./gitmon.yaml; --config wins over both (SPEC §6).
func TestGitmonConfig(t *testing.T) {
	r := newRig(t)
	elsewhere := t.TempDir()
	t.Chdir(elsewhere)

	// Neither: ./gitmon.yaml, which is not here.
	if res := gitmon(t, "config"); res.code != ExitInvalid || !strings.Contains(res.errOut, DefaultConfig) {
		t.Errorf("config without a config: %v", res)
	}
	if res := gitmon(t, "validate"); res.code != ExitUsage || !strings.Contains(res.errOut, "nothing to check") {
		t.Errorf("validate without a config: %v", res)
	}

	t.Setenv(ConfigEnv, r.cfg)
	for _, args := range [][]string{{"config"}, {"validate"}, {"history", "--json"}, {"resume", "--env", "qa"}, {"freeze", "--env", "qa", "--reason", "r"}, {"unfreeze", "--env", "qa"}} {
		if res := gitmon(t, args...); res.code != ExitOK {
			t.Errorf("%v with $%s: %v", args, ConfigEnv, res)
		}
	}
	if res := gitmon(t, "config"); !strings.Contains(res.out, filepath.Join(r.dir, "state")) {
		t.Errorf("config did not read $%s:\n%s", ConfigEnv, res.out)
	}

	// --config wins.
	other := filepath.Join(elsewhere, "other.yaml")
	if err := os.WriteFile(other, []byte(strings.Replace(rigConfig, "prod", "live", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if res := gitmon(t, "config", "--config", other); res.code != ExitOK || !strings.Contains(res.out, "live") {
		t.Errorf("--config over $%s: %v", ConfigEnv, res)
	}

	// A $GITMON_CONFIG that names nothing is an error, never a fallback.
	t.Setenv(ConfigEnv, filepath.Join(elsewhere, "missing.yaml"))
	if res := gitmon(t, "validate"); res.code != ExitUsage || !strings.Contains(res.errOut, "missing.yaml: no such file") {
		t.Errorf("validate with a missing $%s: %v", ConfigEnv, res)
	}
	if res := gitmon(t, "history"); res.code != ExitUsage || !strings.Contains(res.errOut, "missing.yaml") {
		t.Errorf("history with a missing $%s: %v", ConfigEnv, res)
	}
}

// TestCompletion: a completion script for each shell, and --env
// completes from the config's environments.
func TestCompletion(t *testing.T) {
	for shell, marker := range map[string]string{"bash": "complete -o default -F __start_gitmon gitmon", "zsh": "#compdef gitmon", "fish": "complete -c gitmon"} {
		res := gitmon(t, "completion", shell)
		if res.code != ExitOK || len(res.out) < 500 || !strings.Contains(res.out, marker) || res.errOut != "" {
			t.Errorf("completion %s: exit %d, %d bytes, stderr %q; want %q in it", shell, res.code, len(res.out), res.errOut, marker)
		}
	}
	r := newRig(t)
	res := gitmon(t, "__complete", "history", "--config", r.cfg, "--env", "")
	if res.code != ExitOK || !strings.Contains(res.out, "qa\nstaging\nprod\n") {
		t.Errorf("--env completion: %v", res)
	}
	res = gitmon(t, "__complete", "history", "--status", "fa")
	if res.code != ExitOK || !strings.Contains(res.out, "failed") {
		t.Errorf("--status completion: %v", res)
	}
	res = gitmon(t, "__complete", "fr")
	if res.code != ExitOK || !strings.Contains(res.out, "freeze") {
		t.Errorf("command completion: %v", res)
	}
}
