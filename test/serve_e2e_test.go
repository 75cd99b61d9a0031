package test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitmon-dev/gitmon/test/gitserver"
)

// TestServeRefusesALockedState: a second `gitmon serve` on the state
// folder a running one holds exits 2 and says why (SPEC §6).
func TestServeRefusesALockedState(t *testing.T) {
	repo := NewGitRepo(t)
	repo.WriteFile("services/payments.yaml", Descriptor("payments", "1.0.0"))
	repo.Commit("qa", "baseline", Alice, Alice)
	d := NewDaemon(t, ConfigOptions{URL: gitserver.Daemon(t, repo), Insecure: true})
	d.Start()

	// Same state folder, another listen address.
	cfg, err := os.ReadFile(d.Config)
	if err != nil {
		t.Fatal(err)
	}
	second := filepath.Join(d.Dir, "second.yaml")
	os.WriteFile(second, []byte(strings.Replace(string(cfg), "listen: "+d.Addr, "listen: "+freeAddr(t), 1)), 0o644)
	r := d.Gitmon("serve", "--config", second)
	if r.code != 2 || !strings.Contains(r.stderr, "locked") {
		t.Fatalf("second serve on a locked state: %v", r)
	}
	// The first one is unharmed.
	d.WaitReady()
}

// TestServeRefusesAnInvalidConfig: serve lists every problem and exits 2
// before it does anything — no state folder is created.
func TestServeRefusesAnInvalidConfig(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "gitmon.yaml"), `state: ./state
repositories:
  - {name: deployments, url: "http://git.example.com/d.git", auth: {password_env: NOT_SET_ANYWHERE}}
environments:
  - {name: qa, release: [deploy]}
pipelines:
  deploy: {runner: exec, command: [./deploy.sh]}
policy:
  signatures: {required: true}
`)
	r := gitmon(t, dir, "serve", "--config", "gitmon.yaml")
	if r.code != 2 {
		t.Fatalf("serve with an invalid config: %v", r)
	}
	for _, want := range []string{"gitmon.yaml:3:", "insecure", "NOT_SET_ANYWHERE", "signatures"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "state")); !os.IsNotExist(err) {
		t.Errorf("serve created its state folder despite the invalid config")
	}
}

// TestServeRefusesABusyListenAddress: a listen address already in use is
// a start-up failure: exit 2, not a crash loop (SPEC §6 gives serve 0 and 2).
func TestServeRefusesABusyListenAddress(t *testing.T) {
	repo := NewGitRepo(t)
	repo.WriteFile("services/payments.yaml", Descriptor("payments", "1.0.0"))
	repo.Commit("qa", "baseline", Alice, Alice)
	d := NewDaemon(t, ConfigOptions{URL: gitserver.Daemon(t, repo), Insecure: true})
	ln, err := net.Listen("tcp", d.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if r := d.Gitmon("serve", "--config", d.Config); r.code != 2 || !strings.Contains(r.stderr, "address already in use") {
		t.Fatalf("serve on a busy address: %v", r)
	}
}
