package store

import (
	"context"
	"database/sql"
	"strings"
	"sync"
)

// maxCached bounds the statements a store keeps prepared; maxParams keeps
// out the queries built with a variable number of parameters (IN lists),
// which would fill the cache with one statement per length.
const (
	maxCached = 256
	maxParams = 32
)

// stmtCache keeps the store's statements prepared on a *sql.DB: SQLite
// spent 40% of a release's CPU parsing the same SQL again (profile of
// BenchmarkReleaseAlone). database/sql prepares a cached statement once
// per connection and reuses it inside transactions on that connection.
type stmtCache struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: map[string]*sql.Stmt{}}
}

// get returns the prepared statement of q, or nil when it is not
// prepared yet.
func (c *stmtCache) get(q string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[q]
}

// prepare prepares the queries a transaction ran unprepared. It runs once
// the transaction has ended: the write pool has one connection, which the
// transaction held.
func (c *stmtCache) prepare(ctx context.Context, qs []string) {
	for _, q := range qs {
		c.mu.Lock()
		_, done := c.m[q]
		full := len(c.m) >= maxCached
		c.mu.Unlock()
		if done || full || strings.Count(q, "?") > maxParams {
			continue
		}
		st, err := c.db.PrepareContext(ctx, q)
		if err != nil {
			continue // it runs unprepared and reports its own error
		}
		c.mu.Lock()
		if _, dup := c.m[q]; dup {
			st.Close()
		} else {
			c.m[q] = st
		}
		c.mu.Unlock()
	}
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	c.m = map[string]*sql.Stmt{}
}

// cachedTx is a transaction whose queries use the cache's statements.
type cachedTx struct {
	*sql.Tx
	cache *stmtCache
	// missed are the queries it ran unprepared.
	missed []string
}

func (t *cachedTx) stmt(ctx context.Context, q string) *sql.Stmt {
	if st := t.cache.get(q); st != nil {
		return t.StmtContext(ctx, st)
	}
	t.missed = append(t.missed, q)
	return nil
}

func (t *cachedTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st := t.stmt(ctx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return t.Tx.ExecContext(ctx, q, args...)
}

func (t *cachedTx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := t.stmt(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return t.Tx.QueryContext(ctx, q, args...)
}

func (t *cachedTx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if st := t.stmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, q, args...)
}
