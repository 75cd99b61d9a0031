package test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/internal/store"
)

// pollEnvs are the environment branches of the scale benchmarks.
var pollEnvs = []string{"qa", "staging", "prod"}

// servedLog counts the ref listings a git daemon served, from its
// --verbose log: the server side's count, which no client-side hang can
// inflate.
type servedLog struct {
	mu    sync.Mutex
	times []time.Time
}

func (s *servedLog) between(from, to time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	lo := sort.Search(len(s.times), func(i int) bool { return !s.times[i].Before(from) })
	hi := sort.Search(len(s.times), func(i int) bool { return !s.times[i].Before(to) })
	return hi - lo
}

func (s *servedLog) first(after time.Time) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := sort.Search(len(s.times), func(i int) bool { return !s.times[i].Before(after) })
	if i == len(s.times) {
		return time.Time{}, false
	}
	return s.times[i], true
}

// startVerboseDaemon serves every repository under base with `git daemon`
// (its defaults: a listen queue of 5, --max-connections=32) and counts
// the requests it serves. It is ended through the process group of the
// PID this test started.
func startVerboseDaemon(b *testing.B, base string) (port int, served *servedLog) {
	b.Helper()
	addr := freeAddr(b)
	_, p, _ := net.SplitHostPort(addr)
	port, _ = strconv.Atoi(p)
	cmd := exec.Command("git", "daemon", "--verbose", "--reuseaddr", "--export-all", "--base-path="+base,
		"--listen=127.0.0.1", "--port="+p)
	cmd.Env = gitEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	served = &servedLog{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Request upload-pack for") {
				at := time.Now()
				served.mu.Lock()
				served.times = append(served.times, at)
				served.mu.Unlock()
			}
		}
	}()
	b.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		cmd.Wait()
		<-done
	})
	waitFor(b, 10*time.Second, "git daemon to accept", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return port, served
}

// procCPU is a process's CPU time (user + system) from /proc.
func procCPU(tb testing.TB, pid int) time.Duration {
	tb.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const ticks = 100 // CLK_TCK on Linux
	return time.Duration(utime+stime) * time.Second / ticks
}

// procMem returns a process's resident and peak resident memory in MiB.
func procMem(tb testing.TB, pid int) (rss, peak float64) {
	tb.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		var kb float64
		if _, err := fmt.Sscanf(strings.TrimPrefix(l, "VmRSS:"), "%g", &kb); err == nil && strings.HasPrefix(l, "VmRSS:") {
			rss = kb / 1024
		}
		if _, err := fmt.Sscanf(strings.TrimPrefix(l, "VmHWM:"), "%g", &kb); err == nil && strings.HasPrefix(l, "VmHWM:") {
			peak = kb / 1024
		}
	}
	return rss, peak
}

// lsRemoteCPU is the CPU of one `git ls-remote --heads` client (the
// baseline), averaged over n runs against url.
func lsRemoteCPU(b *testing.B, url string, n int) time.Duration {
	b.Helper()
	before := cpuTime(syscall.RUSAGE_CHILDREN)
	for range n {
		cmd := exec.Command("git", "ls-remote", "--heads", url)
		cmd.Env = gitEnv()
		out, err := cmd.Output()
		if err != nil || strings.Count(string(out), "\n") != len(pollEnvs) {
			b.Fatalf("git ls-remote: %v\n%s", err, out)
		}
	}
	return (cpuTime(syscall.RUSAGE_CHILDREN) - before) / time.Duration(n)
}

// seedState writes the state of a daemon that has processed every
// branch up to tip, as a restart finds it: no poll needs a fetch.
func seedState(b *testing.B, state string, repos int, tips map[string]string) {
	b.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, state, store.Options{Lock: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	for r := range repos {
		for _, env := range pollEnvs {
			if err := st.Apply(ctx, store.Batch{Repository: fmt.Sprintf("r%05d", r), Environment: env, Branch: env,
				Commit: tips[env], Baseline: true}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkPollSchedule runs `gitmon serve` watching N repositories (three
// environment branches and about fifty refs each) on one `git daemon`,
// restarted on a state where every branch is processed, so that every
// poll is an unchanged one. It reports, from the server's own log, the
// share of the expected polls (N per interval) served from the first
// interval on; gitmon's CPU per poll, against the `git ls-remote --heads`
// client's measured in the same run; the cores gitmon uses; and its
// resident memory. Goals: ≥ 99% polls; ≤ 0.25× the CLI's CPU; at 10,000
// repositories every 60 s, ≤ 0.25 core and ≤ 300 MiB. GITMON_BENCH_BIN
// runs another build of gitmon instead, to compare.
func BenchmarkPollSchedule(b *testing.B) {
	requireE2E(b, hasGit(), "git")
	for _, c := range []struct {
		repos     int
		interval  time.Duration
		intervals int
	}{
		{200, 2 * time.Second, 5},
		{1000, 10 * time.Second, 3},
		{10000, 60 * time.Second, 3},
	} {
		b.Run(fmt.Sprintf("repos=%d/interval=%s", c.repos, c.interval), func(b *testing.B) {
			for range b.N {
				benchPollSchedule(b, c.repos, c.interval, c.intervals)
			}
		})
	}
}

func benchPollSchedule(b *testing.B, repos int, interval time.Duration, intervals int) {
	b.StopTimer()
	dir := b.TempDir()
	bare := filepath.Join(dir, "deployments.git")
	fastImport(b, bare, 10, 0)
	git(b, bare, "branch", "staging", "qa")
	git(b, bare, "branch", "prod", "qa")
	for i := range 47 {
		git(b, bare, "tag", fmt.Sprintf("v1.0.%d", i), "qa")
	}
	tip := git(b, bare, "rev-parse", "qa")
	base := filepath.Join(dir, "srv")
	os.Mkdir(base, 0o755)
	for r := range repos {
		if err := os.Symlink(bare, filepath.Join(base, fmt.Sprintf("r%05d.git", r))); err != nil {
			b.Fatal(err)
		}
	}
	port, served := startVerboseDaemon(b, base)
	url := func(r int) string { return fmt.Sprintf("git://127.0.0.1:%d/r%05d.git", port, r) }

	// The baseline: the CLI client, on the same server, before and after
	// gitmon runs.
	cli := lsRemoteCPU(b, url(0), 100)

	state := filepath.Join(dir, "state")
	seedState(b, state, repos, map[string]string{"qa": tip, "staging": tip, "prod": tip})
	var cfg strings.Builder
	addr := freeAddr(b)
	fmt.Fprintf(&cfg, "listen: %s\nstate: %s\npoll_interval: %s\nrepositories:\n", addr, state, interval)
	for r := range repos {
		fmt.Fprintf(&cfg, "  - {name: r%05d, url: %q, insecure: true}\n", r, url(r))
	}
	cfg.WriteString("environments:\n")
	for _, env := range pollEnvs {
		fmt.Fprintf(&cfg, "  - {name: %s, branch: %s, release: [deploy]}\n", env, env)
	}
	cfg.WriteString("pipelines:\n  deploy: {runner: exec, command: [\"/bin/true\"]}\npolicy: {committers: [\"*@example.com\"]}\n")
	cfgPath := filepath.Join(dir, "gitmon.yaml")
	os.WriteFile(cfgPath, []byte(cfg.String()), 0o600)

	logFile, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logFile.Close()
	bin := gitmonBin
	if other := os.Getenv("GITMON_BENCH_BIN"); other != "" {
		bin = other // another build of gitmon, to compare with
	}
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Env = gitEnv()
	cmd.Stderr = logFile
	started := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	pid := cmd.Process.Pid

	// The window starts at the first poll served: each repository's first
	// poll falls within one interval of it, so a punctual daemon serves
	// exactly N in each interval of the window.
	var first time.Time
	waitFor(b, 2*time.Minute+interval, "the first poll", func() bool {
		var ok bool
		first, ok = served.first(started)
		return ok
	})
	b.StartTimer()
	time.Sleep(time.Until(first.Add(interval)))
	cpu1 := procCPU(b, pid)
	end := first.Add(time.Duration(intervals) * interval)
	time.Sleep(time.Until(end))
	cpu2 := procCPU(b, pid)
	rss, peak := procMem(b, pid)
	b.StopTimer()
	// Requests already in the server's pipe at the window's end.
	time.Sleep(100 * time.Millisecond)
	made := served.between(first, end)
	steady := served.between(first.Add(interval), end)
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	cli = (cli + lsRemoteCPU(b, url(0), 100)) / 2

	expected := repos * intervals
	perPoll := time.Duration(0)
	if steady > 0 {
		perPoll = (cpu2 - cpu1) / time.Duration(steady)
	}
	b.ReportMetric(100*float64(made)/float64(expected), "%polls")
	b.ReportMetric(float64(made), "polls")
	b.ReportMetric(float64(expected), "expected")
	b.ReportMetric(float64(perPoll.Microseconds()), "µs-cpu/poll")
	b.ReportMetric(float64(cli.Microseconds()), "µs-cpu/ls-remote")
	b.ReportMetric(float64(perPoll)/float64(cli), "×ls-remote")
	b.ReportMetric((cpu2-cpu1).Seconds()/(time.Duration(intervals-1)*interval).Seconds(), "cores")
	b.ReportMetric(rss, "MiB-RSS")
	b.ReportMetric(peak, "MiB-peak")
	b.ReportMetric(first.Sub(started).Seconds(), "s-to-first-poll")
}

// cpuTime returns the CPU time (user + system) this process, or its
// waited-for children, have used.
func cpuTime(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
