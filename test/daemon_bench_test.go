package test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/internal/app"
	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/runners"
)

// noop is an in-process runner that succeeds at once and counts its runs.
type noop struct{ runs atomic.Int64 }

func (n *noop) Run(ctx context.Context, req *runners.Request, out io.Writer, h runners.Handle) (runners.Result, error) {
	n.runs.Add(1)
	return runners.Result{OK: true}, nil
}

// fastImport builds a bare repository at dir from a git fast-import stream:
// a qa branch whose first commit holds `services` descriptors, followed by
// `commits` commits, commit i bumping service i%services to 2.0.i.
func fastImport(tb testing.TB, dir string, services, commits int) {
	tb.Helper()
	git(tb, "", "init", "-q", "--bare", dir)
	var b bytes.Buffer
	mark := 0
	ts := int64(1_700_000_000)
	commit := func(msg string, files map[string]string) {
		mark++
		ts++
		fmt.Fprintf(&b, "commit refs/heads/qa\nmark :%d\nauthor Alice <alice@example.com> %d +0000\ncommitter Alice <alice@example.com> %d +0000\ndata %d\n%s\n", mark, ts, ts, len(msg), msg)
		if mark > 1 {
			fmt.Fprintf(&b, "from :%d\n", mark-1)
		}
		for path, content := range files {
			fmt.Fprintf(&b, "M 100644 inline %s\ndata %d\n%s\n", path, len(content), content)
		}
	}
	first := map[string]string{}
	for i := 0; i < services; i++ {
		first[fmt.Sprintf("services/svc-%04d.yaml", i)] = fmt.Sprintf("service: svc-%04d\nversion: 1.0.0\n", i)
	}
	commit("baseline", first)
	for i := 0; i < commits; i++ {
		s := i % services
		commit(fmt.Sprintf("bump svc-%04d", s), map[string]string{
			fmt.Sprintf("services/svc-%04d.yaml", s): fmt.Sprintf("service: svc-%04d\nversion: 2.0.%d\n", s, i),
		})
	}
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir = dir
	cmd.Env = gitEnv()
	cmd.Stdin = &b
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("git fast-import: %v\n%s", err, out)
	}
}

func gitEnv() []string {
	return append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
}

func git(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = gitEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// benchDaemon starts an in-process daemon watching the bare repo at url
// with a no-op deploy pipeline.
func benchDaemon(tb testing.TB, url string, poll time.Duration) (*app.App, store.Store, *noop, func()) {
	n := &noop{}
	a, st, stop := benchDaemonWith(tb, url, poll, "", n)
	return a, st, n, stop
}

// benchDaemonWith is benchDaemon with more YAML in the repository's map
// (repo, such as its webhook) and the deploy stage run by deploy.
func benchDaemonWith(tb testing.TB, url string, poll time.Duration, repo string, deploy runners.Runner) (*app.App, store.Store, func()) {
	tb.Helper()
	dir := tb.TempDir()
	if repo != "" {
		repo = ", " + repo
	}
	cfgText := fmt.Sprintf(`state: %s
poll_interval: %s
tuning: {concurrency: 8}
repositories:
  - {name: deployments, url: %q%s}
environments:
  - {name: qa, branch: qa, release: [deploy]}
pipelines:
  deploy: {runner: exec, command: ["/bin/true"]}
policy: {committers: ["*@example.com"]}
`, filepath.Join(dir, "state"), poll, url, repo)
	path := filepath.Join(dir, "gitmon.yaml")
	os.WriteFile(path, []byte(cfgText), 0o644)
	cfg, _, err := config.Load(path, config.Options{Mode: config.ModeServe})
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, cfg.State, store.Options{Lock: true})
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	a, err := app.New(ctx, cfg, app.Options{Store: st, Listener: ln, NoJitter: true,
		Runners: map[string]runners.Runner{"deploy": deploy}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	return a, st, func() {
		cancel()
		if err := <-done; err != nil {
			tb.Error(err)
		}
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkThroughput1000 pushes 1,000 commits, each changing a different
// one of 1,000 services, and measures from the poll that sees the tip to
// every record terminal, with an in-process no-op runner. Goal: ≤ 10 s.
func BenchmarkThroughput1000(b *testing.B) {
	requireE2E(b, hasGit(), "git")
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		bare := filepath.Join(dir, "repo.git")
		fastImport(b, bare, 1000, 0)
		a, st, n, stop := benchDaemon(b, bare, time.Hour)
		waitFor(b, time.Minute, "baseline", func() bool { ok, _ := a.Ready(); return ok })
		// 1,000 more commits land at once; the next poll sees them.
		more := filepath.Join(dir, "more.git")
		fastImport(b, more, 1000, 1000)
		git(b, more, "push", "-q", "--force", bare, "qa:qa")
		b.StartTimer()
		start := time.Now()
		a.Trigger("")
		waitFor(b, 5*time.Minute, "1000 terminal records", func() bool {
			recs, _ := st.Records(context.Background(), store.Filter{Status: []string{store.StatusSucceeded}})
			return len(recs) >= 1000
		})
		b.StopTimer()
		b.ReportMetric(time.Since(start).Seconds(), "s/1000commits")
		if got := n.runs.Load(); got != 1000 {
			b.Errorf("runner ran %d times, want 1000", got)
		}
		stop()
	}
}

func hasGit() bool {
	_, err := exec.LookPath("git")
	return err == nil
}

// BenchmarkDetectionLatency commits a version bump, triggers a poll and
// waits for the no-op deploy to start, b.N times. It reports the daemon's
// own histogram: from the poll that saw the moved tip to the first stage
// started (goal ≤ 50 ms).
func BenchmarkDetectionLatency(b *testing.B) {
	requireE2E(b, hasGit(), "git")
	dir := b.TempDir()
	bare := filepath.Join(dir, "repo.git")
	fastImport(b, bare, 20, 0)
	work := filepath.Join(dir, "work")
	git(b, "", "clone", "-q", "--branch", "qa", bare, work)
	a, _, n, stop := benchDaemon(b, bare, time.Hour)
	defer stop()
	waitFor(b, time.Minute, "baseline", func() bool { ok, _ := a.Ready(); return ok })
	b.ResetTimer()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		path := filepath.Join(work, "services", fmt.Sprintf("svc-%04d.yaml", i%20))
		os.WriteFile(path, []byte(fmt.Sprintf("service: svc-%04d\nversion: 3.0.%d\n", i%20, i)), 0o644)
		git(b, work, "-c", "user.name=Alice", "-c", "user.email=alice@example.com", "commit", "-qam", "bump")
		git(b, work, "push", "-q", "origin", "qa")
		want := n.runs.Load() + 1
		b.StartTimer()
		a.Trigger("")
		waitFor(b, time.Minute, "the deploy to start", func() bool { return n.runs.Load() >= want })
		b.StopTimer()
	}
	sum, count := histogram(b, a.Addr(), "gitmon_detection_latency_seconds")
	if count > 0 {
		b.ReportMetric(sum/count*1000, "ms-detection/op")
	}
}

// histogram reads a histogram's sum and count from /metrics.
func histogram(tb testing.TB, addr, name string) (sum, count float64) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		var v float64
		if _, err := fmt.Sscanf(line, name+"_sum %g", &v); err == nil {
			sum = v
		}
		if _, err := fmt.Sscanf(line, name+"_count %g", &v); err == nil {
			count = v
		}
	}
	return sum, count
}

// BenchmarkIdleRSS100Repos runs `gitmon serve` watching 100 repositories
// (3 environment branches each, 10 services) until every one was polled
// several times, and reports the process's resident memory (goal ≤ 100 MiB).
func BenchmarkIdleRSS100Repos(b *testing.B) {
	requireE2E(b, hasGit(), "git")
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		var repos strings.Builder
		for r := 0; r < 100; r++ {
			bare := filepath.Join(dir, fmt.Sprintf("r%03d.git", r))
			fastImport(b, bare, 10, 0)
			git(b, bare, "branch", "staging", "qa")
			git(b, bare, "branch", "prod", "qa")
			fmt.Fprintf(&repos, "  - {name: r%03d, url: %q}\n", r, bare)
		}
		addr := freeAddr(b)
		cfg := fmt.Sprintf(`listen: %s
state: ./state
poll_interval: 1s
repositories:
%senvironments:
  - {name: qa, branch: qa, release: [deploy]}
  - {name: staging, branch: staging, release: [deploy]}
  - {name: prod, branch: prod, release: [deploy]}
pipelines:
  deploy: {runner: exec, command: ["/bin/true"]}
policy: {committers: ["*@example.com"]}
`, addr, repos.String())
		os.WriteFile(filepath.Join(dir, "gitmon.yaml"), []byte(cfg), 0o644)
		cmd := exec.Command(gitmonBin, "serve", "--config", "gitmon.yaml")
		cmd.Dir = dir
		cmd.Env = gitEnv()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		ready := func() bool {
			resp, err := http.Get("http://" + addr + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200
		}
		waitFor(b, 2*time.Minute, "ready", ready)
		polls := func() float64 {
			resp, err := http.Get("http://" + addr + "/metrics")
			if err != nil {
				return 0
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			total := 0.0
			for _, l := range strings.Split(string(body), "\n") {
				var name string
				var v float64
				if strings.HasPrefix(l, "gitmon_polls_total{") {
					if _, err := fmt.Sscanf(l[strings.LastIndexByte(l, ' ')+1:], "%g", &v); err == nil {
						total += v
					}
				}
				_ = name
			}
			return total
		}
		waitFor(b, 2*time.Minute, "5 polls of every repository", func() bool { return polls() >= 500 })
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
		var rssKB float64
		for _, l := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(l, "VmRSS:") {
				fmt.Sscanf(strings.TrimPrefix(l, "VmRSS:"), "%g", &rssKB)
			}
		}
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		b.ReportMetric(rssKB/1024, "MiB-RSS")
	}
}
