package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrSchemaTooNew is returned by Open for a database that a newer gitmon
// has migrated past what this one knows.
var ErrSchemaTooNew = errors.New("database schema is newer than this gitmon")

// ErrSchemaTooOld is returned by a ReadOnly Open for a database that needs
// migrations, which only a writable Open applies.
var ErrSchemaTooOld = errors.New("database schema is older than this gitmon")

//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations are the embedded migrations/NNNN_name.sql, in order. Their
// versions must be 1, 2, 3...: a gap is a programmer error.
var migrations = mustLoadMigrations()

func mustLoadMigrations() []migration {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		panic(err)
	}
	var ms []migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			panic("store: migration file " + e.Name() + " is not NNNN_name.sql")
		}
		b, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			panic(err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			panic(fmt.Sprintf("store: migration %d is missing", i+1))
		}
	}
	return ms
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at TEXT NOT NULL
)`

// migrate applies the pending migrations, each in its own immediate
// transaction that first checks the version again, so two processes
// opening the same database at once apply each migration once.
func migrate(ctx context.Context, db *sql.DB, now func() time.Time) error {
	for {
		done, err := migrateOne(ctx, db, now)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

func migrateOne(ctx context.Context, db *sql.DB, now func() time.Time) (done bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("migrate store: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, createMigrationsTable); err != nil {
		return false, fmt.Errorf("migrate store: %w", err)
	}
	v, err := schemaVersion(ctx, tx)
	if err != nil {
		return false, err
	}
	if v >= len(migrations) {
		return true, nil
	}
	m := migrations[v]
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return false, fmt.Errorf("migrate store to %04d_%s: %w", m.version, m.name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.version, m.name, formatTime(now())); err != nil {
		return false, fmt.Errorf("migrate store to %04d_%s: %w", m.version, m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migrate store to %04d_%s: %w", m.version, m.name, err)
	}
	return false, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// schemaVersion returns the newest applied migration, refusing one this
// gitmon does not know.
func schemaVersion(ctx context.Context, q querier) (int, error) {
	var v int
	if err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read store schema version: %w", err)
	}
	if v > len(migrations) {
		return 0, fmt.Errorf("store schema version %d, this gitmon knows up to %d: %w", v, len(migrations), ErrSchemaTooNew)
	}
	return v, nil
}

// checkSchema is the ReadOnly Open's check: the schema is exactly the one
// this gitmon knows.
func checkSchema(ctx context.Context, db *sql.DB) error {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n); err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	v := 0
	if n > 0 {
		var err error
		if v, err = schemaVersion(ctx, db); err != nil {
			return err
		}
	}
	if v < len(migrations) {
		return fmt.Errorf("store schema version %d, this gitmon needs %d (gitmon serve upgrades it): %w", v, len(migrations), ErrSchemaTooOld)
	}
	return nil
}
