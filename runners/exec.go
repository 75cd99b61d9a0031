//go:build linux

package runners

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

func init() {
	Register(KindExec, func(p Pipeline, env Env) (Runner, error) { return NewExec(p, env) })
}

// DefaultKillGrace is how long a cancelled exec stage's process has
// between SIGTERM and SIGKILL.
const DefaultKillGrace = 5 * time.Second

// Exec is the exec runner (SPEC §4): it runs a pipeline's command as an
// argv list, with no shell, in its own process group, with an environment
// of PATH, HOME, the pipeline's env: names and the GITMON_ variables, and
// the descriptor in a 0600 JSON file named by GITMON_DESCRIPTOR, in the
// runner's RunDir, removed when the stage ends.
//
// A stage ends when the command's process (the group leader) exits. The
// rest of its process group is then killed with SIGKILL, so a backgrounded
// child never outlives its stage. A process that leaves the group (setsid,
// setpgid) escapes this, as it would escape any process-group tool; its
// stage still ends, at most KillGrace after the leader, even while it
// holds the output pipe open.
//
// The group is signalled only while its leader is unreaped (waitid with
// WNOWAIT), so its id cannot have been reused by another group.
type Exec struct {
	// Command is the argv: Command[0] is an absolute path or a program
	// looked up in the daemon's PATH.
	Command []string
	// Env are the names of the daemon variables passed through.
	Env []string
	// LookupEnv reads the daemon's environment (default os.LookupEnv).
	LookupEnv func(string) (string, bool)
	// Dir is the working directory; "" is the daemon's own.
	Dir string
	// RunDir holds the descriptor files; Run fails without one.
	RunDir *RunDir
	// KillGrace is the time between SIGTERM and SIGKILL when the stage is
	// cancelled, and the longest wait for the output pipe to close after
	// the group is killed (default DefaultKillGrace).
	KillGrace time.Duration
}

var (
	_ Runner    = (*Exec)(nil)
	_ Recoverer = (*Exec)(nil)
)

// ExecHandle is what the exec runner saves through Handle.Save before it
// waits: the process group, and what proves later that a process with
// that id is still the one gitmon started.
type ExecHandle struct {
	PGID int `json:"pgid"`
	// BootID is /proc/sys/kernel/random/boot_id: a process id means
	// nothing after a reboot.
	BootID string `json:"boot_id"`
	// StartTime is field 22 of /proc/<pgid>/stat: the leader's start
	// time in clock ticks after boot. A reused id has a later one.
	StartTime uint64 `json:"start_time"`
}

// NewExec returns the exec runner of pipeline p. Its working directory is
// env.WorkDir; without one, the folder of Command[0] when that is an
// absolute path (config makes a command such as ./scripts/deploy.sh
// absolute against the config file's folder, so the script runs next to
// itself), and the daemon's otherwise. It needs env.RunDir.
func NewExec(p Pipeline, env Env) (*Exec, error) {
	if len(p.Command) == 0 || p.Command[0] == "" {
		return nil, errors.New("exec: the pipeline has no command")
	}
	if env.RunDir == nil {
		return nil, errors.New("exec: no run folder for the descriptor files")
	}
	e := &Exec{
		Command:   p.Command,
		Env:       p.Env,
		LookupEnv: env.LookupEnv,
		Dir:       env.WorkDir,
		RunDir:    env.RunDir,
		KillGrace: DefaultKillGrace,
	}
	if e.Dir == "" && filepath.IsAbs(p.Command[0]) {
		e.Dir = filepath.Dir(p.Command[0])
	}
	return e, nil
}

// LookCommand resolves an exec pipeline's Command[0] as Run starts it: a
// path (config makes a relative one absolute) must be an executable file,
// and a bare name is looked up in the daemon's PATH.
func LookCommand(name string) (string, error) { return exec.LookPath(name) }

// Run runs the command for one stage. A non-zero exit fails the stage
// with "exit status N" (or the signal that killed it). When ctx is done
// the whole group gets SIGTERM, then SIGKILL after KillGrace, and the
// stage fails with "cancelled: " and ctx's error. Errors are for what
// kept the command from running or from being recorded.
func (e *Exec) Run(ctx context.Context, req *Request, out io.Writer, h Handle) (Result, error) {
	if len(e.Command) == 0 || e.Command[0] == "" {
		return Result{}, errors.New("exec: no command")
	}
	if err := ctx.Err(); err != nil {
		return Result{Message: "cancelled: " + err.Error()}, nil
	}
	if out == nil {
		out = io.Discard
	}
	if e.RunDir == nil {
		return Result{}, errors.New("exec: no run folder for the descriptor file")
	}
	descPath, err := e.RunDir.writeDescriptor(req.Descriptor)
	if err != nil {
		return Result{}, fmt.Errorf("exec: %w", err)
	}
	defer os.Remove(descPath)

	// Our own pipe, not exec's: exec.Cmd.Wait would wait for every
	// process holding the write end, such as a backgrounded child.
	pr, pw, err := os.Pipe()
	if err != nil {
		return Result{}, fmt.Errorf("exec: %w", err)
	}
	cmd := exec.Command(e.Command[0], e.Command[1:]...)
	cmd.Env = e.environ(req, descPath)
	cmd.Dir = e.Dir
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		return Result{}, fmt.Errorf("exec: starting %s: %w", e.Command[0], err)
	}
	pgid := cmd.Process.Pid
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(out, pr) // ends when the pipe closes or pr is closed
	}()
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		waitExitedNoReap(pgid)
	}()

	// end kills what is left of the group while the leader is still
	// unreaped, reaps it, and collects the output.
	end := func() (*os.ProcessState, error) {
		<-exited
		syscall.Kill(-pgid, syscall.SIGKILL)
		werr := cmd.Wait()
		t := time.NewTimer(e.grace())
		select {
		case <-copied:
		case <-t.C: // an escaped process holds the pipe open
		}
		t.Stop()
		pr.Close()
		<-copied
		var exitErr *exec.ExitError
		if werr != nil && !errors.As(werr, &exitErr) {
			return nil, fmt.Errorf("exec: waiting for %s: %w", e.Command[0], werr)
		}
		return cmd.ProcessState, nil
	}

	if err := e.save(ctx, h, pgid); err != nil {
		// Unrecorded, it could not be found after a crash: stop it.
		syscall.Kill(-pgid, syscall.SIGKILL)
		end()
		return Result{}, err
	}

	var cancelErr error
	select {
	case <-exited:
	case <-ctx.Done():
		cancelErr = ctx.Err()
		syscall.Kill(-pgid, syscall.SIGTERM)
		t := time.NewTimer(e.grace())
		select {
		case <-exited:
		case <-t.C:
			syscall.Kill(-pgid, syscall.SIGKILL)
		}
		t.Stop()
	}
	state, err := end()
	switch {
	case err != nil:
		return Result{}, err
	case cancelErr != nil:
		return Result{Message: "cancelled: " + cancelErr.Error()}, nil
	}
	return exitResult(state), nil
}

func (e *Exec) grace() time.Duration {
	if e.KillGrace > 0 {
		return e.KillGrace
	}
	return DefaultKillGrace
}

// save records the process group through h.
func (e *Exec) save(ctx context.Context, h Handle, pgid int) error {
	if h == nil {
		return nil
	}
	boot, err := bootID()
	if err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	st, err := readStat(pgid)
	if err != nil {
		return fmt.Errorf("exec: reading the start time of process %d: %w", pgid, err)
	}
	data, err := json.Marshal(ExecHandle{PGID: pgid, BootID: boot, StartTime: st.startTime})
	if err != nil {
		return err
	}
	if err := h.Save(ctx, data); err != nil {
		return fmt.Errorf("exec: saving the process handle: %w", err)
	}
	return nil
}

func exitResult(s *os.ProcessState) Result {
	ws, ok := s.Sys().(syscall.WaitStatus)
	switch {
	case !ok:
		return Result{OK: s.Success(), Message: s.String()}
	case ws.Exited() && ws.ExitStatus() == 0:
		return Result{OK: true}
	case ws.Exited():
		return Result{Message: fmt.Sprintf("exit status %d", ws.ExitStatus())}
	case ws.Signaled():
		msg := fmt.Sprintf("killed by signal %d (%s)", int(ws.Signal()), ws.Signal())
		if ws.CoreDump() {
			msg += ", core dumped"
		}
		return Result{Message: msg}
	}
	return Result{Message: s.String()}
}

// environ is the command's whole environment (SPEC §4).
func (e *Exec) environ(req *Request, descPath string) []string {
	lookup := e.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	env := make([]string, 0, 16+len(e.Env))
	seen := make(map[string]bool, 2+len(e.Env))
	for _, name := range append([]string{"PATH", "HOME"}, e.Env...) {
		if seen[name] || strings.HasPrefix(name, "GITMON_") {
			continue // GITMON_ names are gitmon's (config rejects them)
		}
		seen[name] = true
		if v, ok := lookup(name); ok {
			env = append(env, name+"="+v)
		}
	}
	return append(env,
		"GITMON_REPOSITORY="+req.Repository,
		"GITMON_ENV="+req.Environment,
		"GITMON_SERVICE="+req.Service,
		"GITMON_VERSION="+req.Version,
		"GITMON_PREVIOUS_VERSION="+req.PreviousVersion,
		"GITMON_COMMIT="+req.Commit,
		"GITMON_AUTHOR="+req.Author,
		"GITMON_COMMITTER="+req.Committer,
		"GITMON_TICKETS="+strings.Join(req.Tickets, ","),
		"GITMON_STAGE="+req.Stage,
		"GITMON_ACTION="+req.Action,
		"GITMON_RUN_ID="+req.RunID,
		"GITMON_DESCRIPTOR="+descPath,
	)
}

// Recover kills, with SIGKILL, the process group a crashed gitmon
// recorded, when its leader is provably the process gitmon started: same
// boot, and a process with the recorded id and start time. A group that
// has ended, or whose id now belongs to another process, is left alone
// and Recover returns nil. A group whose leader has exited but whose
// members still run cannot be proven to be the recorded one; Recover
// leaves it alone too and returns an error naming it.
func (e *Exec) Recover(_ context.Context, handle json.RawMessage) error {
	var hd ExecHandle
	if err := json.Unmarshal(handle, &hd); err != nil {
		return fmt.Errorf("exec: reading the handle: %w", err)
	}
	if hd.PGID <= 1 || hd.BootID == "" {
		return fmt.Errorf("exec: the handle %s names no process group", handle)
	}
	boot, err := bootID()
	if err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	if boot != hd.BootID {
		return nil // rebooted since: nothing of that boot runs
	}
	st, err := readStat(hd.PGID)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if members := groupMembers(hd.PGID); len(members) > 0 {
			return fmt.Errorf("exec: process group %d lost its leader and still has processes %v; not killed, since without the leader the group cannot be proven to be the recorded one", hd.PGID, members)
		}
		return nil
	case err != nil:
		return fmt.Errorf("exec: %w", err)
	case st.startTime != hd.StartTime:
		return nil // the id was reused
	}
	if err := syscall.Kill(-hd.PGID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("exec: killing process group %d: %w", hd.PGID, err)
	}
	return nil
}

// waitExitedNoReap blocks until process pid has exited, leaving it a
// zombie: its id, and so its process group's, stays reserved until
// cmd.Wait reaps it.
func waitExitedNoReap(pid int) error {
	const pPID = 1     // P_PID
	var info [128]byte // siginfo_t
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid), uintptr(unsafe.Pointer(&info[0])), syscall.WEXITED|syscall.WNOWAIT, 0, 0)
		if errno != syscall.EINTR {
			if errno != 0 {
				return errno
			}
			return nil
		}
	}
}

var bootID = sync.OnceValues(func() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("reading the boot id: %w", err)
	}
	return string(bytes.TrimSpace(b)), nil
})

// procStat holds the fields of /proc/<pid>/stat gitmon uses.
type procStat struct {
	state     byte
	pgrp      int
	startTime uint64 // clock ticks after boot
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

// parseStat reads /proc/<pid>/stat. The command name (field 2) is in
// parentheses and may hold spaces and parentheses itself, so fields are
// counted from the last ')'.
func parseStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, errors.New("malformed /proc stat")
	}
	pgrp, err1 := strconv.Atoi(f[5-3])
	start, err2 := strconv.ParseUint(f[22-3], 10, 64)
	if err1 != nil || err2 != nil {
		return procStat{}, errors.New("malformed /proc stat")
	}
	return procStat{state: f[0][0], pgrp: pgrp, startTime: start}, nil
}

// groupMembers returns the live processes of process group pgid.
func groupMembers(pgid int) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(pid); err == nil && st.pgrp == pgid && st.state != 'Z' {
			pids = append(pids, pid)
		}
	}
	return pids
}
