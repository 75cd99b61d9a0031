package monitor

import (
	"context"
	"errors"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// Defaults of the connection bounds.
const (
	// DefaultListings is how many ref listings run at once, across every
	// Repo sharing the process-wide DialLimit. It matches git daemon's
	// default --max-connections (32), so one gitmon never makes a default
	// git daemon refuse or kill connections. At 100 ms a listing (a far
	// server) it allows 320 listings a second, twice what 10,000
	// repositories polled every 60 s need.
	DefaultListings = 32
	// DefaultFirstByte bounds the wait for a connection and for the
	// server's first byte. A connection the server lost (its accept
	// queue overflowed, and the kernel dropped the handshake's last
	// packet while the client believes it is connected) then costs this,
	// not the attempt's whole timeout.
	DefaultFirstByte = 5 * time.Second
)

// DialLimit bounds the ref listings in flight at once across the Repos
// that share it, so that N repositories whose polls meet (a webhook for
// all of them, a network that comes back) never open N connections to
// one server at once. The zero value is not usable; use NewDialLimit.
type DialLimit struct {
	slots chan struct{}
	// waiting, inFlight and peak are for tests and benchmarks.
	waiting, inFlight, peak atomic.Int64
}

// NewDialLimit allows n listings at once (at least 1).
func NewDialLimit(n int) *DialLimit {
	return &DialLimit{slots: make(chan struct{}, max(n, 1))}
}

// processDials is the process-wide limit of Repos given none.
var processDials = NewDialLimit(DefaultListings)

// acquire waits for a slot, or for ctx.
func (l *DialLimit) acquire(ctx context.Context) error {
	select {
	case l.slots <- struct{}{}:
	default:
		l.waiting.Add(1)
		select {
		case l.slots <- struct{}{}:
			l.waiting.Add(-1)
		case <-ctx.Done():
			l.waiting.Add(-1)
			return ctx.Err()
		}
	}
	n := l.inFlight.Add(1)
	for p := l.peak.Load(); n > p && !l.peak.CompareAndSwap(p, n); p = l.peak.Load() {
	}
	return nil
}

func (l *DialLimit) release() {
	l.inFlight.Add(-1)
	<-l.slots
}

// Peak is the most listings that were in flight at once.
func (l *DialLimit) Peak() int { return int(l.peak.Load()) }

// errSilent marks a connection that was made (or seemed to be) but on
// which the server said nothing within the first-byte deadline. A fresh
// connection usually works: the attempt tries once more.
var errSilent = errors.New("the server did not answer")

// silent reports whether err is a first-byte timeout rather than the end
// of the attempt itself.
func silent(ctx context.Context, err error) bool {
	return errors.Is(err, errSilent) && ctx.Err() == nil
}

// firstByteConn bounds a connection by the first-byte deadline until the
// server's first byte arrives, and by the attempt's deadline after.
type firstByteConn struct {
	net.Conn
	deadline time.Time // the attempt's; zero means none
	waiting  atomic.Bool
}

// dialFirstByte connects to addr within firstByte (and the attempt's
// deadline) and returns the connection bounded as firstByteConn says.
func dialFirstByte(ctx context.Context, addr string, deadline time.Time, firstByte time.Duration) (net.Conn, error) {
	early := time.Now().Add(firstByte)
	if !deadline.IsZero() && deadline.Before(early) {
		early = deadline
	}
	// No keep-alive: these connections last one listing or fetch, and
	// its four setsockopt calls were a tenth of a listing's syscalls.
	d := net.Dialer{Deadline: early, KeepAlive: -1}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) && (deadline.IsZero() || time.Now().Before(deadline)) {
			return nil, errSilentf(err)
		}
		return nil, err
	}
	if err := conn.SetDeadline(early); err != nil {
		conn.Close()
		return nil, err
	}
	c := &firstByteConn{Conn: conn, deadline: deadline}
	c.waiting.Store(true)
	return c, nil
}

func (c *firstByteConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.waiting.Load() {
		if n > 0 {
			c.waiting.Store(false)
			if dErr := c.Conn.SetDeadline(c.deadline); dErr != nil && err == nil {
				err = dErr
			}
		} else if errors.Is(err, os.ErrDeadlineExceeded) && (c.deadline.IsZero() || time.Now().Before(c.deadline)) {
			err = errSilentf(err)
		}
	}
	return n, err
}

// silentError is errSilent that still says it was a deadline.
type silentError struct{ cause error }

func errSilentf(cause error) error     { return &silentError{cause} }
func (e *silentError) Error() string   { return errSilent.Error() + " (" + e.cause.Error() + ")" }
func (e *silentError) Unwrap() []error { return []error{errSilent, e.cause} }
