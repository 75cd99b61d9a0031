package notify

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/gitmon-dev/gitmon/internal/store"
)

// Sender delivers one outbox item and returns what the far side answered
// (a Slack ts, a Message-ID). *Slack and *Mail are Senders.
type Sender interface {
	Send(ctx context.Context, it store.OutboxItem) (externalID string, err error)
}

// Outbox is the part of store.Store the worker uses.
type Outbox interface {
	DueOutbox(ctx context.Context, now time.Time, limit int) ([]store.OutboxItem, error)
	MarkSent(ctx context.Context, id int64, externalID string, at time.Time) error
	MarkFailed(ctx context.Context, id int64, errText string, next time.Time) error
}

// Worker delivers due outbox items through the Sender of their kind, one
// at a time, in due order. A failed item is tried again after a capped
// exponential backoff (MinBackoff × 2^attempts, at most MaxBackoff), or
// after the Retry-After a rate limit asked for. Items of a kind without a
// Sender wait. Deployments never wait on the worker: they only enqueue.
//
// Slack and SMTP have no idempotency keys: if gitmon dies between a
// successful send and MarkSent, the item is sent again after the
// restart. That is the only way a message goes out twice.
type Worker struct {
	Outbox  Outbox
	Senders map[string]Sender // by store.Outbox* kind

	Interval   time.Duration // how often to look for due items; 1s when 0
	Batch      int           // items per look; 50 when 0
	MinBackoff time.Duration // 5s when 0
	MaxBackoff time.Duration // 30m when 0
	// SendTimeout bounds one delivery; 1m when 0.
	SendTimeout time.Duration
	Now         func() time.Time // time.Now when nil
	Log         *slog.Logger     // slog.Default() when nil

	once sync.Once
	wake chan struct{}
}

// Wake makes a running worker look for due items now (after an Enqueue).
// It never blocks.
func (w *Worker) Wake() {
	select {
	case w.wakeCh() <- struct{}{}:
	default:
	}
}

func (w *Worker) wakeCh() chan struct{} {
	w.once.Do(func() { w.wake = make(chan struct{}, 1) })
	return w.wake
}

// Run delivers due items until ctx ends, and returns ctx's error.
func (w *Worker) Run(ctx context.Context) error {
	t := time.NewTicker(w.interval())
	defer t.Stop()
	wake := w.wakeCh()
	for {
		if _, err := w.RunOnce(ctx); err != nil && ctx.Err() == nil {
			w.log().Warn("notification outbox", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-wake:
		}
	}
}

// RunOnce delivers the items due now (one batch) and returns how many
// were sent. It stops early only if ctx ends or the store fails.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	now := w.now()
	items, err := w.Outbox.DueOutbox(ctx, now, w.batch())
	if err != nil {
		return 0, err
	}
	sent := 0
	// A rate limit holds back the rest of its kind's items this round,
	// without counting an attempt against them.
	held := map[string]bool{}
	for _, it := range items {
		if ctx.Err() != nil {
			return sent, ctx.Err()
		}
		s := w.Senders[it.Kind]
		if s == nil || held[it.Kind] {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, w.sendTimeout())
		ext, err := s.Send(sctx, it)
		cancel()
		if err == nil {
			if err := w.Outbox.MarkSent(ctx, it.ID, ext, w.now()); err != nil {
				return sent, err
			}
			sent++
			continue
		}
		if ctx.Err() != nil {
			return sent, ctx.Err()
		}
		next := w.now().Add(w.backoff(it.Attempts))
		if d, ok := retryAfter(err); ok {
			if d <= 0 {
				d = time.Second
			}
			next = w.now().Add(d)
			held[it.Kind] = true
		} else if errors.Is(err, ErrThreadNotReady) {
			// Waiting on another item of the outbox, not on a service:
			// look again soon.
			next = w.now().Add(min(time.Second, w.minBackoff()))
		}
		w.log().Warn("notification failed", "kind", it.Kind, "key", it.Key, "attempts", it.Attempts+1,
			"retry_at", next, "err", err)
		if err := w.Outbox.MarkFailed(ctx, it.ID, err.Error(), next); err != nil {
			return sent, err
		}
	}
	return sent, nil
}

// backoff is the wait after the attempts+1-th failure.
func (w *Worker) backoff(attempts int) time.Duration {
	d, max := w.minBackoff(), w.maxBackoff()
	for i := 0; i < attempts && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d
}

func (w *Worker) interval() time.Duration { return or(w.Interval, time.Second) }
func (w *Worker) minBackoff() time.Duration {
	return or(w.MinBackoff, 5*time.Second)
}
func (w *Worker) maxBackoff() time.Duration  { return or(w.MaxBackoff, 30*time.Minute) }
func (w *Worker) sendTimeout() time.Duration { return or(w.SendTimeout, time.Minute) }

func (w *Worker) batch() int {
	if w.Batch <= 0 {
		return 50
	}
	return w.Batch
}

func (w *Worker) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

func (w *Worker) log() *slog.Logger {
	if w.Log != nil {
		return w.Log
	}
	return slog.Default()
}

func or(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
