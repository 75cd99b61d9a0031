package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/gitmon-dev/gitmon/internal/backoff"
	"github.com/gitmon-dev/gitmon/internal/store"
)

// Sender delivers one outbox item and returns what the far side answered
// (a Slack ts, a Message-ID, a ticket key). A failure that no retry can
// fix wraps ErrPermanent (see Permanent); a *RetryAfterError says when to
// try again. *Slack, *Mail and *Jira are Senders.
type Sender interface {
	Send(ctx context.Context, it store.OutboxItem) (externalID string, err error)
}

// Outbox is the part of store.Store the worker uses.
type Outbox interface {
	DueOutbox(ctx context.Context, now time.Time, limit int, kinds ...string) ([]store.OutboxItem, error)
	MarkSent(ctx context.Context, id int64, externalID string, at time.Time) error
	MarkFailed(ctx context.Context, id int64, errText string, next time.Time) error
	MarkDead(ctx context.Context, id int64, errText string, at time.Time) (bool, error)
}

// MaxAge is how long the outbox keeps trying an item, from when it was
// enqueued (SPEC §9).
const MaxAge = 24 * time.Hour

// Worker delivers due outbox items through the Sender of their kind, one
// at a time, in due order. Deployments never wait on it: they only
// enqueue.
//
// A failed item is tried again after a capped exponential backoff
// (MinBackoff × 2^attempts, at most MaxBackoff, less up to a quarter of
// it at random so that items failing together spread out), or after the
// Retry-After that a rate limit asked for (at most MaxBackoff). It gives
// up on an item, which becomes a dead letter, when the failure is
// permanent (ErrPermanent) or when the item failed again more than
// MaxAge after it was enqueued. A dead letter is stored, logged once,
// reported to DeadLetter and never tried again. Items of a kind without a
// Sender wait, out of the way of the others.
//
// Slack and SMTP have no idempotency keys: if gitmon dies between a
// successful send and MarkSent, the item is sent again after the
// restart. That is the only way a message goes out twice.
type Worker struct {
	Outbox  Outbox
	Senders map[string]Sender // by store.Outbox* kind
	// Secrets are redacted from every error the worker stores or logs.
	// Pass the daemon's secrets (config.Secrets()).
	Secrets []string
	// DeadLetter, when set, is called once for each item that becomes a
	// dead letter, after it is stored (the daemon counts them).
	DeadLetter func(kind string)

	Interval   time.Duration // how often to look for due items; 1s when 0
	Batch      int           // items per look; 50 when 0
	MinBackoff time.Duration // 5s when 0
	MaxBackoff time.Duration // 30m when 0
	MaxAge     time.Duration // MaxAge when 0
	// SendTimeout bounds one delivery; 1m when 0.
	SendTimeout time.Duration
	Now         func() time.Time // time.Now when nil
	// Rand returns a number in [0, 1) for the backoff's jitter;
	// math/rand/v2's Float64 when nil.
	Rand func() float64
	Log  *slog.Logger // slog.Default() when nil

	once sync.Once
	wake chan struct{}
}

// Log keys.
const (
	keyKind     = "kind"
	keyKey      = "key"
	keyAttempts = "attempts"
	keyRetryAt  = "retry_at"
	keyErr      = "err"
)

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
			w.log().Warn("notification outbox", keyErr, errText(err, w.Secrets))
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
	kinds := make([]string, 0, len(w.Senders))
	for k, s := range w.Senders {
		if s != nil {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) == 0 {
		return 0, nil
	}
	slices.Sort(kinds)
	items, err := w.Outbox.DueOutbox(ctx, w.now(), w.batch(), kinds...)
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
		if held[it.Kind] {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, w.sendTimeout())
		ext, err := w.Senders[it.Kind].Send(sctx, it)
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
		rateLimited, err := w.failed(ctx, it, err)
		if err != nil {
			return sent, err
		}
		if rateLimited {
			held[it.Kind] = true
		}
	}
	return sent, nil
}

// failed records a failed delivery of it: a dead letter, or a retry. It
// reports whether the failure was a rate limit.
func (w *Worker) failed(ctx context.Context, it store.OutboxItem, sendErr error) (rateLimited bool, err error) {
	now := w.now()
	switch {
	case errors.Is(sendErr, ErrThreadNotReady):
		// Waiting on another item of the outbox, not on a service: look
		// again soon. The item it waits for is sent or dies in time.
		return false, w.retry(ctx, it, sendErr, now.Add(min(time.Second, w.minBackoff())))
	case errors.Is(sendErr, ErrPermanent):
		return false, w.die(ctx, it, sendErr, now)
	case now.Sub(it.CreatedAt) >= w.maxAge():
		return false, w.die(ctx, it, fmt.Errorf("gave up after %s of failures: %w", w.maxAge(), sendErr), now)
	}
	if d, ok := retryAfter(sendErr); ok {
		if d <= 0 {
			d = time.Second
		}
		return true, w.retry(ctx, it, sendErr, now.Add(min(d, w.maxBackoff())))
	}
	return false, w.retry(ctx, it, sendErr, now.Add(w.backoff(it.Attempts)))
}

func (w *Worker) retry(ctx context.Context, it store.OutboxItem, sendErr error, next time.Time) error {
	text := errText(sendErr, w.Secrets)
	if !errors.Is(sendErr, ErrThreadNotReady) {
		w.log().Warn("notification failed", keyKind, it.Kind, keyKey, it.Key, keyAttempts, it.Attempts+1,
			keyRetryAt, next, keyErr, text)
	}
	return w.Outbox.MarkFailed(ctx, it.ID, text, next)
}

func (w *Worker) die(ctx context.Context, it store.OutboxItem, sendErr error, now time.Time) error {
	text := errText(sendErr, w.Secrets)
	changed, err := w.Outbox.MarkDead(ctx, it.ID, text, now)
	if err != nil || !changed {
		return err
	}
	w.log().Warn("outbox dead letter", keyKind, it.Kind, keyKey, it.Key, keyAttempts, it.Attempts+1, keyErr, text)
	if w.DeadLetter != nil {
		w.DeadLetter(it.Kind)
	}
	return nil
}

// backoff is the wait after the attempts+1-th failure: MinBackoff ×
// 2^attempts, at most MaxBackoff, less a random part of up to a quarter.
func (w *Worker) backoff(attempts int) time.Duration {
	d := backoff.Exponential(w.minBackoff(), w.maxBackoff(), attempts+1)
	r := rand.Float64
	if w.Rand != nil {
		r = w.Rand
	}
	return d - time.Duration(float64(d/4)*r())
}

func (w *Worker) interval() time.Duration { return or(w.Interval, time.Second) }
func (w *Worker) minBackoff() time.Duration {
	return or(w.MinBackoff, 5*time.Second)
}
func (w *Worker) maxBackoff() time.Duration  { return or(w.MaxBackoff, 30*time.Minute) }
func (w *Worker) maxAge() time.Duration      { return or(w.MaxAge, MaxAge) }
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
