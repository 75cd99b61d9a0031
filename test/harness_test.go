package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/test/gitserver"
)

// Identities used by the scenarios.
const (
	Alice   = "Alice <alice@example.com>"
	Bob     = "Bob <bob@platform.example.com>"
	Mallory = "Mallory <mallory@evil.example.net>"
)

// Record is SPEC §7's record, as `gitmon history --json` prints it.
type Record struct {
	ID              string   `json:"id"`
	Repository      string   `json:"repository"`
	Environment     string   `json:"environment"`
	Service         string   `json:"service"`
	Action          string   `json:"action"`
	Version         string   `json:"version"`
	PreviousVersion string   `json:"previous_version"`
	Commit          string   `json:"commit"`
	Author          string   `json:"author"`
	Committer       string   `json:"committer"`
	Verified        bool     `json:"verified"`
	Tickets         []string `json:"tickets"`
	Status          string   `json:"status"`
	Reasons         []struct {
		Rule, Message, Commit, Field string
	} `json:"reasons"`
	Commits []struct {
		Commit, Author, Committer string
		Fields                    []string
	} `json:"commits"`
	Stages []struct {
		Name, Runner, Status string
		StartedAt            *time.Time `json:"started_at"`
		FinishedAt           *time.Time `json:"finished_at"`
		Message, Output, URL string
	} `json:"stages"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

// Event is one line of `gitmon history --events --json`.
type Event struct {
	Kind, Repository, Environment, Branch, Message, Commit, Actor string
	Commits                                                       []string
}

// Rules lists the rules of a record's reasons.
func (r Record) Rules() []string {
	var out []string
	for _, rs := range r.Reasons {
		out = append(out, rs.Rule)
	}
	return out
}

// Daemon is a `gitmon serve` process under test.
type Daemon struct {
	t       testing.TB
	Dir     string // holds gitmon.yaml and the state folder
	Config  string // path of gitmon.yaml
	Addr    string // HTTP listen address
	Env     []string
	cmd     *exec.Cmd
	done    chan struct{}
	mu      sync.Mutex
	logs    bytes.Buffer
	exitErr error
	// Wrap runs serve under another program (strace injecting slow disk
	// syncs), in a process group of its own that Kill ends whole.
	Wrap []string
}

// ConfigOptions fill the config template of NewDaemon.
type ConfigOptions struct {
	URL      string // the repository URL
	Auth     string // YAML of the repository's auth block, if any
	Insecure bool
	// Envs is the YAML of the environments list; default qa with
	// release [deploy].
	Envs string
	// Pipelines is the YAML of the pipelines map; default deploy runs
	// scripts/deploy.sh from the daemon's folder.
	Pipelines string
	// Policy is the YAML of the policy block; default allows
	// *@example.com and *@platform.example.com.
	Policy string
	Extra  string // more top-level YAML
	// Repo is more YAML of the repository's map (such as its webhook).
	Repo string
	// PollInterval is serve's poll_interval (default 200ms).
	PollInterval time.Duration
}

// NewDaemon writes a config into a fresh folder. Start runs it.
func NewDaemon(t testing.TB, o ConfigOptions) *Daemon {
	t.Helper()
	d := &Daemon{t: t, Dir: t.TempDir(), Env: []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}}
	d.Addr = freeAddr(t)
	if o.Envs == "" {
		o.Envs = "  - {name: qa, branch: qa, release: [deploy]}\n"
	}
	if o.Pipelines == "" {
		o.Pipelines = "  deploy: {runner: exec, command: [./deploy.sh], timeout: 30s}\n"
		d.Script("deploy.sh", DeployScript)
	}
	if o.Policy == "" {
		o.Policy = "  committers: [\"*@example.com\", \"*@platform.example.com\"]\n"
	}
	repo := fmt.Sprintf("  - name: deployments\n    url: %q\n    insecure: %v\n", o.URL, o.Insecure)
	if o.Auth != "" {
		repo += "    auth:\n" + indent(o.Auth, "      ")
	}
	if o.Repo != "" {
		repo += indent(o.Repo, "    ")
	}
	if o.PollInterval == 0 {
		o.PollInterval = 200 * time.Millisecond
	}
	cfg := fmt.Sprintf("listen: %s\nstate: ./state\npoll_interval: %s\ntuning: {shutdown_grace: 10s, backoff_max: 1s, git_timeout: 5s}\n%srepositories:\n%senvironments:\n%spipelines:\n%spolicy:\n%s",
		d.Addr, o.PollInterval, o.Extra, repo, o.Envs, o.Pipelines, o.Policy)
	d.Config = filepath.Join(d.Dir, "gitmon.yaml")
	if err := os.WriteFile(d.Config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

func indent(s, pre string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = pre + l
	}
	return strings.Join(lines, "\n") + "\n"
}

// DeployScript appends "service version action" to deployed.log in the
// daemon's folder and fails for versions ending in "-bad".
const DeployScript = `#!/bin/sh
echo "$GITMON_SERVICE $GITMON_VERSION $GITMON_ACTION $GITMON_COMMIT" >> deployed.log
echo "deploying $GITMON_SERVICE $GITMON_VERSION"
case "$GITMON_VERSION" in *-bad) echo "boom" >&2; exit 3;; esac
`

// Script writes an executable script into the daemon's folder.
func (d *Daemon) Script(name, body string) string {
	p := filepath.Join(d.Dir, name)
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		d.t.Fatal(err)
	}
	return p
}

// Deployed returns the lines of deployed.log.
func (d *Daemon) Deployed() []string {
	b, _ := os.ReadFile(filepath.Join(d.Dir, "deployed.log"))
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Start runs `gitmon serve` and waits until /readyz answers 200.
func (d *Daemon) Start() {
	d.t.Helper()
	argv := append(append(slices.Clone(d.Wrap), gitmonBin), "serve", "--config", d.Config)
	d.cmd = exec.Command(argv[0], argv[1:]...)
	if len(d.Wrap) > 0 {
		d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	d.cmd.Dir = d.Dir
	d.cmd.Env = d.Env
	d.cmd.Stdout = &lockedWriter{d: d}
	d.cmd.Stderr = &lockedWriter{d: d}
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.done = make(chan struct{})
	go func() {
		err := d.cmd.Wait()
		d.mu.Lock()
		d.exitErr = err
		d.mu.Unlock()
		close(d.done)
	}()
	d.t.Cleanup(func() { d.Kill() })
	d.WaitReady()
}

type lockedWriter struct{ d *Daemon }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	return w.d.logs.Write(p)
}

// Logs returns what the daemon logged.
func (d *Daemon) Logs() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.logs.String()
}

// WaitReady waits for /readyz to answer 200.
func (d *Daemon) WaitReady() {
	d.t.Helper()
	d.Eventually(30*time.Second, "gitmon ready", func() bool {
		select {
		case <-d.done:
			d.t.Fatalf("gitmon serve exited before it was ready: %v\n%s", d.exitErr, d.Logs())
		default:
		}
		resp, err := http.Get("http://" + d.Addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// Stop sends SIGTERM and waits for a clean exit (code 0).
func (d *Daemon) Stop() {
	d.t.Helper()
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
		d.t.Fatalf("gitmon did not stop within 30s of SIGTERM\n%s", d.Logs())
	}
	d.mu.Lock()
	err := d.exitErr
	d.mu.Unlock()
	if err != nil {
		d.t.Fatalf("gitmon exited with %v after SIGTERM\n%s", err, d.Logs())
	}
	d.cmd = nil
}

// Kill sends SIGKILL to the process this test started, if it runs (with
// Wrap, to its process group: the wrapper and serve).
func (d *Daemon) Kill() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	if len(d.Wrap) > 0 {
		syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	}
	d.cmd.Process.Kill()
	<-d.done
	d.cmd = nil
}

// Eventually waits until cond holds, or fails the test after timeout,
// printing the daemon's logs. It polls; it never sleeps as a substitute
// for a condition.
func (d *Daemon) Eventually(timeout time.Duration, what string, cond func() bool) {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			d.t.Fatalf("timed out after %s waiting for %s\nlogs:\n%s", timeout, what, d.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Gitmon runs another gitmon command with this daemon's config.
func (d *Daemon) Gitmon(args ...string) result {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, gitmonBin, args...)
	cmd.Dir = d.Dir
	cmd.Env = d.Env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		d.t.Fatal(err)
	}
	return r
}

// Records returns `gitmon history --json`, newest first.
func (d *Daemon) Records(filter ...string) []Record {
	d.t.Helper()
	r := d.Gitmon(append([]string{"history", "--config", d.Config, "--json"}, filter...)...)
	if r.code != 0 {
		d.t.Fatalf("gitmon history: %v", r)
	}
	var recs []Record
	if err := json.Unmarshal([]byte(r.stdout), &recs); err != nil {
		d.t.Fatalf("history --json is not a record array: %v\n%s", err, r.stdout)
	}
	return recs
}

// Events returns `gitmon history --events --json`, newest first.
func (d *Daemon) Events() []Event {
	d.t.Helper()
	r := d.Gitmon("history", "--config", d.Config, "--events", "--json")
	if r.code != 0 {
		d.t.Fatalf("gitmon history --events: %v", r)
	}
	var evs []Event
	if err := json.Unmarshal([]byte(r.stdout), &evs); err != nil {
		d.t.Fatalf("history --events --json: %v\n%s", err, r.stdout)
	}
	return evs
}

// RecordFor waits until the record of (env, service, commit) has ended and
// returns it.
func (d *Daemon) RecordFor(env, service, commit string) Record {
	d.t.Helper()
	var found Record
	d.Eventually(60*time.Second, fmt.Sprintf("a finished record of %s/%s at %.10s", env, service, commit), func() bool {
		for _, r := range d.Records() {
			if r.Environment == env && r.Service == service && r.Commit == commit && r.FinishedAt != nil {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

// Descriptor renders a small descriptor.
func Descriptor(service, version string, extra ...string) string {
	s := fmt.Sprintf("service: %s\nversion: %s\n", service, version)
	for _, e := range extra {
		s += e + "\n"
	}
	return s
}

// NewGitRepo is gitserver.NewRepo, skipping (or, under CI, failing) when
// git is missing.
func NewGitRepo(t testing.TB) *gitserver.Repo {
	t.Helper()
	missing := gitserver.Available()
	requireE2E(t, len(missing) == 0, "git servers: "+strings.Join(missing, ", "))
	return gitserver.NewRepo(t)
}
