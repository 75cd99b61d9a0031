package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver (pure Go)
)

// DBFile is the database's file name inside the state folder.
const DBFile = "gitmon.db"

// LockFile is the file inside the state folder that Open with Lock holds.
const LockFile = "lock"

// ErrReadOnly is returned by the write methods of a store opened ReadOnly.
var ErrReadOnly = errors.New("store is open read-only")

// Options configure Open.
type Options struct {
	// Lock takes an exclusive, non-blocking lock on the state folder, as
	// serve does: a second Open with Lock fails with ErrLocked until the
	// first store is closed. Opens without Lock (history, plan, resume)
	// work beside it.
	Lock bool
	// ReadOnly opens an existing database for reading only (history,
	// plan): it creates nothing, migrates nothing, and its write methods
	// return ErrReadOnly. A missing database is an error that wraps
	// fs.ErrNotExist.
	ReadOnly bool
	// Now is the clock for the times the store assigns (CreatedAt, event
	// times, superseded and pause times); time.Now when nil.
	Now func() time.Time

	// synchronous overrides PRAGMA synchronous (tests and benchmarks).
	synchronous string
}

// SQLite is the embedded Store: one SQLite database in WAL mode in the state
// folder. Writes go through a single connection, so they are serialised in
// the process; reads use a pool of read-only connections and never wait
// for a writer. Other processes (history, plan, resume) may open the same
// database meanwhile: their reads see committed state, and their writes
// wait up to five seconds for serve's transactions.
type SQLite struct {
	w *sql.DB // nil when read-only
	r *sql.DB
	// ws and rs keep the statements of w and r prepared.
	ws, rs *stmtCache
	lock   *os.File
	now    func() time.Time
	path   string
}

var _ Store = (*SQLite)(nil)

// Open opens the store in dir, creating dir (0700) and the database
// unless opts.ReadOnly, and applying pending migrations. A database
// written by a newer gitmon is refused with an error wrapping
// ErrSchemaTooNew.
//
// A missing database is a fresh start: Open builds it whole under a
// temporary name, migrated, and links it in place, so that a crash never
// leaves a half-made one behind. A database that is there but cannot be
// read (empty, truncated, not SQLite, failing PRAGMA quick_check, not
// gitmon's) is refused with an error wrapping ErrDamaged, and left as it
// is. The database, its -wal and -shm files and the lock file are 0600.
func Open(ctx context.Context, dir string, opts Options) (_ *SQLite, err error) {
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s := &SQLite{now: opts.Now, path: filepath.Join(dir, DBFile)}
	if s.now == nil {
		s.now = time.Now
	}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()

	exists, err := inspect(s.path)
	if err != nil {
		return nil, err
	}
	if opts.ReadOnly {
		if !exists {
			return nil, fmt.Errorf("open store: %w", &fs.PathError{Op: "open", Path: s.path, Err: fs.ErrNotExist})
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if opts.Lock {
		if s.lock, err = lockDir(filepath.Join(dir, LockFile)); err != nil {
			return nil, err
		}
		if err := s.lock.Chmod(0o600); err != nil {
			return nil, fmt.Errorf("lock state folder: %w", err)
		}
	}

	sync := opts.synchronous
	if sync == "" {
		sync = "FULL"
	}
	if !exists {
		if err := create(ctx, s.path, sync, s.now); err != nil {
			return nil, err
		}
	}

	s.r, err = sql.Open("sqlite", dsn(s.path, url.Values{
		"mode":    {"rw"}, // never create the file
		"_pragma": {"busy_timeout(5000)", "foreign_keys(1)", "query_only(1)"},
	}))
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s.r.SetMaxOpenConns(4)
	s.r.SetMaxIdleConns(4)
	s.rs = newStmtCache(s.r)
	if err := check(ctx, s.r, s.path); err != nil {
		return nil, err
	}
	if opts.ReadOnly {
		if err := checkSchema(ctx, s.r); err != nil {
			return nil, err
		}
		return s, nil
	}

	s.w, err = sql.Open("sqlite", writeDSN(s.path, sync))
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	// One writer: SQLite admits one at a time anyway, and queueing in
	// database/sql is cheaper and fairer than the busy handler.
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxIdleTime(0)
	s.w.SetConnMaxLifetime(0)
	s.ws = newStmtCache(s.w)
	if err := s.w.PingContext(ctx); err != nil {
		return nil, classify(s.path, err)
	}
	// A database made by an older gitmon, or copied in, may be 0644:
	// SQLite gives its -wal and -shm files the database's mode.
	if err := private(s.path); err != nil {
		return nil, err
	}
	if err := migrate(ctx, s.w, s.now); err != nil {
		return nil, err
	}
	return s, nil
}

// writeDSN is the data source of a write connection to path.
func writeDSN(path, sync string) string {
	return dsn(path, url.Values{
		"_txlock": {"immediate"},
		"_pragma": {"busy_timeout(5000)", "journal_mode(WAL)", "synchronous(" + sync + ")", "foreign_keys(1)"},
	})
}

// private makes the database at path and its -wal and -shm files 0600.
func private(path string) error {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("open store: %w", err)
		}
	}
	return nil
}

func dsn(path string, q url.Values) string {
	return (&url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: q.Encode()}).String()
}

// Close closes the database and releases the lock.
func (s *SQLite) Close() error {
	var errs []error
	if s.rs != nil {
		s.rs.close()
	}
	if s.ws != nil {
		s.ws.close()
	}
	if s.r != nil {
		errs = append(errs, s.r.Close())
		s.r = nil
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
		s.w = nil
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Close()) // closing the descriptor releases the flock
		s.lock = nil
	}
	return errors.Join(errs...)
}

// write runs fn in one immediate transaction on the write connection.
func (s *SQLite) write(ctx context.Context, fn func(tx *cachedTx) error) error {
	if s.w == nil {
		return ErrReadOnly
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	ctxTx := &cachedTx{Tx: tx, cache: s.ws}
	if err := fn(ctxTx); err != nil {
		_ = tx.Rollback()
		return err
	}
	err = tx.Commit()
	s.ws.prepare(ctx, ctxTx.missed)
	return err
}

// read runs fn in one read transaction, so that its queries see one
// snapshot.
func (s *SQLite) read(ctx context.Context, fn func(tx *cachedTx) error) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	ctxTx := &cachedTx{Tx: tx, cache: s.rs}
	err = fn(ctxTx)
	_ = tx.Rollback()
	s.rs.prepare(ctx, ctxTx.missed)
	return err
}
