package store

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lifecycle runs one record through Apply, StartRecord, two stages and
// FinishRecord, as serve does for a two-stage release.
func lifecycle(ctx context.Context, s Store, n int, step func(string)) error {
	r := &Record{Repository: "deployments", Environment: "qa", Service: "payments", Action: "deploy",
		Version: fmt.Sprintf("1.0.%d", n), Commit: sha(n), Status: StatusPending, Phase: PhaseQueued}
	if err := s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Branch: "qa", Commit: sha(n),
		Records: []*Record{r}, Services: []Service{{Service: "payments", Present: true}}}); err != nil {
		return err
	}
	step("apply " + r.ID + " " + strconv.Itoa(n))
	now := time.Now()
	if err := s.StartRecord(ctx, r.ID, []Stage{{Name: "deploy", Runner: "exec"}, {Name: "healthcheck", Runner: "http"}}, now); err != nil {
		return err
	}
	step("start " + r.ID)
	for i, name := range []string{"deploy", "healthcheck"} {
		if err := s.UpdateStage(ctx, r.ID, i, Stage{Name: name, Status: StageSucceeded, StartedAt: &now, FinishedAt: &now,
			Output: strings.Repeat("x", 512)}); err != nil {
			return err
		}
		step(fmt.Sprintf("stage %s %d", r.ID, i))
	}
	if err := s.FinishRecord(ctx, r.ID, StatusSucceeded, now); err != nil {
		return err
	}
	step("finish " + r.ID)
	return nil
}

func TestReopenSeesEveryWrite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir, Options{Lock: true})
	must(t, err)
	for n := 1; n <= 20; n++ {
		must(t, lifecycle(ctx, s, n, func(string) {}))
	}
	r := pendingRecord(t, 21, "9.0.0")
	applyRecord(t, s, r)
	must(t, s.AddEvent(ctx, Event{Repository: "deployments", Environment: "qa", Kind: EventPollError, Message: "boom"}))
	must(t, s.Close())

	s = openAt(t, dir, Options{Lock: true})
	rs, err := s.Records(ctx, Filter{})
	must(t, err)
	if len(rs) != 21 || rs[0].ID != r.ID || rs[0].Status != StatusPending {
		t.Fatalf("%d records after reopen", len(rs))
	}
	for _, r := range rs[1:] {
		if r.Status != StatusSucceeded || len(r.Stages) != 2 || r.Stages[1].Status != StageSucceeded {
			t.Errorf("record %s: %s, %d stages", r.ID, r.Status, len(r.Stages))
		}
	}
	br, _ := s.Branch(ctx, "deployments", "qa")
	sv, _ := s.Service(ctx, "deployments", "qa", "payments")
	evs, _ := s.Events(ctx, Filter{})
	if br.LastProcessed != sha(21) || sv.LastGoodCommit != sha(20) || len(evs) != 1 {
		t.Errorf("after reopen: branch %s, last good %s, %d events", br.LastProcessed, sv.LastGoodCommit, len(evs))
	}
}

// TestCrashKeepsAcknowledgedWrites kills a writing process with SIGKILL
// and checks that every write it had acknowledged is there, and that the
// lock died with it.
func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$")
	cmd.Env = append(os.Environ(), "GITMON_STORE_CRASH_DIR="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	var acked []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "ack ") {
			continue
		}
		acked = append(acked, strings.TrimPrefix(line, "ack "))
		if len(acked) == 157 { // mid-lifecycle
			must(t, cmd.Process.Signal(syscall.SIGKILL))
		}
	}
	_ = cmd.Wait()
	if len(acked) < 157 {
		t.Fatalf("helper acknowledged %d writes, then died on its own", len(acked))
	}

	ctx := context.Background()
	s := openAt(t, dir, Options{Lock: true}) // the lock died with the process
	want := map[string]string{}              // record → status its acknowledged steps imply
	stages := map[string]int{}
	lastCommit := 0
	for _, a := range acked {
		f := strings.Fields(a)
		switch f[0] {
		case "apply":
			want[f[1]] = StatusPending
			lastCommit, _ = strconv.Atoi(f[2])
		case "start":
			want[f[1]] = StatusRunning
		case "stage":
			stages[f[1]]++
		case "finish":
			want[f[1]] = StatusSucceeded
		}
	}
	for id, status := range want {
		r, err := s.Record(ctx, id)
		if err != nil {
			t.Errorf("acknowledged record %s: %v", id, err)
			continue
		}
		rank := map[string]int{StatusPending: 0, StatusRunning: 1, StatusSucceeded: 2}
		if rank[r.Status] < rank[status] {
			t.Errorf("record %s is %s, acknowledged %s", id, r.Status, status)
		}
		done := 0
		for _, st := range r.Stages {
			if st.Status == StageSucceeded {
				done++
			}
		}
		if done < stages[id] {
			t.Errorf("record %s has %d stages done, %d acknowledged", id, done, stages[id])
		}
	}
	br, err := s.Branch(ctx, "deployments", "qa")
	must(t, err)
	if n, _ := strconv.ParseInt(br.LastProcessed, 16, 64); int(n) < lastCommit {
		t.Errorf("branch at %s, acknowledged commit %d", br.LastProcessed, lastCommit)
	}
	// Whatever was written after the last acknowledgement is whole.
	rs, err := s.Records(ctx, Filter{})
	must(t, err)
	if n, _ := strconv.ParseInt(br.LastProcessed, 16, 64); len(rs) != int(n) {
		t.Errorf("%d records, branch at commit %d: Apply was not atomic", len(rs), n)
	}
}

// TestCrashHelper is the process TestCrashKeepsAcknowledgedWrites kills.
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv("GITMON_STORE_CRASH_DIR")
	if dir == "" {
		return // only a child process of TestCrash runs this
	}
	ctx := context.Background()
	s, err := Open(ctx, dir, Options{Lock: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	w := bufio.NewWriter(os.Stdout)
	for n := 1; ; n++ {
		if err := lifecycle(ctx, s, n, func(step string) {
			fmt.Fprintln(w, "ack "+step)
			_ = w.Flush()
		}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
	}
}

func TestLock(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	serve, err := Open(ctx, dir, Options{Lock: true})
	must(t, err)
	defer serve.Close()
	pid, err := os.ReadFile(filepath.Join(dir, LockFile))
	must(t, err)
	if strings.TrimSpace(string(pid)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("lock file holds %q", pid)
	}

	if s, err := Open(ctx, dir, Options{Lock: true}); !errors.Is(err, ErrLocked) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("second Open with Lock = %v, want ErrLocked", err)
	}

	// history and resume work beside serve.
	r := pendingRecord(t, 1, "1.0.0")
	must(t, serve.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Commit: sha(1), Records: []*Record{r},
		Pause: PauseForcePush, Anchor: sha(0)}))
	history := openAt(t, dir, Options{ReadOnly: true})
	if got := get(t, history, r.ID); got.Status != StatusPending {
		t.Errorf("history sees %s", got.Status)
	}
	resume := openAt(t, dir, Options{})
	resumed, err := resume.Resume(ctx, "qa", "", "carol")
	must(t, err)
	if len(resumed) != 1 {
		t.Errorf("resumed %d branches", len(resumed))
	}
	must(t, resume.Close())
	if br, _ := serve.Branch(ctx, "deployments", "qa"); br.Paused != "" {
		t.Errorf("serve still sees the pause: %+v", br)
	}
	if evs, _ := history.Events(ctx, Filter{}); len(evs) != 1 || evs[0].Actor != "carol" {
		t.Errorf("history sees events %+v", evs)
	}

	must(t, serve.Close())
	again := openAt(t, dir, Options{Lock: true})
	must(t, again.Close())
}

func TestOpenCreatesPrivateFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "state")
	openAt(t, dir, Options{})
	fi, err := os.Stat(dir)
	must(t, err)
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("state folder mode %v, want 0700", fi.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(dir, DBFile)); err != nil {
		t.Error(err)
	}
}

func TestReadOnly(t *testing.T) {
	ctx := context.Background()
	missing := filepath.Join(t.TempDir(), "state")
	if _, err := Open(ctx, missing, Options{ReadOnly: true}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadOnly Open of a missing folder = %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadOnly Open created the folder: %v", err)
	}

	dir := t.TempDir()
	w := openAt(t, dir, Options{})
	ro := openAt(t, dir, Options{ReadOnly: true})
	for name, err := range map[string]error{
		"Apply":        ro.Apply(ctx, Batch{Repository: "r", Environment: "e"}),
		"AddEvent":     ro.AddEvent(ctx, Event{Kind: EventBaseline}),
		"Decide":       ro.Decide(ctx, &Record{ID: "x", Status: StatusPending}, nil),
		"StartRecord":  ro.StartRecord(ctx, "x", nil, t0),
		"UpdateStage":  ro.UpdateStage(ctx, "x", 0, Stage{}),
		"FinishRecord": ro.FinishRecord(ctx, "x", StatusFailed, t0),
	} {
		if !errors.Is(err, ErrReadOnly) {
			t.Errorf("read-only %s = %v, want ErrReadOnly", name, err)
		}
	}
	if _, err := ro.Resume(ctx, "qa", "", "x"); !errors.Is(err, ErrReadOnly) {
		t.Errorf("read-only Resume = %v", err)
	}
	// It sees what the writer commits after it opened.
	applyRecord(t, w, pendingRecord(t, 1, "1.0.0"))
	if p, err := ro.Pending(ctx); err != nil || len(p) != 1 {
		t.Errorf("read-only Pending = %d, %v", len(p), err)
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for i := range 3 {
		s := openAt(t, dir, Options{})
		if i == 0 {
			applyRecord(t, s, pendingRecord(t, 1, "1.0.0"))
		}
		var n, max int
		must(t, s.r.QueryRowContext(ctx, `SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&n, &max))
		if n != len(migrations) || max != len(migrations) {
			t.Errorf("open %d: %d migrations recorded, newest %d; want %d", i, n, max, len(migrations))
		}
		if p, err := s.Pending(ctx); err != nil || len(p) != 1 {
			t.Errorf("open %d: %d pending, %v", i, len(p), err)
		}
		must(t, s.Close())
	}
}

func TestMigrationsConcurrentOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	must(t, os.MkdirAll(dir, 0o700))
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			s, err := Open(ctx, dir, Options{})
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
		}
	}
	s := openAt(t, dir, Options{ReadOnly: true})
	var n int
	must(t, s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n))
	if n != len(migrations) {
		t.Errorf("%d migrations recorded", n)
	}
}

func TestSchemaVersions(t *testing.T) {
	ctx := context.Background()

	newer := t.TempDir()
	s := openAt(t, newer, Options{})
	_, err := s.w.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', '')`, len(migrations)+1)
	must(t, err)
	must(t, s.Close())
	for _, opts := range []Options{{}, {Lock: true}, {ReadOnly: true}} {
		if s, err := Open(ctx, newer, opts); !errors.Is(err, ErrSchemaTooNew) {
			if s != nil {
				s.Close()
			}
			t.Errorf("Open(%+v) of a newer schema = %v, want ErrSchemaTooNew", opts, err)
		}
	}

	// An older schema (the first migration only): a writable Open
	// upgrades it, a ReadOnly one can't.
	older := t.TempDir()
	db, err := sql.Open("sqlite", filepath.Join(older, DBFile))
	must(t, err)
	_, err = db.ExecContext(ctx, createMigrationsTable)
	must(t, err)
	_, err = db.ExecContext(ctx, migrations[0].sql)
	must(t, err)
	_, err = db.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (1, ?, '')`, migrations[0].name)
	must(t, err)
	must(t, db.Close())
	if _, err := Open(ctx, older, Options{ReadOnly: true}); !errors.Is(err, ErrSchemaTooOld) {
		t.Errorf("ReadOnly Open of an older schema = %v, want ErrSchemaTooOld", err)
	}
	s = openAt(t, older, Options{})
	applyRecord(t, s, pendingRecord(t, 1, "1.0.0"))
	must(t, s.Close())
	openAt(t, older, Options{ReadOnly: true})
}

// TestConcurrentReaders reads from goroutines, from a second read-only
// store and from a second writable one (as resume does) while serve's
// store writes; every read must see whole transactions.
func TestConcurrentReaders(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	serve := openAt(t, dir, Options{Lock: true})
	history := openAt(t, dir, Options{ReadOnly: true})
	resume := openAt(t, dir, Options{})
	const lifecycles = 40

	done := make(chan struct{})
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	check := func(rs []*Record) error {
		for _, r := range rs {
			// StartRecord writes the status and both stages at once.
			if want := map[bool]int{true: 0, false: 2}[r.Status == StatusPending]; len(r.Stages) != want {
				return fmt.Errorf("record %s %s with %d stages", r.ID, r.Status, len(r.Stages))
			}
		}
		return nil
	}
	for _, s := range []*SQLite{serve, serve, history, history} {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				rs, err := s.Records(ctx, Filter{Environment: "qa"})
				if err == nil {
					err = check(rs)
				}
				if err == nil {
					rs, err = s.Running(ctx)
				}
				if err == nil {
					_, err = s.Pending(ctx)
				}
				if err == nil {
					_, err = s.Service(ctx, "deployments", "qa", "payments")
				}
				if err == nil {
					_, err = s.Events(ctx, Filter{Limit: 10})
				}
				if err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			if _, err := resume.Resume(ctx, "qa", "", "carol"); err != nil {
				errc <- fmt.Errorf("resume: %w", err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	for n := 1; n <= lifecycles; n++ {
		if err := lifecycle(ctx, serve, n, func(string) {}); err != nil {
			t.Errorf("lifecycle %d: %v", n, err)
			break
		}
	}
	close(done)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	rs, err := history.Records(ctx, Filter{Status: []string{StatusSucceeded}})
	must(t, err)
	if len(rs) != lifecycles {
		t.Errorf("%d succeeded records, want %d", len(rs), lifecycles)
	}
}
