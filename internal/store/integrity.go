package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrDamaged is returned by Open for a state folder whose database exists
// but cannot be read as gitmon's: empty, truncated, not a SQLite file, or
// failing SQLite's integrity check. Such a state is never taken for a
// fresh start: that would lose its history and skip every commit pushed
// since its last processed one. Open creates nothing beside it and never
// writes to it.
var ErrDamaged = errors.New("the state database is damaged")

// sqliteMagic starts every SQLite database file.
const sqliteMagic = "SQLite format 3\x00"

// sqliteHeaderSize is the length of a SQLite file's header.
const sqliteHeaderSize = 100

// damaged is the error of a database at path that cannot be read.
func damaged(path, format string, args ...any) error {
	return fmt.Errorf("open store: %s: %s: %w (gitmon never starts afresh over it: restore it from a backup, or move it away to start with no history)",
		path, fmt.Sprintf(format, args...), ErrDamaged)
}

// inspect looks at the database file at path and its write-ahead log
// before SQLite opens them, reading only. exists is false for a state
// without a database, which is a fresh start. A file that is there but
// cannot be a healthy database is ErrDamaged: empty, shorter than its
// header, not a SQLite file, or cut short of the pages its header counts.
// While a non-empty -wal lies beside it, the file alone may lag behind
// (the log holds the newest pages), so only SQLite's own check (check)
// judges its length; a 0-byte file beside a log is damaged all the same,
// since SQLite would delete the log of an empty file.
func inspect(path string) (exists bool, err error) {
	walSize := int64(0)
	if fi, err := os.Stat(path + "-wal"); err == nil {
		walSize = fi.Size()
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if walSize > 0 {
			return false, damaged(path, "missing, while its write-ahead log %s-wal (%d bytes) is there", path, walSize)
		}
		return false, nil
	case err != nil:
		return false, fmt.Errorf("open store: %w", err)
	case !fi.Mode().IsRegular():
		return true, damaged(path, "not a regular file (%s)", fi.Mode().Type())
	case fi.Size() == 0 && walSize == 0:
		return true, damaged(path, "empty (0 bytes)")
	case fi.Size() == 0:
		// Not empty: the log may hold pages. But SQLite cannot replay a
		// log onto an empty file; opening it would delete the log.
		return true, damaged(path, "0 bytes, beside a write-ahead log %s-wal of %d bytes that SQLite cannot replay onto an empty file", path, walSize)
	}

	f, err := os.Open(path)
	if err != nil {
		return true, fmt.Errorf("open store: %w", err)
	}
	defer f.Close()
	hdr := make([]byte, sqliteHeaderSize)
	n, err := io.ReadFull(f, hdr)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return true, fmt.Errorf("open store: %w", err)
	}
	hdr = hdr[:n]
	if !strings.HasPrefix(string(hdr), sqliteMagic[:min(len(hdr), len(sqliteMagic))]) {
		return true, damaged(path, "not a SQLite database (it does not start with %q)", strings.TrimSuffix(sqliteMagic, "\x00"))
	}
	if n < sqliteHeaderSize {
		return true, damaged(path, "truncated: %d bytes, shorter than a SQLite header (%d bytes)", n, sqliteHeaderSize)
	}
	pageSize := int64(binary.BigEndian.Uint16(hdr[16:18]))
	if pageSize == 1 {
		pageSize = 65536
	}
	if pageSize < 512 || pageSize&(pageSize-1) != 0 {
		return true, damaged(path, "not a SQLite database (its header gives a page size of %d)", pageSize)
	}
	if walSize > 0 {
		return true, nil
	}
	size := fi.Size()
	if size%pageSize != 0 {
		return true, damaged(path, "truncated: %d bytes is not a whole number of %d-byte pages", size, pageSize)
	}
	// The page count at offset 28 is valid when the change counter at 24
	// equals the version-valid-for number at 92 (SQLite file format §1.3).
	if pages := int64(binary.BigEndian.Uint32(hdr[28:32])); pages > 0 && string(hdr[24:28]) == string(hdr[92:96]) && pages*pageSize > size {
		return true, damaged(path, "truncated: its header counts %d pages of %d bytes (%d bytes), the file has %d", pages, pageSize, pages*pageSize, size)
	}
	return true, nil
}

// quickCheckMessages is how many of quick_check's problems an error names.
const quickCheckMessages = 5

// check is SQLite's verdict on an existing database, through db (a read
// connection): PRAGMA quick_check passes, and the file is gitmon's (it
// holds schema_migrations with at least one migration; Open creates a
// database whole, migrated, before giving it its name). A damaged file is
// ErrDamaged; other failures, such as a busy database, are returned as
// they are.
func check(ctx context.Context, db *sql.DB, path string) error {
	rows, err := db.QueryContext(ctx, fmt.Sprintf("PRAGMA quick_check(%d)", quickCheckMessages))
	if err != nil {
		return classify(path, err)
	}
	var msgs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			rows.Close()
			return classify(path, err)
		}
		msgs = append(msgs, strings.Join(strings.Fields(m), " "))
	}
	// quick_check may stop with SQLITE_CORRUPT after naming the first
	// problems: name them rather than the bare error.
	rowsErr := errors.Join(rows.Err(), rows.Close())
	if len(msgs) > 0 && (len(msgs) != 1 || msgs[0] != "ok") {
		return damaged(path, "SQLite's integrity check (PRAGMA quick_check) failed: %s", strings.Join(msgs, "; "))
	}
	if rowsErr != nil {
		return classify(path, rowsErr)
	}
	if len(msgs) != 1 {
		return damaged(path, "SQLite's integrity check (PRAGMA quick_check) failed: no verdict")
	}
	var tables, version int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&tables); err != nil {
		return classify(path, err)
	}
	if tables == 0 {
		return damaged(path, "not a gitmon state database (it has no schema_migrations table)")
	}
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&version); err != nil {
		return classify(path, err)
	}
	if version == 0 {
		return damaged(path, "not a gitmon state database (schema_migrations is empty)")
	}
	return nil
}

// classify turns SQLite's "corrupt" and "not a database" results into
// ErrDamaged, by result code.
func classify(path string, err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
			return damaged(path, "%v", err)
		}
	}
	return fmt.Errorf("open store: check %s: %w", path, err)
}
