//go:build linux

package runners

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Scripts run as ["/bin/sh", script, ...], never exec'd directly: an
// executable written by a test and exec'd while another test forks can
// fail with ETXTBSY.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "stage.sh")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func testRequest() *Request {
	return &Request{
		Repository: "deployments", Environment: "qa", Service: "payments", Version: "1.4.2",
		PreviousVersion: "1.4.1", Commit: "0123456789abcdef0123456789abcdef01234567",
		Author: "alice@example.com", Committer: "bob@example.com", Tickets: []string{"OPS-1", "PAY-2"},
		Stage: "deploy", Action: "deploy", RunID: "run-42",
		Descriptor: json.RawMessage(`{"service":"payments","version":"1.4.2"}`),
	}
}

// recorder is a Handle that keeps what was saved.
type recorder struct {
	saved chan ExecHandle
	err   error
}

func newRecorder() *recorder { return &recorder{saved: make(chan ExecHandle, 1)} }

func (r *recorder) Save(_ context.Context, data json.RawMessage) error {
	var h ExecHandle
	if err := json.Unmarshal(data, &h); err != nil {
		return err
	}
	r.saved <- h
	return r.err
}

// gone reports whether pid has exited (a zombie counts: nothing may reap
// an orphan in a container).
func gone(pid int) bool {
	st, err := readStat(pid)
	return err != nil || st.state == 'Z'
}

// pidFile waits for a script to write a pid to path and returns it. The
// process is killed when the test ends, whatever happens.
func pidFile(t *testing.T, path string) int {
	t.Helper()
	var pid int
	waitFor(t, "the script writes "+path, func() bool {
		b, _ := os.ReadFile(path)
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		pid = n
		return err == nil && n > 0 && strings.HasSuffix(string(b), "\n")
	})
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	return pid
}

func TestExecEnvironmentIsExactly(t *testing.T) {
	t.Setenv("HOME", "/home/gitmon-test")
	t.Setenv("DAEMON_ONLY_TEST_VAR", "must-not-pass")
	t.Setenv("KUBECONFIG_TEST_VAR", "/etc/kube/qa")
	f, ok := Lookup(KindExec)
	if !ok {
		t.Fatal("the exec runner is not registered")
	}
	r, err := f(Pipeline{Name: "deploy", Kind: KindExec, Command: []string{"/usr/bin/env"},
		Env: []string{"KUBECONFIG_TEST_VAR", "UNSET_TEST_VAR"}}, Env{RunDir: testRunDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	out := NewOutput(1<<16, nil)
	res, err := r.Run(t.Context(), testRequest(), out, nil)
	if err != nil || !res.OK {
		t.Fatalf("Run = %+v, %v; output:\n%s", res, err, out)
	}
	got := map[string]string{}
	for line := range strings.Lines(out.String()) {
		k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		got[k] = v
	}
	want := map[string]string{
		"PATH":                    os.Getenv("PATH"),
		"HOME":                    "/home/gitmon-test",
		"KUBECONFIG_TEST_VAR":     "/etc/kube/qa",
		"GITMON_REPOSITORY":       "deployments",
		"GITMON_ENV":              "qa",
		"GITMON_SERVICE":          "payments",
		"GITMON_VERSION":          "1.4.2",
		"GITMON_PREVIOUS_VERSION": "1.4.1",
		"GITMON_COMMIT":           "0123456789abcdef0123456789abcdef01234567",
		"GITMON_AUTHOR":           "alice@example.com",
		"GITMON_COMMITTER":        "bob@example.com",
		"GITMON_TICKETS":          "OPS-1,PAY-2",
		"GITMON_STAGE":            "deploy",
		"GITMON_ACTION":           "deploy",
		"GITMON_RUN_ID":           "run-42",
		"GITMON_DESCRIPTOR":       got["GITMON_DESCRIPTOR"],
	}
	if !strings.HasSuffix(want["GITMON_DESCRIPTOR"], ".json") {
		t.Errorf("GITMON_DESCRIPTOR = %q", want["GITMON_DESCRIPTOR"])
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %q (set: %v), want %q", k, g, ok, v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s is in the environment, and must not be", k)
		}
	}
}

func TestExecNoShellNoInterpolation(t *testing.T) {
	dir := t.TempDir()
	pwned := func(n int) string { return filepath.Join(dir, "pwned"+strconv.Itoa(n)) }
	req := testRequest()
	req.Version = "$(touch " + pwned(1) + ")"
	tests := []struct {
		name    string
		command []string
		want    string
	}{
		{name: "descriptor value reaches the command verbatim", command: []string{"printenv", "GITMON_VERSION"}, want: req.Version + "\n"},
		{name: "argv is not shell-interpreted", command: []string{"/usr/bin/echo", "$(touch " + pwned(2) + ")", "$HOME", "*", ";", "touch", pwned(3)},
			want: "$(touch " + pwned(2) + ") $HOME * ; touch " + pwned(3) + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := NewExec(Pipeline{Command: tt.command}, Env{RunDir: testRunDir(t)})
			if err != nil {
				t.Fatal(err)
			}
			out := NewOutput(1<<16, nil)
			res, err := e.Run(t.Context(), req, out, nil)
			if err != nil || !res.OK {
				t.Fatalf("Run = %+v, %v", res, err)
			}
			if out.String() != tt.want {
				t.Errorf("output %q, want %q", out.String(), tt.want)
			}
		})
	}
	for n := 1; n <= 3; n++ {
		if _, err := os.Stat(pwned(n)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists: something ran a shell (%v)", pwned(n), err)
		}
	}
}

func TestExecExitStatus(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		ok      bool
		message string
		output  string
	}{
		{name: "exit 0", body: "echo out; echo err >&2; exit 0", ok: true, output: "out\nerr\n"},
		{name: "exit 3", body: "echo failing >&2; exit 3", message: "exit status 3", output: "failing\n"},
		{name: "killed by a signal", body: "kill -KILL $$", message: "killed by signal 9 (killed)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &Exec{RunDir: testRunDir(t), Command: []string{"/bin/sh", script(t, tt.body)}}
			out := NewOutput(1<<16, nil)
			res, err := e.Run(t.Context(), testRequest(), out, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.OK != tt.ok || res.Message != tt.message || out.String() != tt.output {
				t.Errorf("Run = %+v with output %q, want OK %v, message %q, output %q", res, out, tt.ok, tt.message, tt.output)
			}
		})
	}
}

func TestExecStartFailure(t *testing.T) {
	e := &Exec{RunDir: testRunDir(t), Command: []string{filepath.Join(t.TempDir(), "missing")}}
	if _, err := e.Run(t.Context(), testRequest(), nil, nil); err == nil {
		t.Fatal("Run of a missing program succeeded")
	}
}

func TestExecDescriptorFile(t *testing.T) {
	rd := testRunDir(t)
	tmp := rd.Path()
	e := &Exec{RunDir: rd, Command: []string{"/bin/sh", script(t, `cat "$GITMON_DESCRIPTOR"; echo; stat -c %a "$GITMON_DESCRIPTOR"; dirname "$GITMON_DESCRIPTOR"`)}}
	out := NewOutput(1<<16, nil)
	res, err := e.Run(t.Context(), testRequest(), out, nil)
	if err != nil || !res.OK {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	want := `{"service":"payments","version":"1.4.2"}` + "\n600\n" + tmp + "\n"
	if out.String() != want {
		t.Errorf("output %q, want %q", out, want)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("%s still holds %v after the stage", tmp, ents)
	}
}

// A cancelled stage's whole group dies, including a grandchild that
// ignores SIGTERM; the leader, which exits on SIGTERM, ends the stage
// without waiting for the grace.
func TestExecCancelKillsTheGroup(t *testing.T) {
	pids := filepath.Join(t.TempDir(), "grandchild")
	e := &Exec{RunDir: testRunDir(t), KillGrace: time.Minute, Command: []string{"/bin/sh", script(t, `
(trap '' TERM; exec sleep 1000) &
echo $! > "$1"
wait
`), pids}}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	h := newRecorder()
	type ran struct {
		res Result
		err error
	}
	done := make(chan ran, 1)
	go func() {
		res, err := e.Run(ctx, testRequest(), nil, h)
		done <- ran{res, err}
	}()
	grandchild := pidFile(t, pids)
	hd := <-h.saved
	t.Cleanup(func() { syscall.Kill(-hd.PGID, syscall.SIGKILL) })
	if st, err := readStat(hd.PGID); err != nil || st.startTime != hd.StartTime || st.pgrp != hd.PGID {
		t.Fatalf("saved handle %+v, /proc says %+v, %v", hd, st, err)
	}
	if boot, _ := bootID(); hd.BootID != boot || boot == "" {
		t.Errorf("saved boot id %q, want %q", hd.BootID, boot)
	}
	if st, _ := readStat(grandchild); st.pgrp != hd.PGID {
		t.Fatalf("the grandchild is in group %d, want %d", st.pgrp, hd.PGID)
	}

	start := time.Now()
	cancel()
	r := <-done
	if r.err != nil || r.res.OK || r.res.Message != "cancelled: context canceled" {
		t.Fatalf("Run = %+v, %v", r.res, r.err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("Run took %s after the cancel", d)
	}
	waitFor(t, "the grandchild is gone", func() bool { return gone(grandchild) })
	if !gone(hd.PGID) {
		t.Errorf("the leader %d is still running", hd.PGID)
	}
}

// A leader that ignores SIGTERM gets SIGKILL after the grace.
func TestExecTimeoutKillsAfterGrace(t *testing.T) {
	pids := filepath.Join(t.TempDir(), "child")
	e := &Exec{RunDir: testRunDir(t), KillGrace: 50 * time.Millisecond, Command: []string{"/bin/sh", script(t, `
trap '' TERM
sleep 1000 &
echo $! > "$1"
wait
`), pids}}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	h := newRecorder()
	res, err := e.Run(ctx, testRequest(), nil, h)
	hd := <-h.saved
	if err != nil || res.OK || res.Message != "cancelled: context deadline exceeded" {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	if !gone(hd.PGID) {
		t.Errorf("the leader %d is still running", hd.PGID)
	}
	if b, _ := os.ReadFile(pids); len(b) > 0 { // written unless the machine was too slow
		child := pidFile(t, pids)
		waitFor(t, "the child is gone", func() bool { return gone(child) })
	}
}

// A stage ends when its command does, and what it left in the
// background is killed, even though it holds the output pipe.
func TestExecBackgroundChildDoesNotOutliveTheStage(t *testing.T) {
	pids := filepath.Join(t.TempDir(), "background")
	e := &Exec{RunDir: testRunDir(t), KillGrace: time.Minute, Command: []string{"/bin/sh", script(t, `
sleep 1000 &
echo $! > "$1"
echo deployed
`), pids}}
	start := time.Now()
	out := NewOutput(1<<16, nil)
	res, err := e.Run(t.Context(), testRequest(), out, nil)
	if err != nil || !res.OK || out.String() != "deployed\n" {
		t.Fatalf("Run = %+v, %v, output %q", res, err, out)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("Run took %s: it waited for the background child's pipe", d)
	}
	child := pidFile(t, pids)
	waitFor(t, "the background child is gone", func() bool { return gone(child) })
}

// A process that leaves the group escapes the kill, but the stage still
// ends one grace after the leader although the escaped process holds the
// output pipe.
func TestExecEscapedProcessDoesNotHangTheStage(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("no setsid")
	}
	pids := filepath.Join(t.TempDir(), "escaped")
	e := &Exec{RunDir: testRunDir(t), KillGrace: 100 * time.Millisecond, Command: []string{"/bin/sh", script(t, `
setsid sh -c 'echo $$ > "$1"; exec sleep 1000' sh "$1" &
while [ ! -s "$1" ]; do sleep 0.01; done
`), pids}}
	res, err := e.Run(t.Context(), testRequest(), nil, nil)
	escaped := pidFile(t, pids) // killed by its cleanup
	if err != nil || !res.OK {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	if gone(escaped) {
		t.Log("the escaped process ended by itself")
	}
}

// When the handle cannot be saved, the process is killed: unrecorded, it
// could not be found after a crash.
func TestExecSaveFailureKills(t *testing.T) {
	e := &Exec{RunDir: testRunDir(t), Command: []string{"/bin/sh", script(t, "sleep 1000 & wait")}}
	h := newRecorder()
	h.err = errors.New("store is down")
	_, err := e.Run(t.Context(), testRequest(), nil, h)
	if err == nil || !strings.Contains(err.Error(), "store is down") {
		t.Fatalf("Run error %v", err)
	}
	hd := <-h.saved
	waitFor(t, "the process group is gone", func() bool { return gone(hd.PGID) && len(groupMembers(hd.PGID)) == 0 })
}

// startGroup starts a script in its own process group, as the exec
// runner would, and returns it with the pid of its child.
func startGroup(t *testing.T, body string) (*exec.Cmd, ExecHandle, int) {
	t.Helper()
	pids := filepath.Join(t.TempDir(), "child")
	cmd := exec.Command("/bin/sh", script(t, body), pids)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	child := pidFile(t, pids)
	st, err := readStat(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	boot, err := bootID()
	if err != nil {
		t.Fatal(err)
	}
	return cmd, ExecHandle{PGID: cmd.Process.Pid, BootID: boot, StartTime: st.startTime}, child
}

func TestExecRecover(t *testing.T) {
	const body = "sleep 1000 &\necho $! > \"$1\"\nwait\n"
	e := &Exec{}
	recoverWith := func(t *testing.T, hd ExecHandle) error {
		data, _ := json.Marshal(hd)
		return e.Recover(t.Context(), data)
	}

	t.Run("kills the recorded group", func(t *testing.T) {
		cmd, hd, child := startGroup(t, body)
		if err := recoverWith(t, hd); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signal() != syscall.SIGKILL {
			t.Errorf("the leader ended with %v, want SIGKILL", cmd.ProcessState)
		}
		waitFor(t, "the child is gone", func() bool { return gone(child) })
	})

	// A process that was not killed by Recover dies of the SIGTERM sent
	// after it: a SIGKILL, once sent, would decide how it ends.
	notKilled := func(t *testing.T, cmd *exec.Cmd, child int) {
		t.Helper()
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signal() != syscall.SIGTERM {
			t.Errorf("the leader ended with %v, want SIGTERM: Recover killed it", cmd.ProcessState)
		}
		if gone(child) {
			t.Errorf("Recover killed the child")
		}
	}
	t.Run("refuses another start time", func(t *testing.T) {
		cmd, hd, child := startGroup(t, body)
		hd.StartTime++
		if err := recoverWith(t, hd); err != nil {
			t.Fatal(err)
		}
		notKilled(t, cmd, child)
	})
	t.Run("refuses another boot", func(t *testing.T) {
		cmd, hd, child := startGroup(t, body)
		hd.BootID = "00000000-0000-0000-0000-000000000000"
		if err := recoverWith(t, hd); err != nil {
			t.Fatal(err)
		}
		notKilled(t, cmd, child)
	})
	t.Run("refuses a group without its leader, and says so", func(t *testing.T) {
		cmd, hd, child := startGroup(t, "sleep 1000 &\necho $! > \"$1\"\n")
		cmd.Wait() // the leader exits and is reaped; its child stays
		err := recoverWith(t, hd)
		if err == nil || !strings.Contains(err.Error(), "lost its leader") {
			t.Errorf("Recover = %v", err)
		}
		if gone(child) {
			t.Errorf("Recover killed the leaderless group")
		}
	})
	t.Run("a group that ended is fine", func(t *testing.T) {
		cmd, hd, child := startGroup(t, body)
		syscall.Kill(-hd.PGID, syscall.SIGKILL)
		cmd.Wait()
		waitFor(t, "the child is gone", func() bool { return gone(child) })
		if err := recoverWith(t, hd); err != nil {
			t.Error(err)
		}
	})
	for _, bad := range []string{`nope`, `{}`, `{"pgid":1,"boot_id":"x","start_time":1}`} {
		if err := e.Recover(t.Context(), json.RawMessage(bad)); err == nil {
			t.Errorf("Recover(%s) = nil", bad)
		}
	}
}

func TestParseStat(t *testing.T) {
	// Field 2 may hold spaces and parentheses.
	line := "4242 (we ird) (name) S 1 4240 4240 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615\n"
	st, err := parseStat([]byte(line))
	if err != nil || st != (procStat{state: 'S', pgrp: 4240, startTime: 987654}) {
		t.Errorf("parseStat = %+v, %v", st, err)
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 1 2", "1 (x) S 1 x 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) succeeded", bad)
		}
	}
}

func TestNewExec(t *testing.T) {
	rd := testRunDir(t)
	env := Env{RunDir: rd}
	if _, err := NewExec(Pipeline{}, env); err == nil {
		t.Error("NewExec without a command succeeded")
	}
	if _, err := NewExec(Pipeline{Command: []string{"/bin/true"}}, Env{}); err == nil {
		t.Error("NewExec without a run folder succeeded")
	}
	e, err := NewExec(Pipeline{Command: []string{"/etc/gitmon/scripts/deploy.sh", "--fast"}}, env)
	if err != nil || e.Dir != "/etc/gitmon/scripts" || e.KillGrace != DefaultKillGrace || e.RunDir != rd || !slices.Equal(e.Command, []string{"/etc/gitmon/scripts/deploy.sh", "--fast"}) {
		t.Errorf("NewExec = %+v, %v", e, err)
	}
	if e, _ := NewExec(Pipeline{Command: []string{"kubectl"}}, env); e.Dir != "" {
		t.Errorf("Dir = %q for a program looked up in PATH", e.Dir)
	}
	env.WorkDir = "/etc/gitmon"
	if e, _ := NewExec(Pipeline{Command: []string{"/etc/gitmon/scripts/deploy.sh"}}, env); e.Dir != "/etc/gitmon" {
		t.Errorf("Dir = %q, want the WorkDir /etc/gitmon", e.Dir)
	}
}

// BenchmarkExecNoop is the exec runner's own cost per stage: descriptor
// file, pipe, fork/exec of /bin/true, handle, reaping.
func BenchmarkExecNoop(b *testing.B) {
	e := &Exec{RunDir: testRunDir(b), Command: []string{"/bin/true"}}
	req := testRequest()
	h := handleFunc(func(context.Context, json.RawMessage) error { return nil })
	for b.Loop() {
		res, err := e.Run(b.Context(), req, NewOutput(64<<10, []string{"s3cr3t"}), h)
		if err != nil || !res.OK {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkExecBaselineOSExec is the floor BenchmarkExecNoop compares
// with: os/exec running /bin/true, nothing else.
func BenchmarkExecBaselineOSExec(b *testing.B) {
	for b.Loop() {
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
	}
}

type handleFunc func(context.Context, json.RawMessage) error

func (f handleFunc) Save(ctx context.Context, data json.RawMessage) error { return f(ctx, data) }
