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

// BenchmarkListBranches measures one poll's ref listing with go-git over
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
		for _, lister := range []string{"gitmon", "go-git"} {
			b.Run(s.name+"/"+lister, func(b *testing.B) {
				r := open(b, s.cfg)
				ctx := context.Background()
				if lister == "go-git" {
					r.lean = nil // go-git's ListContext, the fallback path
				}
				if got, err := r.ListBranches(ctx); err != nil || len(got) != 3 {
					b.Fatalf("ListBranches = %v, %v", got, err)
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
			})
		}
		for _, proto := range []string{"2", "0"} {
			b.Run(s.name+"/ls-remote-v"+proto, func(b *testing.B) {
				url := s.cfg.URL
				if s.cfg.Password != "" {
					url = strings.Replace(url, "://", "://"+user+":"+token+"@", 1)
				}
				lsRemote := func() {
					cmd := exec.Command("git", "-c", "protocol.version="+proto, "ls-remote", "--heads", url)
					cmd.Env = gitserver.Env()
					out, err := cmd.Output()
					if err != nil || strings.Count(string(out), "\n") != 3 {
						b.Fatalf("git ls-remote: %v\n%s", err, out)
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
			})
		}
	}
}
