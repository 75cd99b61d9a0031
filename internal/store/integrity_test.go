package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// healthyDB writes a state with n finished records and closes it, so
// that gitmon.db holds every page and no -wal is left; it returns the
// database's bytes.
func healthyDB(t *testing.T, dir string, n int) []byte {
	t.Helper()
	s := openAt(t, dir, Options{Lock: true})
	for i := 1; i <= n; i++ {
		must(t, lifecycle(context.Background(), s, i, func(string) {}))
	}
	must(t, s.Close())
	b, err := os.ReadFile(filepath.Join(dir, DBFile))
	must(t, err)
	if _, err := os.Stat(filepath.Join(dir, DBFile+"-wal")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a closed store left its -wal: %v", err)
	}
	return b
}

// pageSize is the page size in a SQLite header.
func pageSize(db []byte) int { return int(binary.BigEndian.Uint16(db[16:18])) }

// listing is a folder's entries with their sizes and content hashes.
func listing(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	es, err := os.ReadDir(dir)
	must(t, err)
	for _, e := range es {
		if e.IsDir() {
			out[e.Name()] = "dir"
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		must(t, err)
		out[e.Name()] = fmt.Sprintf("%d bytes %x", len(b), sha256.Sum256(b))
	}
	return out
}

// TestOpenRefusesADamagedState: a database that is there but cannot be
// read stops every Open (serve's, resume's, history's) with ErrDamaged
// naming the file and what is wrong. Nothing is taken for a fresh start,
// gitmon.db is never written, and the checks that need no SQLite create
// nothing at all.
func TestOpenRefusesADamagedState(t *testing.T) {
	good := healthyDB(t, t.TempDir(), 40)
	ps := pageSize(good)
	if len(good) < 8*ps {
		t.Fatalf("the healthy database has only %d pages", len(good)/ps)
	}
	// A log from a live store, for the cases that put one beside a file.
	live := t.TempDir()
	s := openAt(t, live, Options{Lock: true})
	must(t, lifecycle(context.Background(), s, 1, func(string) {}))
	wal, err := os.ReadFile(filepath.Join(live, DBFile+"-wal"))
	must(t, err)
	must(t, s.Close())
	if len(wal) == 0 {
		t.Fatal("the live store's -wal is empty")
	}
	corrupt := slices.Clone(good)
	mid := len(good) / ps / 2
	for i := mid * ps; i < (mid+1)*ps; i++ {
		corrupt[i] = 0xA5
	}
	otherApp := filepath.Join(t.TempDir(), "other.db")
	db, err := sql.Open("sqlite", otherApp)
	must(t, err)
	_, err = db.Exec(`CREATE TABLE notes (body TEXT)`)
	must(t, err)
	must(t, db.Close())
	other, err := os.ReadFile(otherApp)
	must(t, err)

	for _, tc := range []struct {
		name  string
		db    []byte // nil: no gitmon.db
		dbDir bool   // gitmon.db is a folder
		wal   []byte // nil: no -wal
		want  string
		// sqlite: the verdict needs SQLite, which may add its -wal and
		// -shm (and serve its lock file); the others create nothing.
		sqlite bool
	}{
		{name: "empty", db: []byte{}, want: "empty (0 bytes)"},
		{name: "empty, with an empty log", db: []byte{}, wal: []byte{}, want: "empty (0 bytes)"},
		{name: "empty, with a log", db: []byte{}, wal: wal, want: "cannot replay onto an empty file"},
		{name: "a log without its database", wal: wal, want: "missing, while its write-ahead log"},
		{name: "a text file", db: []byte("records:\n  - payments 1.4.2 succeeded\n"), want: "not a SQLite database"},
		{name: "one byte", db: []byte("x"), want: "not a SQLite database"},
		{name: "cut inside the header", db: good[:60], want: "truncated: 60 bytes, shorter than a SQLite header"},
		{name: "cut inside a page", db: good[:len(good)-100], want: "is not a whole number of"},
		{name: "cut at a page", db: good[:len(good)/2/ps*ps], want: "truncated: its header counts"},
		{name: "bad page size", db: slices.Concat(good[:16], []byte{0x03, 0x00}, good[18:]), want: "page size of 768"},
		{name: "a damaged page", db: corrupt, want: "failed: *** in database main *** Tree", sqlite: true},
		{name: "a damaged schema page", db: slices.Concat(good[:100], bytes.Repeat([]byte{0xA5}, ps-100), good[ps:]), want: "database disk image is malformed", sqlite: true},
		{name: "another program's database", db: other, want: "not a gitmon state database", sqlite: true},
		{name: "a folder", dbDir: true, want: "not a regular file"},
	} {
		for _, opts := range []Options{{Lock: true}, {}, {ReadOnly: true}} {
			t.Run(fmt.Sprintf("%s/lock=%v,readonly=%v", tc.name, opts.Lock, opts.ReadOnly), func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, DBFile)
				switch {
				case tc.dbDir:
					must(t, os.Mkdir(path, 0o700))
				case tc.db != nil:
					must(t, os.WriteFile(path, tc.db, 0o600))
				}
				if tc.wal != nil {
					must(t, os.WriteFile(path+"-wal", tc.wal, 0o600))
				}
				before := listing(t, dir)

				s, err := Open(context.Background(), dir, opts)
				if err == nil {
					s.Close()
				}
				if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Open = %v\nwant ErrDamaged naming %s and %q", err, path, tc.want)
				}
				if errors.Is(err, fs.ErrNotExist) {
					t.Errorf("a damaged state reads as a missing one (plan would take it for no state): %v", err)
				}
				after := listing(t, dir)
				for name, was := range before {
					if after[name] != was {
						t.Errorf("%s changed: %s, was %s", name, after[name], was)
					}
				}
				for name := range after {
					if _, ok := before[name]; ok {
						continue
					}
					if !tc.sqlite || (name != DBFile+"-wal" && name != DBFile+"-shm" && name != LockFile) {
						t.Errorf("Open created %s beside a damaged database", name)
					}
				}
			})
		}
	}
}

// TestOpenAfterACrash: the files a SIGKILLed serve leaves (gitmon.db, a
// non-empty -wal holding the newest transactions, and -shm) are a healthy
// state, not a damaged one, and nothing acknowledged is lost.
func TestOpenAfterACrash(t *testing.T) {
	ctx := context.Background()
	live := t.TempDir()
	s := openAt(t, live, Options{Lock: true})
	for n := 1; n <= 5; n++ {
		must(t, lifecycle(ctx, s, n, func(string) {}))
	}
	// Copy the files as they are while the store is still open: what a
	// crash leaves on disk.
	image := t.TempDir()
	for _, name := range []string{DBFile, DBFile + "-wal", DBFile + "-shm"} {
		b, err := os.ReadFile(filepath.Join(live, name))
		must(t, err)
		if name == DBFile+"-wal" && len(b) == 0 {
			t.Fatal("the live store's -wal is empty: the image would not test a log")
		}
		must(t, os.WriteFile(filepath.Join(image, name), b, 0o600))
	}
	for _, opts := range []Options{{ReadOnly: true}, {Lock: true}} {
		st := openAt(t, image, opts)
		rs, err := st.Records(ctx, Filter{})
		must(t, err)
		if len(rs) != 5 {
			t.Errorf("Open(%+v) of a crash image: %d records, want 5", opts, len(rs))
		}
		must(t, st.Close())
	}
}

// TestFreshStartLeavesNoPartialDatabase: a fresh start builds the
// database under another name, so leftovers of a fresh start that
// crashed are cleared, and no half-made gitmon.db is ever taken for a
// state.
func TestFreshStartLeavesNoPartialDatabase(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, DBFile+newSuffix)
	must(t, os.WriteFile(tmp, []byte("half a database"), 0o644))
	must(t, os.WriteFile(tmp+"-wal", []byte("half a log"), 0o644))
	s := openAt(t, dir, Options{Lock: true})
	applyRecord(t, s, pendingRecord(t, 1, "1.0.0"))
	must(t, s.Close())
	for _, p := range []string{tmp, tmp + "-wal", tmp + "-shm"} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s is left over: %v", filepath.Base(p), err)
		}
	}
	r := openAt(t, dir, Options{ReadOnly: true})
	if p, err := r.Pending(context.Background()); err != nil || len(p) != 1 {
		t.Errorf("reopened fresh state: %d pending, %v", len(p), err)
	}
}

// TestStateFilesArePrivate: the database, its -wal and -shm, and the lock
// file are 0600 and the folder 0700, also under a umask that lets anyone
// read, and also when an older gitmon left them 0644.
func TestStateFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	ctx := context.Background()

	check := func(t *testing.T, dir string) {
		t.Helper()
		for name, want := range map[string]fs.FileMode{".": 0o700, DBFile: 0o600, DBFile + "-wal": 0o600, DBFile + "-shm": 0o600, LockFile: 0o600} {
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if got := fi.Mode().Perm(); got != want {
				t.Errorf("%s is %v, want %v", name, got, want)
			}
		}
	}
	t.Run("fresh", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "state")
		s := openAt(t, dir, Options{Lock: true})
		applyRecord(t, s, pendingRecord(t, 1, "1.0.0"))
		check(t, dir)
	})
	t.Run("left 0644 by an older gitmon", func(t *testing.T) {
		dir := t.TempDir()
		must(t, os.Chmod(dir, 0o700))
		healthyDB(t, dir, 1)
		for _, name := range []string{DBFile, LockFile} {
			must(t, os.Chmod(filepath.Join(dir, name), 0o644))
		}
		s := openAt(t, dir, Options{Lock: true})
		must(t, s.AddEvent(ctx, Event{Repository: "deployments", Environment: "qa", Kind: EventPollError, Message: "x"}))
		check(t, dir)
	})
}

// BenchmarkOpenCheck measures what the damage check adds to opening a
// state of n records, as history and serve do: "open" is a whole
// ReadOnly Open (inspect, quick_check, schema), "quick_check" the check
// alone on an open store, and "records" the baseline of one page of
// history (50 records) read from the same store.
func BenchmarkOpenCheck(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		dir := b.TempDir()
		ctx := context.Background()
		s, err := Open(ctx, dir, Options{Lock: true, synchronous: "OFF"})
		if err != nil {
			b.Fatal(err)
		}
		for i := 1; i <= n; i++ {
			if err := lifecycle(ctx, s, i, func(string) {}); err != nil {
				b.Fatal(err)
			}
		}
		s.Close()
		fi, _ := os.Stat(filepath.Join(dir, DBFile))
		b.Logf("%d records: %d MiB", n, fi.Size()>>20)
		ro, err := Open(ctx, dir, Options{ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("records=%d/open", n), func(b *testing.B) {
			for b.Loop() {
				s, err := Open(ctx, dir, Options{ReadOnly: true})
				if err != nil {
					b.Fatal(err)
				}
				s.Close()
			}
		})
		b.Run(fmt.Sprintf("records=%d/quick_check", n), func(b *testing.B) {
			for b.Loop() {
				if err := check(ctx, ro.r, ro.path); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("records=%d/records", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := ro.Records(ctx, Filter{Limit: 50}); err != nil {
					b.Fatal(err)
				}
			}
		})
		ro.Close()
	}
}
