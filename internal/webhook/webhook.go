// Package webhook checks the deliveries a Git host sends when a branch is
// pushed (SPEC §8) and turns each genuine one into a request to poll that
// repository now. It decides nothing from the payload: a delivery only
// says "look", and the ref listing that follows says what moved, so a
// forged or replayed payload can at worst cause one more poll.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// MaxBody is the largest delivery read; a larger one gets 413.
const MaxBody = 1 << 20

// readTimeout bounds how long a delivery's body may take to arrive.
const readTimeout = 10 * time.Second

// Results, as the handler reports them to Options.Observe (the metric's
// result label).
const (
	ResultAccepted     = "accepted"     // 202, a poll was asked for
	ResultRedelivery   = "redelivery"   // 202, a delivery id seen already
	ResultPing         = "ping"         // 204
	ResultUnauthorized = "unauthorized" // 401: a bad or missing signature
	ResultUnknown      = "unknown"      // 404: no such repository, or no webhook on it
	ResultTooLarge     = "too_large"    // 413
	ResultMethod       = "method"       // 405
	ResultBadRequest   = "bad_request"  // 400: the body could not be read
)

// Hook is one repository's webhook.
type Hook struct {
	Provider string // github, gitlab, gitea, bitbucket or generic
	Secret   []byte
}

// Options are a Handler's dependencies.
type Options struct {
	// Trigger asks for a poll of the repository; it must not block.
	Trigger func(repo string)
	// Observe hears each delivery's result (default: nobody). repo is ""
	// unless the repository has a webhook, so that hostile paths add no
	// label values.
	Observe func(repo, result string)
	// Dedup is how many delivery ids are remembered per repository
	// (default DefaultDedup).
	Dedup int
}

// DefaultDedup is how many recent delivery ids each repository remembers.
const DefaultDedup = 10000

// Handler serves POST /webhooks/{repository}. It reads the repository
// from the path value "repository".
type Handler struct {
	hooks   map[string]*hook
	trigger func(string)
	observe func(repo, result string)
}

// hook is a repository's webhook with its provider's checks and the
// delivery ids it saw.
type hook struct {
	p      provider
	secret []byte
	// tokenSum is sha256 of the secret, for providers that send the
	// secret itself: comparing digests hides the secret's length.
	tokenSum [sha256.Size]byte
	mu       sync.Mutex
	seen     *lru
}

// New returns a handler for hooks, by repository name. An unknown
// provider is a programmer error (config rejects it) and panics.
func New(hooks map[string]Hook, opts Options) *Handler {
	if opts.Trigger == nil {
		panic("webhook: no Trigger")
	}
	if opts.Observe == nil {
		opts.Observe = func(string, string) {}
	}
	if opts.Dedup <= 0 {
		opts.Dedup = DefaultDedup
	}
	h := &Handler{hooks: map[string]*hook{}, trigger: opts.Trigger, observe: opts.Observe}
	for name, c := range hooks {
		p, ok := providers[c.Provider]
		if !ok {
			panic("webhook: unknown provider " + c.Provider)
		}
		h.hooks[name] = &hook{p: p, secret: c.Secret, tokenSum: sha256.Sum256(c.Secret), seen: newLRU(opts.Dedup)}
	}
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("repository")
	hk := h.hooks[name]
	label := ""
	if hk != nil {
		label = name
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.reply(w, label, ResultMethod, http.StatusMethodNotAllowed)
		return
	}
	if hk == nil {
		h.reply(w, "", ResultUnknown, http.StatusNotFound)
		return
	}
	// A delivery whose signature cannot be right is refused before its
	// body is read: a missing or malformed header, or a wrong GitLab
	// token, which does not depend on the body.
	want, ok := hk.expected(r.Header.Get(hk.p.header))
	if !ok {
		h.reply(w, name, ResultUnauthorized, http.StatusUnauthorized)
		return
	}
	if r.ContentLength > MaxBody {
		h.reply(w, name, ResultTooLarge, http.StatusRequestEntityTooLarge)
		return
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(readTimeout))
	// The body streams through the MAC (and a digest, for dedup), never
	// held whole: a 1 MiB delivery costs a few KiB of memory.
	var mac hash.Hash = nopHash{}
	if !hk.p.token {
		mac = hmac.New(sha256.New, hk.secret)
	}
	digest := sha256.New()
	buf := bufPool.Get().(*[]byte)
	_, err := io.CopyBuffer(io.MultiWriter(mac, digest), http.MaxBytesReader(w, r.Body, MaxBody), *buf)
	bufPool.Put(buf)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			h.reply(w, name, ResultTooLarge, http.StatusRequestEntityTooLarge)
			return
		}
		h.reply(w, name, ResultBadRequest, http.StatusBadRequest)
		return
	}
	if !hk.p.token && !hmac.Equal(mac.Sum(nil), want[:]) {
		h.reply(w, name, ResultUnauthorized, http.StatusUnauthorized)
		return
	}
	if hk.p.ping(r.Header) {
		h.reply(w, name, ResultPing, http.StatusNoContent)
		return
	}
	if id := hk.p.deliveryID(r.Header); id != "" && !hk.firstSight(id, digest.Sum(nil)) {
		h.reply(w, name, ResultRedelivery, http.StatusAccepted)
		return
	}
	h.trigger(name)
	h.reply(w, name, ResultAccepted, http.StatusAccepted)
}

func (h *Handler) reply(w http.ResponseWriter, repo, result string, code int) {
	h.observe(repo, result)
	if code == http.StatusNoContent {
		w.WriteHeader(code)
		return
	}
	http.Error(w, http.StatusText(code), code)
}

// expected parses a delivery's signature header value. For a provider
// that sends the secret itself it checks it, in constant time, and the
// delivery is genuine when ok; otherwise want is the MAC the body must
// have. An empty secret lets nothing in.
func (hk *hook) expected(sig string) (want [sha256.Size]byte, ok bool) {
	if sig == "" || len(hk.secret) == 0 {
		return want, false
	}
	if hk.p.token {
		sum := sha256.Sum256([]byte(sig))
		return want, subtle.ConstantTimeCompare(sum[:], hk.tokenSum[:]) == 1
	}
	hexSig, ok := strings.CutPrefix(sig, hk.p.prefix)
	if !ok || len(hexSig) != 2*sha256.Size {
		return want, false
	}
	if _, err := hex.Decode(want[:], []byte(hexSig)); err != nil {
		return want, false
	}
	return want, true
}

// firstSight records a delivery and reports whether it is new. A
// delivery is its id and its body's digest: a host redelivers the same
// body under the same id, while an id that comes back with another body
// is a new event (a sender that reuses ids) and must not be lost.
func (hk *hook) firstSight(id string, body []byte) bool {
	d := sha256.New()
	d.Write(body)
	d.Write([]byte{0})
	d.Write([]byte(id))
	var key [sha256.Size]byte
	d.Sum(key[:0]) // a fixed size, whatever the sender sends
	hk.mu.Lock()
	defer hk.mu.Unlock()
	return hk.seen.add(key)
}

// nopHash stands in for the MAC of providers that send the secret itself.
type nopHash struct{}

func (nopHash) Write(p []byte) (int, error) { return len(p), nil }
func (nopHash) Sum(b []byte) []byte         { return b }
func (nopHash) Reset()                      {}
func (nopHash) Size() int                   { return 0 }
func (nopHash) BlockSize() int              { return 64 }

// bufPool holds the copy buffers of body reads.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 8<<10); return &b }}
