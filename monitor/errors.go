package monitor

import (
	"context"
	"errors"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/filesystem/dotgit"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/gitmon-dev/gitmon/internal/redact"
)

// Errors to branch on with errors.Is. A network error also matches the
// go-git sentinel it came from (such as transport.ErrAuthenticationRequired)
// and context.DeadlineExceeded when its attempt timed out.
var (
	// ErrTooLarge: a blob is larger than the caller allows.
	ErrTooLarge = errors.New("blob too large")
	// ErrLimit: a history walk would visit more commits than its limit.
	ErrLimit = errors.New("history walk limit exceeded")
	// ErrNotFound: an object is not in the local store. Fetch the branch
	// that holds it, then retry.
	ErrNotFound = errors.New("object not in the local store")
	// ErrAuth: the server refused the credentials, or asked for some.
	// Retrying does not help until the configuration changes.
	ErrAuth = errors.New("authentication failed")
	// ErrHostKey: the SSH server's host key is unknown or does not match
	// known_hosts. Retrying does not help.
	ErrHostKey = errors.New("ssh host key not trusted")
	// ErrNoRepository: the server has no such repository.
	ErrNoRepository = errors.New("repository not found")
	// ErrNoBranch: the server has no such branch (any more).
	ErrNoBranch = errors.New("branch not found")
)

// remoteError is a failed network call. It holds only text scrubbed of
// credentials and the sentinels the cause matched, never the cause
// itself: no caller can unwrap its way to go-git's own text.
type remoteError struct {
	op    string  // what was attempted, such as "list refs"
	url   string  // sanitized
	msg   string  // the cause's text, scrubbed
	kinds []error // sentinels the cause matched
}

func (e *remoteError) Error() string   { return e.op + " " + e.url + ": " + e.msg }
func (e *remoteError) Unwrap() []error { return e.kinds }

// sentinels are the causes a remoteError lets callers match, with the
// error of ours each one also counts as.
var sentinels = []struct{ cause, ours error }{
	{transport.ErrAuthenticationRequired, ErrAuth},
	{transport.ErrAuthorizationFailed, ErrAuth},
	{transport.ErrInvalidAuthMethod, ErrAuth},
	{transport.ErrRepositoryNotFound, ErrNoRepository},
	{transport.ErrEmptyRemoteRepository, nil},
	{git.ErrRemoteNotFound, nil},
	{plumbing.ErrObjectNotFound, ErrNotFound},
	{ErrNotFound, nil},
	{ErrNoBranch, nil},
	{ErrAuth, nil},         // from the lean ref listing
	{ErrNoRepository, nil}, // from the lean ref listing
	{context.DeadlineExceeded, nil},
	{context.Canceled, nil},
}

// remoteErr turns err, from a network call to the repository, into an
// error that is safe to log: the URL is sanitized, known secrets and
// anything shaped like URL credentials are scrubbed, and only sentinels
// survive as wrapped errors.
func (r *Repo) remoteErr(ctx context.Context, op string, err error) error {
	e := &remoteError{op: op, url: redact.URL(r.url), msg: r.scrub(err.Error())}
	for _, s := range sentinels {
		if errors.Is(err, s.cause) {
			e.kinds = append(e.kinds, s.cause)
			if s.ours != nil {
				e.kinds = append(e.kinds, s.ours)
			}
		}
	}
	var keyErr *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	if errors.As(err, &keyErr) || errors.As(err, &revoked) {
		e.kinds = append(e.kinds, ErrHostKey)
	}
	var noRef git.NoMatchingRefSpecError
	if errors.As(err, &noRef) {
		e.kinds = append(e.kinds, ErrNoBranch)
	}
	// go-git does not always wrap the context's error, and an SSH
	// connection's deadline (see deadlineDialer) may fire a moment before
	// the context's: report the attempt's deadline when it ended the call.
	ctxErr := ctx.Err()
	if ctxErr == nil && (errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, errSilent)) {
		ctxErr = context.DeadlineExceeded
	}
	if ctxErr != nil && !errors.Is(err, ctxErr) {
		e.kinds = append(e.kinds, ctxErr)
		e.msg += " (" + ctxErr.Error() + ")"
	}
	return e
}

// credentialsInURL matches the user-info part of URLs in free text.
var credentialsInURL = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.-]*://)[^\s/@]+@`)

// scrub removes the repository's secrets, in plain and URL-escaped
// forms, and any URL user-info from s.
func (r *Repo) scrub(s string) string {
	for _, secret := range r.secrets {
		for _, form := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret)} {
			s = strings.ReplaceAll(s, form, "<secret>")
		}
	}
	return credentialsInURL.ReplaceAllString(s, "${1}***@")
}

// isMissingObject reports whether err says the local store lacks an
// object it should hold, or holds a damaged one: what a re-fetch repairs.
func isMissingObject(err error) bool {
	for _, target := range []error{
		plumbing.ErrObjectNotFound, ErrNotFound,
		// A ref file left empty by a kill while go-git wrote it: the store
		// is repaired like one that lost objects.
		dotgit.ErrEmptyRefFile,
		packfile.ErrReferenceDeltaNotFound, packfile.ErrInvalidDelta, packfile.ErrZLib, packfile.ErrInvalidObject,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
