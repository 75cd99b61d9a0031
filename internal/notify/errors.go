package notify

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// ErrPermanent is wrapped by a delivery failure that no retry can fix: a
// 4xx answer other than 429 (an unknown channel, a bad token, a missing
// ticket), an SMTP 5xx reply, an outbox item that cannot be decoded. The
// worker makes such an item a dead letter at once (SPEC §9). Every other
// failure (5xx, 429, network errors, timeouts) is retried.
var ErrPermanent = errors.New("permanent failure")

// permanentError marks err as permanent, keeping its text.
type permanentError struct{ err error }

func (e *permanentError) Error() string        { return e.err.Error() }
func (e *permanentError) Unwrap() error        { return e.err }
func (e *permanentError) Is(target error) bool { return target == ErrPermanent }

// Permanent marks err as a failure that no retry can fix:
// errors.Is(Permanent(err), ErrPermanent). Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil || errors.Is(err, ErrPermanent) {
		return err
	}
	return &permanentError{err: err}
}

// undecodable is the error for an outbox item whose payload this gitmon
// cannot read: permanent, since reading it again gives the same answer.
func undecodable(what, key string, err error) error {
	return Permanent(fmt.Errorf("%s payload of %s: %w", what, key, err))
}

// permanentStatus reports whether an HTTP status says that the same
// request will fail again: SPEC §9's "a 4xx other than 429".
func permanentStatus(code int) bool {
	return code >= 400 && code < 500 && code != http.StatusTooManyRequests
}

// RetryAfterError is a delivery failure that says when to try again,
// such as a 429 with Retry-After. It is retryable.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

// Error is the cause's text; the wait shows where the retry is logged.
func (e *RetryAfterError) Error() string { return e.Err.Error() }

func (e *RetryAfterError) Unwrap() error { return e.Err }

// retryAfter returns how long err asks to wait, if it does.
func retryAfter(err error) (time.Duration, bool) {
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		return ra.After, true
	}
	return 0, false
}
