// Package gitserver runs real Git servers on loopback for tests: smart
// HTTP (git http-backend behind net/http/cgi, optionally over TLS), git
// daemon, and sshd, all serving a bare repository that a work clone
// pushes to with the git CLI.
//
// It is hermetic: every git process runs with GIT_CONFIG_GLOBAL=/dev/null
// and GIT_CONFIG_NOSYSTEM=1 and without inherited GIT_* variables. Every
// server is cleaned up with t.Cleanup, and a server process is ended only
// through the process group of the PID the test started. Readiness is
// awaited by polling a condition (the port accepts) with a deadline, never
// by sleeping.
package gitserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The binaries the servers need.
const (
	sshdBin     = "/usr/sbin/sshd"
	readyWithin = 10 * time.Second
)

// Available returns the prerequisites that are missing on this machine, so
// tests can report them; nil means every server can run.
func Available() (missing []string) {
	if _, err := exec.LookPath("git"); err != nil {
		return []string{"git (Debian package git)"}
	}
	exe, err := gitExecPath()
	if err != nil {
		return []string{"git --exec-path: " + err.Error()}
	}
	for _, name := range []string{"git-http-backend", "git-daemon", "git-upload-pack"} {
		if !executable(filepath.Join(exe, name)) {
			missing = append(missing, name+" (Debian package git)")
		}
	}
	if !executable(sshdBin) {
		missing = append(missing, sshdBin+" (Debian package openssh-server)")
	}
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		missing = append(missing, "ssh-keygen (Debian package openssh-client)")
	}
	return missing
}

// Require skips t when a prerequisite is missing, except when
// GITMON_REQUIRE_E2E is set (as in CI), where it fails: a server test that
// did not run proves nothing.
func Require(t testing.TB) {
	t.Helper()
	missing := Available()
	if len(missing) == 0 {
		return
	}
	msg := "prerequisites missing: " + strings.Join(missing, ", ")
	if os.Getenv("GITMON_REQUIRE_E2E") != "" {
		t.Fatal(msg + " (GITMON_REQUIRE_E2E is set, so this fails instead of skipping)")
	}
	t.Skip(msg)
}

func executable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

var execPath struct {
	once sync.Once
	dir  string
	err  error
}

// gitExecPath is `git --exec-path`, where git-http-backend and friends live.
func gitExecPath() (string, error) {
	execPath.once.Do(func() {
		out, err := exec.Command("git", "--exec-path").Output()
		execPath.dir, execPath.err = strings.TrimSpace(string(out)), err
	})
	return execPath.dir, execPath.err
}

// Env returns the environment every git process of this package gets:
// the caller's, without GIT_* variables, plus the hermetic settings and
// extra.
func Env(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GIT_") || strings.HasPrefix(kv, "SSH_AUTH_SOCK=") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, hermetic...)
	return append(env, extra...)
}

// hermetic is what keeps git processes from reading the machine's and the
// user's configuration.
var hermetic = []string{
	"GIT_CONFIG_GLOBAL=/dev/null",
	"GIT_CONFIG_NOSYSTEM=1",
	"GIT_TERMINAL_PROMPT=0",
	"GIT_ASKPASS=/bin/false",
	"SSH_ASKPASS=/bin/false",
	"LC_ALL=C",
}

// runGit runs git in dir and returns its trimmed standard output.
func runGit(dir string, env []string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = Env(env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w\n%s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// freePort returns a loopback port nothing listens on right now. A
// process started on it may still lose a race for it; callers retry.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitFor polls cond every few milliseconds until it returns true, done
// is closed (the process died), or the deadline passes.
func waitFor(done <-chan struct{}, within time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return nil
		}
		select {
		case <-done:
			return errors.New("the process exited")
		case <-ctx.Done():
			return fmt.Errorf("not ready within %s", within)
		case <-tick.C:
		}
	}
}

// accepts reports whether something accepts TCP connections on addr.
func accepts(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// process is a server process the test started. It runs in its own
// process group, so ending it also ends the children serving connections.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string // the file holding its stdout and stderr
	done chan struct{}
	err  error // from Wait, once done is closed
}

// startProcess starts argv with the hermetic environment on a free port
// chosen by args(port), waits until the port accepts connections, and
// registers its end with t.Cleanup. It retries with another port when the
// process dies before it is ready (another process took the port).
func startProcess(t testing.TB, name, logDir string, env []string, args func(port int) []string) (*process, int) {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("%s: finding a free port: %v", name, err)
		}
		argv := args(port)
		p := &process{name: name, log: filepath.Join(logDir, fmt.Sprintf("%s-%d.log", name, attempt)), done: make(chan struct{})}
		logf, err := os.Create(p.log)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		p.cmd = exec.Command(argv[0], argv[1:]...)
		p.cmd.Env = Env(env...)
		p.cmd.Dir = logDir
		// A file, not a pipe: Wait must not wait for children that keep
		// a pipe open.
		p.cmd.Stdout, p.cmd.Stderr = logf, logf
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := p.cmd.Start(); err != nil {
			logf.Close()
			t.Fatalf("%s: starting %s: %v", name, argv[0], err)
		}
		logf.Close()
		go func() {
			p.err = p.cmd.Wait()
			close(p.done)
		}()
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if err := waitFor(p.done, readyWithin, func() bool { return accepts(addr) }); err != nil {
			p.stop()
			lastErr = fmt.Errorf("%s on %s: %v\n%s", name, addr, err, p.output())
			continue
		}
		t.Cleanup(func() {
			p.stop()
			if t.Failed() {
				t.Logf("%s log:\n%s", name, p.output())
			}
		})
		return p, port
	}
	t.Fatalf("%v", lastErr)
	return nil, 0
}

// stop ends the process group the test started (its id is the PID of
// the process), politely first, and waits for the process.
func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(5 * time.Second):
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	<-p.done
}

func (p *process) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}
