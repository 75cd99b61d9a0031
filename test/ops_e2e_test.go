package test

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/test/gitserver"
)

// serveProc is a `gitmon serve` started with arguments of the test's
// choosing (Daemon.Start always runs the test binary with --config only).
type serveProc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	code int
}

func (p *serveProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *serveProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// startServe runs bin serve args... in d's folder.
func startServe(t *testing.T, d *Daemon, bin string, args ...string) *serveProc {
	t.Helper()
	p := &serveProc{done: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"serve"}, args...)...)
	p.cmd.Dir, p.cmd.Env, p.cmd.Stdout, p.cmd.Stderr = d.Dir, d.Env, p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := p.cmd.Wait()
		p.code = 0
		if ee, ok := err.(*exec.ExitError); ok {
			p.code = ee.ExitCode()
		} else if err != nil {
			p.code = -1
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// waitFor waits until cond holds for the output, or fails the test.
func (p *serveProc) waitFor(t *testing.T, what string, cond func(out string) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond(p.output()) {
		select {
		case <-p.done:
			t.Fatalf("serve exited (%d) before %s:\n%s", p.code, what, p.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s:\n%s", what, p.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and returns the exit code.
func (p *serveProc) stop(t *testing.T) int {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop within 30s of SIGTERM:\n%s", p.output())
	}
	return p.code
}

// folder lists a folder's entries with their sizes and modification times.
func folder(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = fmt.Sprintf("%v %d bytes, modified %s", fi.Mode(), fi.Size(), fi.ModTime())
	}
	return out
}

// TestServeRefusesADamagedState: a state folder whose gitmon.db is empty
// (a disk that filled up, a botched restore) or not a database stops
// serve with exit 2 and a message naming the file; the file stays as it
// was and nothing is created beside it, so its history is not replaced by
// a fresh start. history and plan refuse it too (SPEC §5 Crashes).
func TestServeRefusesADamagedState(t *testing.T) {
	repo := NewGitRepo(t)
	repo.WriteFile("services/payments.yaml", Descriptor("payments", "1.0.0"))
	repo.Commit("qa", "baseline", Alice, Alice)
	url := gitserver.Daemon(t, repo)
	for _, tc := range []struct {
		name, content, want string
	}{
		{"empty", "", "empty (0 bytes)"},
		{"not a database", "this was gitmon.db before someone overwrote it\n", "not a SQLite database"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDaemon(t, ConfigOptions{URL: url, Insecure: true})
			state := filepath.Join(d.Dir, "state")
			db := filepath.Join(state, "gitmon.db")
			if err := os.MkdirAll(state, 0o700); err != nil {
				t.Fatal(err)
			}
			writeFile(t, db, tc.content)
			old := time.Now().Add(-time.Hour).Truncate(time.Second)
			if err := os.Chtimes(db, old, old); err != nil {
				t.Fatal(err)
			}
			before := folder(t, state)

			r := d.Gitmon("serve", "--config", d.Config)
			if r.code != 2 || !strings.Contains(r.stderr, db) || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "damaged") {
				t.Fatalf("serve on a state with a damaged gitmon.db: %v", r)
			}
			for _, args := range [][]string{
				{"history", "--config", d.Config},
				{"history", "--config", d.Config, "--events", "--json"},
				{"plan", "--config", d.Config, "--env", "qa"},
			} {
				r := d.Gitmon(args...)
				if r.code != 2 || !strings.Contains(r.stderr, db) || !strings.Contains(r.stderr, tc.want) {
					t.Errorf("gitmon %s on a damaged state: %v", strings.Join(args, " "), r)
				}
			}
			if after := folder(t, state); len(after) != len(before) || after["gitmon.db"] != before["gitmon.db"] {
				t.Errorf("the state folder changed:\nbefore %v\nafter  %v", before, after)
			}
			if b, err := os.ReadFile(db); err != nil || string(b) != tc.content {
				t.Errorf("gitmon.db was rewritten: %q, %v", b, err)
			}
			if len(d.Deployed()) != 0 {
				t.Errorf("something ran: %v", d.Deployed())
			}
		})
	}
}

// TestServeLogsAsTheConfigSays: log.format json makes every line a JSON
// object, durations are strings such as "10s", and the start line names
// the version and commit.
func TestServeLogsAsTheConfigSays(t *testing.T) {
	repo := NewGitRepo(t)
	repo.WriteFile("services/payments.yaml", Descriptor("payments", "1.0.0"))
	repo.Commit("qa", "baseline", Alice, Alice)
	d := NewDaemon(t, ConfigOptions{URL: gitserver.Daemon(t, repo), Insecure: true, Extra: "log: {format: json}\n"})
	d.Start()
	d.Stop()
	var msgs []string
	for _, l := range strings.Split(strings.TrimSpace(d.Logs()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %q (%v)\n%s", l, err, d.Logs())
		}
		msg, _ := m["msg"].(string)
		msgs = append(msgs, msg)
		switch msg {
		case "gitmon serving":
			if m["version"] == nil || m["commit"] == nil {
				t.Errorf("the start line lacks the version or commit: %s", l)
			}
		case "shutting down":
			if m["grace"] != "10s" {
				t.Errorf("shutdown_grace logged as %#v, want \"10s\": %s", m["grace"], l)
			}
		}
	}
	for _, want := range []string{"gitmon serving", "shutting down", "gitmon stopped cleanly"} {
		if !strings.Contains(strings.Join(msgs, "\n"), want) {
			t.Errorf("no %q line in %q", want, msgs)
		}
	}
}

// TestServeLogFlagsOverrideTheConfig: --log-level and --log-format win
// over the log key: at warn, in text, a failing poll is logged and the
// info lines are not.
func TestServeLogFlagsOverrideTheConfig(t *testing.T) {
	// A repository nobody listens for: every poll fails with a warning.
	d := NewDaemon(t, ConfigOptions{URL: "git://" + freeAddr(t) + "/deployments.git", Insecure: true,
		Extra: "log: {level: debug, format: json}\n"})
	p := startServe(t, d, gitmonBin, "--config", d.Config, "--log-level", "warn", "--log-format", "text")
	p.waitFor(t, "a poll failure logged", func(out string) bool { return strings.Contains(out, `msg="poll failed"`) })
	if code := p.stop(t); code != 0 {
		t.Fatalf("serve exited %d after SIGTERM:\n%s", code, p.output())
	}
	for _, l := range strings.Split(strings.TrimSpace(p.output()), "\n") {
		if strings.HasPrefix(l, "{") || !strings.Contains(l, "level=WARN") && !strings.Contains(l, "level=ERROR") {
			t.Errorf("a line that --log-level warn --log-format text should not write: %s", l)
		}
		if strings.Contains(l, "poll failed") && !regexp.MustCompile(`retry_in=[0-9.]+m?s\b`).MatchString(l) {
			t.Errorf("the retry delay is not a duration string: %s", l)
		}
	}
}

// TestMakeBuildStampsTheBinary: `make build` gives a static, stripped
// binary whose `gitmon version` and gitmon_build_info name the commit it
// was built from and when (SPEC §6, §9).
func TestMakeBuildStampsTheBinary(t *testing.T) {
	_, makeErr := exec.LookPath("make")
	requireE2E(t, makeErr == nil, "make")
	git := func(args ...string) (string, error) {
		cmd := exec.Command("git", args...)
		cmd.Dir = repoRoot
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	head, err := git("rev-parse", "HEAD")
	requireE2E(t, err == nil, "a git checkout of gitmon")
	commit := head
	if _, err := git("diff", "--quiet", "HEAD", "--"); err != nil {
		commit += "-dirty"
	}

	bin := filepath.Join(t.TempDir(), "gitmon")
	start := time.Now().UTC().Truncate(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "make", "build", "BIN="+bin)
	build.Dir = repoRoot
	build.Env = append(os.Environ(), "VERSION=v0.0.0-e2e")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	end := time.Now().UTC()

	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`^gitmon (\S+) commit (\S+) built (\S+) \(`).FindStringSubmatch(string(out))
	if m == nil || m[1] != "v0.0.0-e2e" || m[2] != commit {
		t.Fatalf("gitmon version of a make build: %q, want version v0.0.0-e2e and commit %s", out, commit)
	}
	if built, err := time.Parse(time.RFC3339, m[3]); err != nil || built.Before(start) || built.After(end) {
		t.Errorf("build date %q is not an RFC 3339 time between %s and %s (%v)", m[3], start, end, err)
	}

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			t.Errorf("the binary asks for a dynamic loader: not static")
		}
	}
	if f.Section(".symtab") != nil {
		t.Errorf("the binary has a symbol table: not stripped")
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" {
		t.Errorf("build settings: CGO_ENABLED=%q -trimpath=%q", settings["CGO_ENABLED"], settings["-trimpath"])
	}

	// The running daemon says the same on /metrics.
	repo := NewGitRepo(t)
	repo.WriteFile("services/payments.yaml", Descriptor("payments", "1.0.0"))
	repo.Commit("qa", "baseline", Alice, Alice)
	d := NewDaemon(t, ConfigOptions{URL: gitserver.Daemon(t, repo), Insecure: true})
	p := startServe(t, d, bin, "--config", d.Config)
	d.WaitReady()
	resp, err := http.Get("http://" + d.Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := `gitmon_build_info{commit="` + commit + `",version="v0.0.0-e2e"} 1`
	if !strings.Contains(string(body), want+"\n") {
		t.Errorf("/metrics lacks %s:\n%s", want, grepLines(string(body), "gitmon_build_info"))
	}
	if code := p.stop(t); code != 0 {
		t.Errorf("serve exited %d:\n%s", code, p.output())
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
