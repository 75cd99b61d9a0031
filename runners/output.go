package runners

import (
	"bytes"
	"sort"
	"sync"
)

// Redacted is what a secret value is replaced with in stage output and
// messages.
const Redacted = "<redacted>"

// Output is the capped, redacted tail of a stage's output: an io.Writer
// that any number of goroutines may write to at once (a process's stdout
// and stderr, a runner's own lines), keeping only the last cap bytes.
//
// Redaction happens when the output is read, never per write, so a secret
// split across writes (even written one byte at a time) is still found.
// Three rules keep every byte of a secret out of String:
//
//   - Output retains the raw tail plus an overlap as long as the longest
//     secret, so an occurrence that starts before the tail's cut edge and
//     ends inside it is seen whole and replaced whole; nothing of it that
//     precedes the edge is shown.
//   - Every byte covered by any occurrence of any secret is hidden, even
//     when occurrences overlap (secrets "abc" and "bcd" in "abcd"), and
//     each run of hidden bytes becomes one Redacted marker.
//   - Output that ends in the beginning of a secret (a process printing a
//     secret slowly, or a stage cut off mid-secret) has that partial
//     secret hidden too, so reading String while a stage runs never shows
//     a growing prefix of a secret. The cost is an occasional marker in
//     place of a last byte or two that merely look like a secret's start.
//
// Empty secrets are ignored. The cap applies to the raw bytes: String is
// longer or shorter than cap by what the markers add or remove, a marker
// for a secret that straddles the cut edge included.
type Output struct {
	mu      sync.Mutex
	cap     int
	keep    int // cap plus the longest secret: what buf retains
	red     redactor
	buf     []byte // the raw tail; len(buf) <= keep after each Write
	written int64
}

// NewOutput returns an Output keeping the last cap bytes (none when cap
// is not positive) with every value in secrets redacted.
func NewOutput(cap int, secrets []string) *Output {
	cap = max(cap, 0)
	red := newRedactor(secrets)
	return &Output{cap: cap, keep: cap + red.longest, red: red}
}

// Write keeps the tail of p. It never fails.
func (o *Output) Write(p []byte) (int, error) {
	n := len(p)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.written += int64(n)
	switch {
	case o.keep == 0:
	case n >= o.keep:
		o.buf = append(o.buf[:0], p[n-o.keep:]...)
	default:
		// Let buf grow to twice what it keeps, then move the tail to the
		// front: each byte is copied a bounded number of times, so a
		// process writing byte by byte costs O(1) per byte.
		if len(o.buf)+n > 2*o.keep {
			drop := len(o.buf) + n - o.keep
			o.buf = o.buf[:copy(o.buf, o.buf[drop:])]
		}
		o.buf = append(o.buf, p...)
	}
	return n, nil
}

// String returns the tail, redacted.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	from := max(len(o.buf)-o.cap, 0)
	return string(o.red.redact(o.buf, from, true))
}

// Written returns how many bytes were written in all.
func (o *Output) Written() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.written
}

// Truncated reports whether more than cap bytes were written, so that
// String holds only the tail.
func (o *Output) Truncated() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.written > int64(o.cap)
}

// Redact returns s with every occurrence of every non-empty secret
// replaced by Redacted, overlapping occurrences included. It is for whole
// strings such as messages; a string that may end mid-secret (a cut
// body) goes through Output instead.
func Redact(s string, secrets []string) string {
	red := newRedactor(secrets)
	if len(red.secrets) == 0 {
		return s
	}
	return string(red.redact([]byte(s), 0, false))
}

// redactor hides secrets in byte strings.
type redactor struct {
	secrets [][]byte // distinct, non-empty, longest first
	longest int
}

func newRedactor(secrets []string) redactor {
	var r redactor
	seen := make(map[string]bool, len(secrets))
	for _, s := range secrets {
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		r.secrets = append(r.secrets, []byte(s))
		r.longest = max(r.longest, len(s))
	}
	sort.Slice(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
	return r
}

// redact renders b[from:] with every byte covered by a secret occurrence
// replaced: each run of covered bytes that reaches into b[from:] becomes
// one Redacted, even when the run starts before from. With partialTail,
// a proper prefix of a secret at the very end of b counts as covered.
func (r redactor) redact(b []byte, from int, partialTail bool) []byte {
	var covered []bool // allocated on the first match
	cover := func(i, j int) {
		if covered == nil {
			covered = make([]bool, len(b))
		}
		for k := i; k < j; k++ {
			covered[k] = true
		}
	}
	for _, s := range r.secrets {
		for at := 0; at < len(b); {
			i := bytes.Index(b[at:], s)
			if i < 0 {
				break
			}
			cover(at+i, at+i+len(s))
			at += i + 1 // overlapping occurrences ("aa" in "aaa") too
		}
		if partialTail {
			// The longest proper prefix of s that b ends with.
			for i := max(len(b)-len(s)+1, 0); i < len(b); i++ {
				if b[i] == s[0] && bytes.HasPrefix(s, b[i:]) {
					cover(i, len(b))
					break
				}
			}
		}
	}
	if covered == nil {
		return bytes.Clone(b[from:])
	}
	out := make([]byte, 0, len(b)-from+len(Redacted))
	for i := from; i < len(b); i++ {
		switch {
		case !covered[i]:
			out = append(out, b[i])
		case i == from || !covered[i-1]:
			out = append(out, Redacted...)
		}
	}
	return out
}
