package monitor

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/test/gitserver"
)

// relay is a loopback TCP relay in front of a real Git server. It counts
// the connections open at once, and can hold back the server's answers
// or swallow connections (accept them and say nothing), as an overloaded
// server or a lossy network does.
type relay struct {
	ln     net.Listener
	target string
	// silent says whether the n-th connection (from 1) is swallowed.
	silent func(n int) bool
	// hold, when not nil, holds every answer until it is closed.
	hold chan struct{}
	// tap, when not nil, sees what clients send.
	tap func([]byte)

	accepted atomic.Int64
	done     chan struct{} // closed at cleanup
	wg       sync.WaitGroup
}

// relayOpts are a relay's silent, hold and tap.
type relayOpts struct {
	silent func(n int) bool
	hold   chan struct{}
	tap    func([]byte)
}

// startRelay relays to target, as opts say.
func startRelay(t *testing.T, target string, opts relayOpts) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts.silent == nil {
		opts.silent = func(int) bool { return false }
	}
	r := &relay{ln: ln, target: target, silent: opts.silent, hold: opts.hold, tap: opts.tap, done: make(chan struct{})}
	var conns sync.Map
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Store(c, true)
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				defer conns.Delete(c)
				r.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		close(r.done)
		ln.Close()
		conns.Range(func(c, _ any) bool { c.(net.Conn).Close(); return true })
		r.wg.Wait()
	})
	return r
}

// addr is where clients connect.
func (r *relay) addr() string { return r.ln.Addr().String() }

func (r *relay) serve(c net.Conn) {
	defer c.Close()
	n := r.accepted.Add(1)
	if r.silent(int(n)) {
		io.Copy(io.Discard, c) // until the client gives up
		return
	}
	up, err := net.Dial("tcp", r.target)
	if err != nil {
		return
	}
	defer up.Close()
	if r.hold != nil {
		select {
		case <-r.hold:
		case <-r.done:
			return
		}
	}
	go func() {
		var from io.Reader = c
		if r.tap != nil {
			from = io.TeeReader(c, tapWriter(r.tap))
		}
		io.Copy(up, from)
		up.(*net.TCPConn).CloseWrite()
	}()
	io.Copy(c, up)
}

type tapWriter func([]byte)

func (w tapWriter) Write(b []byte) (int, error) { w(b); return len(b), nil }

// relayed rewrites a git:// or http:// URL to go through the relay.
func relayed(t *testing.T, raw string, r *relay) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = r.addr()
	return u.String()
}

// TestDialLimitBoundsConnections: twelve repositories that poll at once
// through one DialLimit of 3 have 3 connections open to a server that
// holds its answers, while the other 9 wait for a slot; once the server
// answers, every listing succeeds.
func TestDialLimitBoundsConnections(t *testing.T) {
	gitserver.Require(t)
	repo := gitserver.NewRepo(t)
	seed(t, repo, 1)
	daemon := gitserver.Daemon(t, repo)
	u, _ := url.Parse(daemon)
	hold := make(chan struct{})
	rl := startRelay(t, u.Host, relayOpts{hold: hold})
	limit := NewDialLimit(3)
	var repos []*Repo
	for i := 0; i < 12; i++ {
		r, err := NewRepo(Remote{URL: relayed(t, daemon, rl), Insecure: true},
			Options{Dir: filepath.Join(t.TempDir(), "objects"), Cache: sharedCache, Timeout: 20 * time.Second, Dials: limit})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		repos = append(repos, r)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(repos))
	for i, r := range repos {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = r.ListBranches(context.Background())
		}()
	}
	waitUntil(t, "3 connections made and 9 listings waiting for a slot", func() bool {
		return rl.accepted.Load() >= 3 && limit.waiting.Load() == 9
	})
	if got := rl.accepted.Load(); got != 3 {
		t.Errorf("%d connections open at once, want the bound, 3", got)
	}
	close(hold)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got := rl.accepted.Load(); got != 12 {
		t.Errorf("%d connections, want 12", got)
	}
	if got := limit.Peak(); got != 3 {
		t.Errorf("DialLimit.Peak = %d, want 3", got)
	}
}

// waitUntil polls cond until it holds, failing the test after 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestDialLimitWaitEndsWithContext: a listing waiting for a slot gives up
// when its context ends, saying why.
func TestDialLimitWaitEndsWithContext(t *testing.T) {
	limit := NewDialLimit(1)
	if err := limit.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer limit.release()
	r, err := NewRepo(Remote{URL: "git://127.0.0.1:9/r.git", Insecure: true}, Options{Dir: t.TempDir(), Dials: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.ListBranches(ctx); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "waiting for a connection slot") {
		t.Fatalf("ListBranches = %v, want a cancelled wait for a slot", err)
	}
}

// TestLostConnectionCostsFirstByte: a server that accepts and never
// answers costs the first-byte deadline, not the attempt's timeout (an
// hour here), on each transport, with one more try
// on a fresh connection, which a lossy server then answers.
func TestLostConnectionCostsFirstByte(t *testing.T) {
	gitserver.Require(t)
	repo := gitserver.NewRepo(t)
	seed(t, repo, 1)
	httpURL, _ := gitserver.HTTP(t, repo, user, token)
	sshURL, key, knownHosts := gitserver.SSH(t, repo)
	servers := []struct {
		name   string
		remote Remote
	}{
		{"git", Remote{URL: gitserver.Daemon(t, repo), Insecure: true}},
		{"http", Remote{URL: httpURL, Insecure: true, Username: user, Password: token}},
		{"ssh", sshRemote(t, sshURL, key, knownHosts)},
	}
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			u, err := url.Parse(s.remote.URL)
			if err != nil {
				t.Fatal(err)
			}
			opts := Options{Cache: sharedCache, Timeout: time.Hour, FirstByte: 200 * time.Millisecond}

			silent := startRelay(t, u.Host, relayOpts{silent: func(int) bool { return true }})
			rem := s.remote
			rem.URL = relayed(t, rem.URL, silent)
			rem.KnownHostsFile = knownHostsFor(t, rem.KnownHostsFile, u.Port(), silent)
			opts.Dir = t.TempDir()
			r, err := NewRepo(rem, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			// The caller's own 30 s must not be what ends the wait.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err = r.ListBranches(ctx)
			if !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
				t.Errorf("ListBranches from a silent server = %v (caller's context: %v), want the first-byte deadline", err, ctx.Err())
			}
			if got := silent.accepted.Load(); got != 2 {
				t.Errorf("%d connections to a silent server, want 2 (one more try)", got)
			}

			lossy := startRelay(t, u.Host, relayOpts{silent: func(n int) bool { return n == 1 }}) // the first connection is lost
			rem.URL = relayed(t, s.remote.URL, lossy)
			rem.KnownHostsFile = knownHostsFor(t, s.remote.KnownHostsFile, u.Port(), lossy)
			opts.Dir = t.TempDir()
			r2, err := NewRepo(rem, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer r2.Close()
			got, err := r2.ListBranches(context.Background())
			if err != nil || got["qa"] != repo.Head("qa") {
				t.Fatalf("ListBranches after a lost connection = %v, %v", got, err)
			}
		})
	}
}

// knownHostsFor copies an SSH server's known_hosts for its relay's port;
// "" stays "".
func knownHostsFor(t *testing.T, file, port string, r *relay) string {
	t.Helper()
	if file == "" {
		return ""
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	_, relayPort, _ := net.SplitHostPort(r.addr())
	out := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(out, []byte(strings.ReplaceAll(string(b), "]:"+port+" ", "]:"+relayPort+" ")), 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSilentSSHHandshake: an SSH server that never sends its version
// line is given up on after the first-byte deadline, though the attempt
// has an hour.
func TestSilentSSHHandshake(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	keyFile := filepath.Join(t.TempDir(), "id")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", keyFile).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	hosts := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(hosts, nil, 0o600)
	r, err := NewRepo(sshRemote(t, "ssh://git@"+ln.Addr().String()+"/r.git", keyFile, hosts),
		Options{Dir: t.TempDir(), Timeout: time.Hour, FirstByte: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Fetch(ctx, "qa"); !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		t.Fatalf("Fetch from a silent SSH server = %v (caller's context: %v), want the first-byte deadline", err, ctx.Err())
	}
}
