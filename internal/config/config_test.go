package config

import (
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gitmon-dev/gitmon/internal/yamlx"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testEnv is the environment every golden test sees.
var testEnv = map[string]string{
	"GIT_USER":      "git-user-canary",
	"GIT_TOKEN":     "git-token-canary",
	"JIRA_USER":     "jira-user-canary",
	"JIRA_TOKEN":    "jira-token-canary",
	"SLACK_TOKEN":   "slack-token-canary",
	"JENKINS_USER":  "jenkins-user-canary",
	"JENKINS_TOKEN": "jenkins-token-canary",
	"SMTP_USER":     "smtp-user-canary",
	"SMTP_PASSWORD": "smtp-password-canary",
	"SCM_TOKEN":     "scm-token-canary",
	"EMPTY_VAR":     "",
}

func lookupIn(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

// testdataOnly reads files under testdata and nothing else, so the
// goldens do not depend on the machine (such as /etc/gitmon/ca.pem).
func testdataOnly(t testing.TB) func(string) ([]byte, error) {
	root, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	return func(name string) ([]byte, error) {
		abs, err := filepath.Abs(name)
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(abs, root+string(filepath.Separator)) {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		return os.ReadFile(abs)
	}
}

// optionsFor loads files named serve-* in ModeServe, others in
// ModeValidate.
func optionsFor(t testing.TB, file string) Options {
	mode := ModeValidate
	if strings.HasPrefix(filepath.Base(file), "serve-") {
		mode = ModeServe
	}
	return Options{Mode: mode, LookupEnv: lookupIn(testEnv), ReadFile: testdataOnly(t)}
}

func render(cfg *Config, warns Warnings, err error) string {
	var b strings.Builder
	for _, e := range yamlx.List(err) {
		b.WriteString("error: " + e.Error() + "\n")
	}
	for _, w := range warns {
		b.WriteString("warning: " + w.Error() + "\n")
	}
	if cfg != nil {
		b.WriteString("\n" + cfg.String())
	}
	return b.String()
}

func checkGolden(t *testing.T, golden, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run go test -update after checking):\n--- got\n%s\n--- want\n%s", golden, got, want)
	}
}

// canaries are values that must never appear in any output.
var canaryRe = regexp.MustCompile(`canary`)

func TestGood(t *testing.T) {
	files, _ := filepath.Glob("testdata/good/*.yaml")
	if len(files) == 0 {
		t.Fatal("no good configs")
	}
	dir, _ := filepath.Abs("testdata/good")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, warns, err := Load(f, optionsFor(t, f))
			if err != nil {
				t.Fatalf("want no errors, got:\n%v", err)
			}
			got := render(cfg, warns, nil)
			if canaryRe.MatchString(got) {
				t.Errorf("output shows a secret:\n%s", got)
			}
			got = strings.ReplaceAll(got, dir, "$DIR")
			got = strings.ReplaceAll(got, filepath.Dir(dir), "$TESTDATA")
			checkGolden(t, strings.TrimSuffix(f, ".yaml")+".golden", got)
		})
	}
}

func TestBad(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	if len(files) == 0 {
		t.Fatal("no bad configs")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, warns, err := Load(f, optionsFor(t, f))
			if err == nil {
				t.Fatalf("want errors, got none (warnings: %v)", warns)
			}
			if cfg != nil {
				t.Error("a config was returned with errors")
			}
			var es yamlx.Errors
			if !errors.As(err, &es) {
				t.Fatalf("error is %T, want yamlx.Errors", err)
			}
			for _, e := range es {
				if e.File != f {
					t.Errorf("problem %q names file %q, want %q", e.Error(), e.File, f)
				}
			}
			got := render(nil, warns, err)
			if canaryRe.MatchString(got) {
				t.Errorf("output shows a secret:\n%s", got)
			}
			checkGolden(t, strings.TrimSuffix(f, ".yaml")+".err", got)
		})
	}
}

// The SPEC §3 example loads with zero errors on a bare machine when
// validating; serving needs its variables.
func TestSpecExample(t *testing.T) {
	const f = "testdata/good/spec-example.yaml"
	none := func(string) (string, bool) { return "", false }
	cfg, warns, err := Load(f, Options{LookupEnv: none})
	if err != nil {
		t.Fatalf("validate: %v", err)
	}
	if len(warns) == 0 {
		t.Error("validate: want warnings about the unset variables")
	}
	if got := len(cfg.Environments); got != 3 {
		t.Errorf("environments: %d, want 3", got)
	}
	prod := cfg.Environment("prod")
	if prod == nil || !prod.Policy.Jira.Required || prod.Policy.Jira.Statuses[0] != "Approved" {
		t.Errorf("prod jira policy not merged: %+v", prod)
	}
	if len(prod.Policy.Jira.Projects) != 2 {
		t.Errorf("prod should inherit jira.projects: %+v", prod.Policy.Jira)
	}
	if cfg.Environment("qa").Policy.Jira.Required {
		t.Error("qa must not require jira")
	}
	wantDir, _ := filepath.Abs("testdata/good")
	if cfg.State != filepath.Join(wantDir, "gitmon-state") || cfg.PluginDir != filepath.Join(wantDir, "plugins") {
		t.Errorf("paths not resolved: state %s, plugin_dir %s", cfg.State, cfg.PluginDir)
	}
	if got := cfg.Pipelines["deploy"].Command[0]; got != filepath.Join(wantDir, "scripts/deploy.sh") {
		t.Errorf("exec command not resolved: %s", got)
	}

	_, _, err = Load(f, Options{Mode: ModeServe, LookupEnv: none})
	if err == nil {
		t.Fatal("serve: want errors for the unset variables")
	}
	if n := strings.Count(err.Error(), "is not set"); n != 9 {
		t.Errorf("serve: %d unset-variable errors, want 9:\n%v", n, err)
	}
}

// Every problem of a file is reported at once, each as file:line:col.
func TestAllErrorsAtOnce(t *testing.T) {
	const f = "testdata/bad/pipelines.yaml"
	_, _, err := Load(f, optionsFor(t, f))
	es := yamlx.List(err)
	if len(es) < 10 {
		t.Fatalf("want at least 10 problems, got %d:\n%v", len(es), err)
	}
	line := regexp.MustCompile(`^testdata/bad/pipelines\.yaml:\d+:\d+: \S`)
	for _, l := range strings.Split(err.Error(), "\n") {
		if !line.MatchString(l) {
			t.Errorf("%q is not file:line:col: message", l)
		}
	}
	for i := 1; i < len(es); i++ {
		if es[i-1].Line > es[i].Line {
			t.Errorf("problems are not in file order: %v before %v", es[i-1], es[i])
		}
	}
}

func TestLoadErrors(t *testing.T) {
	_, _, err := Load("testdata/nope.yaml", Options{})
	if err == nil || !strings.Contains(err.Error(), "testdata/nope.yaml: cannot read the config file: no such file") || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	big := func(string) ([]byte, error) { return make([]byte, MaxSize+1), nil }
	_, _, err = Load("big.yaml", Options{ReadFile: big})
	if !errors.Is(err, yamlx.ErrTooLarge) {
		t.Errorf("large file: %v", err)
	}
	_, _, err = Parse("big.yaml", []byte(strings.Repeat("#", MaxSize+1)), Options{})
	if !errors.Is(err, yamlx.ErrTooLarge) {
		t.Errorf("large data: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	cfg, _, err := Parse("/etc/gitmon/gitmon.yaml", []byte(`
repositories: [{name: r, url: "repo"}]
environments: [{name: qa, release: [p]}]
pipelines: {p: {runner: exec, command: [./bin/deploy, "--flag", "./not-resolved"]}}
`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"listen", cfg.Listen, "127.0.0.1:8080"},
		{"state", cfg.State, "/etc/gitmon/gitmon-state"},
		{"plugin_dir", cfg.PluginDir, "/etc/gitmon/plugins"},
		{"poll_interval", cfg.PollInterval.String(), "30s"},
		{"concurrency", strconv.Itoa(cfg.Tuning.Concurrency), "8"},
		{"shutdown_grace", cfg.Tuning.ShutdownGrace.String(), "30s"},
		{"output_cap", cfg.Tuning.OutputCap.String(), "64KiB"},
		{"git_timeout", cfg.Tuning.GitTimeout.String(), "1m0s"},
		{"backoff_max", cfg.Tuning.BackoffMax.String(), "5m0s"},
		{"object_cache", cfg.Tuning.ObjectCache.String(), "64MiB"},
		{"url", cfg.Repositories[0].URL, "/etc/gitmon/repo"},
		{"descriptors", cfg.Repositories[0].Descriptors, "services/*.yaml"},
		{"branch", cfg.Environments[0].Branch, "qa"},
		{"initial", cfg.Environments[0].Initial, "baseline"},
		{"timeout", cfg.Pipelines["p"].Timeout.String(), "30m0s"},
		{"command", strings.Join(cfg.Pipelines["p"].Command, " "), "/etc/gitmon/bin/deploy --flag ./not-resolved"},
		{"identity", cfg.Policy.Identity, "committer"},
		{"env identity", cfg.Environments[0].Policy.Identity, "committer"},
		{"env jira timeout", cfg.Environments[0].Policy.Jira.UnavailableTimeout.String(), "10m0s"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if cfg.Policy.Committers != nil {
		t.Error("committers: absent must stay nil (no limit)")
	}
}
