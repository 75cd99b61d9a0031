// Package test holds gitmon's end-to-end tests: they build the real
// binary and run it as a user would, against real servers on loopback.
package test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// gitmonBin is the binary under test, built once by TestMain.
var gitmonBin string

// repoRoot is the module root, for testdata shared with the packages.
var repoRoot string

func TestMain(m *testing.M) {
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Dir(filepath.Dir(file))
	dir, err := os.MkdirTemp("", "gitmon-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gitmonBin = filepath.Join(dir, "gitmon")
	build := exec.Command("go", "build", "-o", gitmonBin, "./cmd/gitmon")
	build.Dir = repoRoot
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building gitmon: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireE2E skips a test whose prerequisite is missing, except under CI
// (GITMON_REQUIRE_E2E=1), where a missing prerequisite fails the test: an
// end-to-end test that did not run proves nothing.
func requireE2E(t testing.TB, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("GITMON_REQUIRE_E2E") != "" {
		t.Fatalf("prerequisite missing: %s (GITMON_REQUIRE_E2E is set, so this fails instead of skipping)", what)
	}
	t.Skipf("prerequisite missing: %s", what)
}

type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// gitmon runs the binary in dir with args, under a deadline.
func gitmon(t *testing.T, dir string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, gitmonBin, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running gitmon %v: %v", args, err)
	}
	return r
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestVersion(t *testing.T) {
	r := gitmon(t, t.TempDir(), "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "gitmon ") {
		t.Fatalf("gitmon version: %v", r)
	}
}

func TestUnknownCommand(t *testing.T) {
	if r := gitmon(t, t.TempDir(), "deploy-everything"); r.code != 2 || !strings.Contains(r.stderr, "unknown command") {
		t.Fatalf("unknown command: %v", r)
	}
}

// errorLine is validate's output format: file:line:col: message, or
// file: message where no line applies.
var errorLine = regexp.MustCompile(`^(\S+?):(\d+):(\d+): (.+)$|^(\S+?): (.+)$`)

func TestValidateGoodCheckout(t *testing.T) {
	dir := t.TempDir()
	good, err := filepath.Glob(filepath.Join(repoRoot, "descriptors/testdata/good/*.yaml"))
	if err != nil || len(good) == 0 {
		t.Fatalf("no good descriptors in testdata: %v", err)
	}
	for _, f := range good {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "services", filepath.Base(f)), string(data))
	}
	// Files outside the descriptors glob are not descriptors.
	writeFile(t, filepath.Join(dir, "README.md"), "# not yaml: [")
	writeFile(t, filepath.Join(dir, "services", "notes.txt"), "x: [")

	r := gitmon(t, dir, "validate", ".")
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("validate of a good checkout: %v", r)
	}
	if !strings.Contains(r.stderr, fmt.Sprintf("%d descriptors: 0 problems", len(good))) {
		t.Errorf("summary does not count %d descriptors: %s", len(good), r.stderr)
	}
}

func TestValidateBadDescriptorNamesFileLineAndKey(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "services/payments.yaml"), `service: payments
version: 1.4.2
healthcheck:
  retries: 0
  intervall: 5s
ports: [8080, 70000]
`)
	writeFile(t, filepath.Join(dir, "services/search.yaml"), "service: search\nversion: 2.0.0\n")
	r := gitmon(t, dir, "validate", ".")
	if r.code != 1 {
		t.Fatalf("want exit 1: %v", r)
	}
	for _, want := range []string{
		"services/payments.yaml:4:12: healthcheck.retries: ",
		"services/payments.yaml:5:3: healthcheck.intervall: unknown key",
		"services/payments.yaml:6:15: ports[1]: ",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "search.yaml") {
		t.Errorf("the good descriptor was reported:\n%s", r.stdout)
	}
}

func TestValidateUsageErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "notes.txt"), "hello")
	for name, args := range map[string][]string{
		"missing path":         {"validate", "no/such/place.yaml"},
		"not a yaml file":      {"validate", "notes.txt"},
		"nothing to check":     {"validate"},
		"unknown flag":         {"validate", "--frobnicate", "."},
		"missing config given": {"validate", "--config", "nope.yaml"},
	} {
		t.Run(name, func(t *testing.T) {
			if r := gitmon(t, dir, args...); r.code != 2 || r.stderr == "" {
				t.Fatalf("want exit 2 with a message: %v", r)
			}
		})
	}
}

const goodConfig = `repositories:
  - name: deployments
    url: ./deployments.git
    descriptors: "deploy/*.yml"
environments:
  - name: qa
    release: [deploy]
pipelines:
  deploy: {runner: exec, command: ["./deploy.sh"]}
policy:
  committers: ["*@example.com"]
`

// writeDeployScript writes goodConfig's ./deploy.sh: validate checks that
// exec commands exist and are executable (SPEC §6).
func writeDeployScript(t *testing.T, dir string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "deploy.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestValidateConfigAndItsGlob(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "gitmon.yaml"), goodConfig)
	writeDeployScript(t, dir)
	writeFile(t, filepath.Join(dir, "checkout/deploy/api.yml"), "service: api\nversion: 1.0.0\n")
	writeFile(t, filepath.Join(dir, "checkout/services/ignored.yaml"), "not: [valid")

	// ./gitmon.yaml is the default config, and its glob applies to folders.
	r := gitmon(t, dir, "validate", "checkout")
	if r.code != 0 {
		t.Fatalf("valid config and checkout: %v", r)
	}
	if !strings.Contains(r.stderr, "1 config, 1 descriptors") {
		t.Errorf("summary: %s", r.stderr)
	}
}

func TestValidateConfigProblemsAllAtOnce(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bad.yaml"), `poll_interval: soon
repositories:
  - name: deployments
    url: http://git.example.com/deployments.git
environments:
  - name: qa
    release: [deploy, nonexistent]
pipelines:
  deploy: {runner: exec, command: ["./deploy.sh"]}
policy:
  identity: root
  jira: {required: true}
`)
	r := gitmon(t, dir, "validate", "--config", "bad.yaml")
	if r.code != 1 {
		t.Fatalf("want exit 1: %v", r)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if strings.Contains(l, "warning:") {
			continue
		}
		if !errorLine.MatchString(l) || !strings.HasPrefix(l, "bad.yaml:") {
			t.Errorf("not file:line:col: message: %q", l)
		}
		lines = append(lines, l)
	}
	for _, want := range []string{"bad.yaml:1:", "bad.yaml:4:", "bad.yaml:7:", "bad.yaml:11:", "jira"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("no problem reported at %q:\n%s", want, r.stdout)
		}
	}
	if len(lines) < 5 {
		t.Errorf("want every problem at once, got %d:\n%s", len(lines), r.stdout)
	}
}

func TestValidateWarnsWithoutCommitterAllowlist(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "gitmon.yaml"), strings.Replace(goodConfig, "policy:\n  committers: [\"*@example.com\"]\n", "", 1))
	writeDeployScript(t, dir)
	r := gitmon(t, dir, "validate")
	if r.code != 0 {
		t.Fatalf("a config without an allowlist is valid: %v", r)
	}
	if !strings.Contains(r.stdout, "warning:") || !strings.Contains(r.stdout, "committers") {
		t.Errorf("no warning about the missing committers allowlist:\n%v", r)
	}
}

func TestDemo(t *testing.T) {
	keep := filepath.Join(t.TempDir(), "demo")
	r := gitmon(t, t.TempDir(), "demo", "--keep", keep)
	if r.code != 0 {
		t.Fatalf("demo: %v", r)
	}
	for _, want := range []string{
		"qa/payments 1.4.1 → 1.4.2: SUCCEEDED",
		"qa/search 2.0.0 → 2.1.0: SKIPPED", "reason skip:",
		"qa/payments 1.4.2: REJECTED", "reason committers:",
		"it last changed ports) [field ports",
		"staging/search 2.0.0 → 2.1.0: REJECTED", "reason promotion: search 2.1.0",
		"staging/payments 1.4.3 → 1.5.0: PENDING", "reason promotion: waiting for qa",
		"staging/payments 1.4.3 → 1.5.0: SUCCEEDED", "stage regression  succeeded",
		"prod/payments 1.4.1 → 1.5.0: SUCCEEDED", "stage smoke       succeeded",
		"reason window: prod is frozen by carol@platform.example.com",
		"prod/search 2.0.0 → 2.2.0: SUCCEEDED",
		"qa/payments 1.5.0 → 1.6.0: FAILED", "stage healthcheck failed",
		"qa/payments 1.6.0: SUCCEEDED (a retry of commit",
		"$ gitmon status",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "prod/search 2.0.0 → 2.1.0") {
		t.Errorf("the version qa skipped reached prod:\n%s", r.stdout)
	}
	// The kept folder works for other processes of the binary: its
	// repository is read through git over file://.
	cfg := filepath.Join(keep, "gitmon.yaml")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"status", "--config", cfg}, "SERVICE"},
		{[]string{"history", "--config", cfg}, "promotion: search 2.1.0"},
		{[]string{"plan", "--config", cfg, "--env", "prod"}, "prod: no change"},
	} {
		if r := gitmon(t, t.TempDir(), c.args...); r.code != 0 || !strings.Contains(r.stdout, c.want) {
			t.Errorf("gitmon %s on the kept demo: %v, want %q", strings.Join(c.args, " "), r, c.want)
		}
	}
}
