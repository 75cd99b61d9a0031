package monitor

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/test/gitserver"
)

// helperServeEnv makes the test binary a smart-HTTP server for the bare
// repository it names (see TestHelperHTTPServer), so that a benchmark
// measures the client alone: an in-process server's CPU and allocations
// would count as the client's.
const helperServeEnv = "GITMON_HELPER_HTTP_REPO"

// TestHelperHTTPServer is not a test: run by startHelperHTTP in a child
// process, it serves a repository over HTTP, prints its address, and
// runs until its stdin closes.
func TestHelperHTTPServer(t *testing.T) {
	bare := os.Getenv(helperServeEnv)
	if bare == "" {
		return // only the benchmark's child process runs this
	}
	h, err := gitserver.NewHTTPHandler(bare, user, token, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go http.Serve(ln, h)
	fmt.Println(ln.Addr().String())
	bufio.NewReader(os.Stdin).ReadString('\n') // until the parent closes stdin
	os.Exit(0)
}

// startHelperHTTP serves repo from a child process and returns its URL.
// The child ends when its stdin closes, or is killed by its PID.
func startHelperHTTP(b *testing.B, repo *gitserver.Repo) string {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHTTPServer$")
	cmd.Env = gitserver.Env(helperServeEnv + "=" + repo.Bare)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("helper HTTP server: %v", err)
	}
	return "http://" + strings.TrimSpace(line) + "/deployments.git"
}

// benchRepo has three environment branches and about fifty refs.
func benchRepo(b *testing.B) *gitserver.Repo {
	b.Helper()
	gitserver.Require(b)
	repo := gitserver.NewRepo(b)
	seed(b, repo, 3)
	repo.Branch("staging", "qa")
	tip := repo.Head("qa")
	for i := 0; i < 47; i++ {
		repo.Tag(fmt.Sprintf("v1.0.%d", i), tip)
	}
	return repo
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

// BenchmarkListBranches measures one poll's ref listing (lean v0, v2
// ls-refs, go-git) over
// loopback git:// and HTTP (kept alive, server in another process), with
// `git ls-remote` against the same servers as the baseline. cpu-ns/op is
// this process's CPU; child-cpu-ns/op is that of the git processes a
// baseline runs (servers excluded).
func BenchmarkListBranches(b *testing.B) {
	repo := benchRepo(b)
	servers := []struct {
		name string
		cfg  Remote
	}{
		{"git", Remote{URL: gitserver.Daemon(b, repo), Insecure: true}},
		{"http", Remote{URL: startHelperHTTP(b, repo), Insecure: true, Username: user, Password: token}},
	}
	for _, s := range servers {
		for _, lister := range []string{"gitmon", "gitmon-v2", "go-git"} {
			b.Run(s.name+"/"+lister, func(b *testing.B) { benchLister(b, s.cfg, lister, 3) })
		}
		for _, proto := range []string{"2", "0"} {
			b.Run(s.name+"/ls-remote-v"+proto, func(b *testing.B) { benchLsRemote(b, s.cfg, proto, 3) })
		}
	}
}

// watched are the branches the daemon would watch in benchRepo.
var watched = []string{"qa", "staging", "prod"}

// benchLister measures one lister: "gitmon" (the lean v0 reader),
// "gitmon-v2" (ls-refs of the watched branches over git://),
// "gitmon-auto" (told the watched branches, v2 once the advertisement is
// large, as the daemon runs), or "go-git" (its ListContext, the fallback
// path).
func benchLister(b *testing.B, cfg Remote, lister string, branches int) {
	if lister == "gitmon-v2" {
		cfg.Branches = watched
	}
	if lister == "gitmon-auto" {
		cfg.Branches = watched
	}
	r := open(b, cfg)
	ctx := context.Background()
	switch lister {
	case "go-git":
		r.lean = nil
	case "gitmon-v2":
		r.lean.manyRefs.Store(true) // v2 whatever the size
	}
	if got, err := r.ListBranches(ctx); err != nil || len(got) != branches {
		b.Fatalf("ListBranches = %d branches, %v", len(got), err)
	}
	b.ReportAllocs()
	cpu := cpuTime(syscall.RUSAGE_SELF)
	n := 0
	for b.Loop() {
		if _, err := r.ListBranches(ctx); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(cpuTime(syscall.RUSAGE_SELF)-cpu)/float64(n), "cpu-ns/op")
}

// benchLsRemote measures `git -c protocol.version=proto ls-remote
// --heads`, the baseline: child-cpu-ns/op is the git client's CPU.
func benchLsRemote(b *testing.B, cfg Remote, proto string, branches int) {
	url := cfg.URL
	if cfg.Password != "" {
		url = strings.Replace(url, "://", "://"+user+":"+token+"@", 1)
	}
	lsRemote := func() {
		cmd := exec.Command("git", "-c", "protocol.version="+proto, "ls-remote", "--heads", url)
		cmd.Env = gitserver.Env()
		out, err := cmd.Output()
		if err != nil || strings.Count(string(out), "\n") != branches {
			b.Fatalf("git ls-remote: %v\n%.500s", err, out)
		}
	}
	lsRemote()
	b.ReportAllocs()
	cpu, child := cpuTime(syscall.RUSAGE_SELF), cpuTime(syscall.RUSAGE_CHILDREN)
	n := 0
	for b.Loop() {
		lsRemote()
		n++
	}
	b.ReportMetric(float64(cpuTime(syscall.RUSAGE_SELF)-cpu)/float64(n), "cpu-ns/op")
	b.ReportMetric(float64(cpuTime(syscall.RUSAGE_CHILDREN)-child)/float64(n), "child-cpu-ns/op")
}

// BenchmarkManyRefs lists a repository of three branches and many tags
// over git://: the lean v0 reader reads every ref; told the watched
// branches, gitmon asks for them alone with protocol v2's ls-refs. The
// baselines are `git ls-remote --heads` over v2 (which sends
// ref-prefix refs/heads/) and v0, against the same server.
func BenchmarkManyRefs(b *testing.B) {
	for _, tags := range []int{300, 1000, 100000} {
		b.Run(fmt.Sprintf("tags=%d", tags), func(b *testing.B) {
			repo := benchRepo(b)
			tip := repo.Head("qa")
			var refs strings.Builder
			for i := range tags {
				fmt.Fprintf(&refs, "create refs/tags/t%06d %s\n", i, tip)
			}
			for _, args := range [][]string{{"update-ref", "--stdin"}, {"pack-refs", "--all"}} {
				cmd := exec.Command("git", args...)
				cmd.Dir = repo.Bare
				cmd.Env = gitserver.Env()
				cmd.Stdin = strings.NewReader(refs.String())
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("git %v: %v\n%s", args, err, out)
				}
			}
			cfg := Remote{URL: gitserver.Daemon(b, repo), Insecure: true}
			for _, lister := range []string{"gitmon", "gitmon-v2", "gitmon-auto"} {
				b.Run(lister, func(b *testing.B) { benchLister(b, cfg, lister, 3) })
			}
			for _, proto := range []string{"2", "0"} {
				b.Run("ls-remote-v"+proto, func(b *testing.B) { benchLsRemote(b, cfg, proto, 3) })
			}
		})
	}
}
