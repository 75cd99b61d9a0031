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
	// A delivery without its signature is refused before its body is read.
	sig := r.Header.Get(hk.p.header)
	if sig == "" {
		h.reply(w, name, ResultUnauthorized, http.StatusUnauthorized)
		return
	}
	if r.ContentLength > MaxBody {
		h.reply(w, name, ResultTooLarge, http.StatusRequestEntityTooLarge)
		return
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(readTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			h.reply(w, name, ResultTooLarge, http.StatusRequestEntityTooLarge)
			return
		}
		h.reply(w, name, ResultBadRequest, http.StatusBadRequest)
		return
	}
	if !hk.verify(sig, body) {
		h.reply(w, name, ResultUnauthorized, http.StatusUnauthorized)
		return
	}
	if hk.p.ping(r.Header) {
		h.reply(w, name, ResultPing, http.StatusNoContent)
		return
	}
	if id := r.Header.Get(hk.p.delivery); id != "" && !hk.firstSight(id) {
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

// verify checks the delivery's signature header value in constant time.
func (hk *hook) verify(sig string, body []byte) bool {
	if hk.p.token {
		sum := sha256.Sum256([]byte(sig))
		return subtle.ConstantTimeCompare(sum[:], hk.tokenSum[:]) == 1
	}
	hexSig, ok := strings.CutPrefix(sig, hk.p.prefix)
	if !ok || len(hexSig) != 2*sha256.Size {
		return false
	}
	var got [sha256.Size]byte
	if _, err := hex.Decode(got[:], []byte(hexSig)); err != nil {
		return false
	}
	mac := hmac.New(sha256.New, hk.secret)
	mac.Write(body)
	return hmac.Equal(mac.Sum(nil), got[:])
}

// firstSight records a delivery id and reports whether it is new.
func (hk *hook) firstSight(id string) bool {
	key := sha256.Sum256([]byte(id)) // a fixed size, whatever the sender sends
	hk.mu.Lock()
	defer hk.mu.Unlock()
	return hk.seen.add(key)
}
