package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigPrintsTheEffectiveConfig: `gitmon config` shows every
// default, the log key included, and never a secret's value.
func TestConfigPrintsTheEffectiveConfig(t *testing.T) {
	const canary = "canary-7c1e-git-token"
	t.Setenv("GITMON_TEST_TOKEN", canary)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gitmon.yaml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`log: {level: debug}
repositories:
  - name: deployments
    url: https://git.example.com/deployments.git
    auth: {username_env: GITMON_TEST_TOKEN, password_env: GITMON_TEST_TOKEN}
environments:
  - {name: qa, release: []}
policy: {committers: ["*"]}
`)
	var out, errb bytes.Buffer
	if code := Run(t.Context(), Streams{Out: &out, Err: &errb}, []string{"config", "--config", cfg}); code != ExitOK {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
	for _, want := range []string{"log: level debug, format text\n", "listen: 127.0.0.1:8080\n", "poll_interval: 30s\n", "<secret> (env GITMON_TEST_TOKEN)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("gitmon config lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String()+errb.String(), canary) {
		t.Errorf("gitmon config shows a secret:\n%s", out.String())
	}

	write("log: {level: loud}\nrepositories: []\n")
	out.Reset()
	errb.Reset()
	if code := Run(t.Context(), Streams{Out: &out, Err: &errb}, []string{"config", "--config", cfg}); code != ExitInvalid {
		t.Errorf("an invalid config: exit %d, want %d", code, ExitInvalid)
	}
	if !strings.Contains(errb.String(), cfg+`:1:14: log.level: unknown level "loud"`) || out.Len() != 0 {
		t.Errorf("an invalid config:\nstdout %s\nstderr %s", out.String(), errb.String())
	}
}
