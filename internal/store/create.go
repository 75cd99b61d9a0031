package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// newSuffix names the database while create builds it.
const newSuffix = ".new"

// create makes a fresh, migrated database at path without ever showing a
// partial one there: it builds it at path+".new" (0600, whatever the
// umask), closes it (which folds its write-ahead log in), syncs it, and
// renames it to path. A crash at any point leaves either no database (the
// next Open starts afresh again, removing the leftovers) or a whole one.
// Processes that start afresh at once (serve, resume) take turns on the
// state folder's creation lock; the later ones find the database made.
func create(ctx context.Context, path, sync string, now func() time.Time) (err error) {
	unlock, err := lockCreate(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("create store: %w", err)
	}
	defer unlock()
	if _, err := os.Lstat(path); err == nil {
		return nil // made meanwhile; Open checks it
	}
	tmp := path + newSuffix
	for _, p := range []string{tmp, tmp + "-wal", tmp + "-shm", tmp + "-journal"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("create store: %w", err)
		}
	}
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create store: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("create store: %w", err)
	}
	db, err := sql.Open("sqlite", writeDSN(tmp, sync))
	if err != nil {
		return fmt.Errorf("create store: %w", err)
	}
	db.SetMaxOpenConns(1)
	err = migrate(ctx, db, now)
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("create store: %w", cerr)
	}
	if err != nil {
		return err
	}
	if err := syncFile(tmp); err != nil {
		return fmt.Errorf("create store: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("create store: %w", err)
	}
	if err := syncFile(filepath.Dir(path)); err != nil {
		return fmt.Errorf("create store: %w", err)
	}
	return nil
}

// syncFile flushes a file, or a folder's entries, to disk.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
