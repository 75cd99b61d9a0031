package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// commandAt returns where validate places a problem of the command of a
// one-line flow pipeline: the line and column of its value.
func commandAt(t *testing.T, cfg, pipeline string) string {
	t.Helper()
	for i, l := range strings.Split(cfg, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), pipeline+":") {
			return fmt.Sprintf("%d:%d", i+1, strings.Index(l, "command: ")+len("command: ")+1)
		}
	}
	t.Fatalf("no pipeline %s in\n%s", pipeline, cfg)
	return ""
}

// TestValidateExecCommands: the program of every exec pipeline must
// exist and be executable, found as serve finds it: a path against the
// config's folder, a bare name in PATH. A problem is file:line:col at
// the pipeline's command, and exit 1.
func TestValidateExecCommands(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "deployer"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	for _, tc := range []struct {
		name, command string
		setup         func(r *rig)
		want          string // "" when valid
	}{
		{name: "script next to the config", command: `["./deploy.sh", "--fast"]`},
		{name: "script in a subfolder", command: `["scripts/run"]`, setup: func(r *rig) { r.write("scripts/run", "#!/bin/sh\n", 0o755) }},
		{name: "absolute path", command: `["/bin/sh", "-c", "true"]`},
		{name: "bare name in PATH", command: `["deployer"]`},
		{name: "missing", command: `["./missing.sh"]`, want: "pipelines.deploy.command: %s/missing.sh does not exist"},
		{name: "not executable", command: `["./plain.sh"]`, setup: func(r *rig) { r.write("plain.sh", "#!/bin/sh\n", 0o644) },
			want: "pipelines.deploy.command: %s/plain.sh is not executable"},
		{name: "a folder", command: `["./scripts"]`, setup: func(r *rig) { r.write("scripts/x", "", 0o644) },
			want: "pipelines.deploy.command: %s/scripts is a folder, not a program"},
		{name: "bare name not in PATH", command: `["no-such-deployer-7f3a"]`, want: `pipelines.deploy.command: "no-such-deployer-7f3a" is not found in PATH`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			cfg := strings.Replace(rigConfig, `command: ["./deploy.sh"]`, "command: "+tc.command, 1)
			r.write("gitmon.yaml", cfg, 0o644)
			if tc.setup != nil {
				tc.setup(r)
			}
			res := gitmon(t, "validate", "--config", r.cfg)
			if tc.want == "" {
				if res.code != ExitOK || strings.Contains(res.out, "command") {
					t.Errorf("want valid: %v", res)
				}
				return
			}
			want := r.cfg + ":" + commandAt(t, cfg, "deploy") + ": " + strings.ReplaceAll(tc.want, "%s", r.dir)
			if res.code != ExitInvalid || !strings.Contains(res.out, want) || !strings.Contains(res.errOut, "1 problems") {
				t.Errorf("want exit 1 with\n%s\ngot %v", want, res)
			}
		})
	}
}

// TestValidateWarnsAboutShellExpansion: ~ and $ in a path or a program
// are taken literally (gitmon runs no shell), which validate warns about
// without failing; an argument, which a shell command may expand itself,
// is left alone.
func TestValidateWarnsAboutShellExpansion(t *testing.T) {
	r := newRig(t)
	r.write("bin/deploy", "#!/bin/sh\n", 0o755)
	cfg := strings.NewReplacer(
		"state: ./state", "state: ~/gitmon-state",
		`command: ["./deploy.sh"]`, `command: ["./deploy.sh"]}
  shell: {runner: exec, command: ["/bin/sh", "-c", "deploy $GITMON_VERSION ~/x"]}
  home: {runner: exec, command: ["$HOME/bin/deploy"]`,
	).Replace(rigConfig) + "plugin_dir: ${PLUGINS}/gitmon\n"
	r.write("gitmon.yaml", cfg, 0o644)
	res := gitmon(t, "validate", "--config", r.cfg)
	if res.code != ExitInvalid { // $HOME/bin/deploy does not exist: taken literally
		t.Fatalf("want exit 1 for the literal $HOME path: %v", res)
	}
	for _, want := range []string{
		r.cfg + `:1:8: state: warning: "~/gitmon-state" holds ~ or $, but gitmon runs no shell`,
		r.cfg + `:` + commandAt(t, cfg, "home")[:2] + `.*: pipelines.home.command[0]: warning: "$HOME/bin/deploy" holds ~ or $`,
		`plugin_dir: warning: "${PLUGINS}/gitmon" holds ~ or $`,
		"pipelines.home.command: " + r.dir + "/$HOME/bin/deploy does not exist",
	} {
		if strings.Contains(want, ".*") {
			before, after, _ := strings.Cut(want, ".*")
			if !strings.Contains(res.out, before) || !strings.Contains(res.out, after) {
				t.Errorf("validate lacks %q:\n%s", want, res.out)
			}
			continue
		}
		if !strings.Contains(res.out, want) {
			t.Errorf("validate lacks %q:\n%s", want, res.out)
		}
	}
	if strings.Contains(res.out, "pipelines.shell.command") || strings.Contains(res.out, "pipelines.deploy.command") {
		t.Errorf("a shell command's arguments or a plain path were warned about:\n%s", res.out)
	}

	// Warnings alone do not fail.
	r.write("gitmon.yaml", strings.Replace(rigConfig, "state: ./state", "state: ./$state", 1), 0o644)
	if res := gitmon(t, "validate", "--config", r.cfg); res.code != ExitOK || !strings.Contains(res.out, `state: warning: "$state" holds ~ or $`) {
		t.Errorf("a warning made validate fail, or was not given: %v", res)
	}
}
