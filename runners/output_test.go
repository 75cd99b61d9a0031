package runners

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitFor polls cond until it holds, failing the test after a deadline.
// It is how tests wait for other processes, never a bare sleep.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOutputTailAndRedaction(t *testing.T) {
	tests := []struct {
		name    string
		cap     int
		secrets []string
		writes  []string
		want    string
	}{
		{name: "no secrets, under the cap", cap: 100, writes: []string{"hello ", "world"}, want: "hello world"},
		{name: "keeps the tail", cap: 5, writes: []string{"abc", "defgh", "ij"}, want: "fghij"},
		{name: "one write larger than the cap", cap: 4, writes: []string{"0123456789"}, want: "6789"},
		{name: "zero cap keeps nothing", cap: 0, writes: []string{"abc"}, want: ""},
		{name: "negative cap keeps nothing", cap: -3, writes: []string{"abc"}, want: ""},
		{name: "secret in one write", cap: 100, secrets: []string{"hunter2"}, writes: []string{"pw=hunter2\n"}, want: "pw=<redacted>\n"},
		{name: "secret split across writes", cap: 100, secrets: []string{"hunter2"}, writes: []string{"pw=hun", "ter2\n"}, want: "pw=<redacted>\n"},
		{name: "every occurrence", cap: 100, secrets: []string{"s3"}, writes: []string{"s3 s3s3\n"}, want: "<redacted> <redacted>\n"},
		{name: "empty secret ignored", cap: 100, secrets: []string{"", "x1"}, writes: []string{"a x1 b\n"}, want: "a <redacted> b\n"},
		{name: "overlapping secrets hide every byte", cap: 100, secrets: []string{"abc", "cde"}, writes: []string{"-abcde-\n"}, want: "-<redacted>-\n"},
		{name: "secret inside a longer one", cap: 100, secrets: []string{"pass", "password1"}, writes: []string{"password1 pass\n"}, want: "<redacted> <redacted>\n"},
		// "xxSECRETyy" with cap 6: the raw tail is "CRETyy". A naive cut
		// would show "CRET"; the overlap sees the whole secret.
		{name: "secret straddling the cut edge", cap: 6, secrets: []string{"SECRET"}, writes: []string{"xxSEC", "RETyy"}, want: "<redacted>yy"},
		{name: "secret just before the cut edge", cap: 3, secrets: []string{"SECRET"}, writes: []string{"SECRETabc"}, want: "abc"},
		{name: "secret at the very end", cap: 6, secrets: []string{"SECRET"}, writes: []string{"xxxxxxxxSECRET"}, want: "<redacted>"},
		{name: "partial secret at the end is hidden", cap: 100, secrets: []string{"hunter2"}, writes: []string{"pw=hunt"}, want: "pw=<redacted>"},
		{name: "text that merely resembles a secret's start mid-output", cap: 100, secrets: []string{"hunter2"}, writes: []string{"the hunt is on\n"}, want: "the hunt is on\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewOutput(tt.cap, tt.secrets)
			for _, w := range tt.writes {
				if n, err := o.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if got := o.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

// A canary secret written one byte at a time, among other output, at
// every offset relative to the cut edge, must never show any of its
// bytes: neither at the end, nor at the edge, nor while it is written.
func TestOutputCanaryByteByByte(t *testing.T) {
	const canary = "CANARY-7f3c9e"
	const capacity = 32
	for pad := 0; pad < 2*capacity; pad++ {
		o := NewOutput(capacity, []string{"unrelated", canary})
		stream := strings.Repeat(".", pad) + canary + strings.Repeat("-", pad%7)
		for i := 0; i < len(stream); i++ {
			o.Write([]byte{stream[i]})
			got := o.String()
			if leak := leakedFragment(got, canary); leak != "" {
				t.Fatalf("pad %d, after byte %d: String() = %q shows %q of the canary", pad, i, got, leak)
			}
		}
		if got := o.String(); len(got) > capacity+len(Redacted) {
			t.Fatalf("pad %d: String() is %d bytes, over the cap", pad, len(got))
		}
	}
}

// leakedFragment returns the longest piece (3 bytes or more) of secret
// that s shows, or "".
func leakedFragment(s, secret string) string {
	s = strings.ReplaceAll(s, Redacted, "\x00")
	for n := len(secret); n >= 3; n-- {
		for i := 0; i+n <= len(secret); i++ {
			if strings.Contains(s, secret[i:i+n]) {
				return secret[i : i+n]
			}
		}
	}
	return ""
}

func TestOutputConcurrentWrites(t *testing.T) {
	o := NewOutput(1<<20, []string{"tok-123"})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				fmt.Fprintf(o, "g%d line %d tok-123\n", g, i)
			}
		})
	}
	wg.Wait()
	got := o.String()
	if strings.Count(got, "\n") != 1600 || strings.Contains(got, "tok-") {
		t.Fatalf("got %d lines, redacted: %v", strings.Count(got, "\n"), !strings.Contains(got, "tok-"))
	}
	if o.Written() != int64(len(strings.ReplaceAll(got, Redacted, "tok-123"))) || o.Truncated() {
		t.Errorf("Written() = %d, Truncated() = %v", o.Written(), o.Truncated())
	}
}

func TestOutputLongStreamStaysBounded(t *testing.T) {
	o := NewOutput(1000, []string{"0123456789abcdef"})
	for i := 0; i < 100000; i++ {
		o.Write([]byte("x"))
	}
	if got := cap(o.buf); got > 4*(1000+16) {
		t.Errorf("buffer capacity %d, want a small multiple of the cap", got)
	}
	if !o.Truncated() || len(o.String()) != 1000 {
		t.Errorf("Truncated() = %v, len(String()) = %d", o.Truncated(), len(o.String()))
	}
}

func TestRedact(t *testing.T) {
	if got := Redact("a=s1 b=s22", []string{"s1", "s22", ""}); got != "a=<redacted> b=<redacted>" {
		t.Errorf("Redact = %q", got)
	}
	if got := Redact("nothing", nil); got != "nothing" {
		t.Errorf("Redact = %q", got)
	}
	// Redact works on whole strings: it does not hide a trailing prefix.
	if got := Redact("the s", []string{"s1"}); got != "the s" {
		t.Errorf("Redact = %q", got)
	}
}

func BenchmarkOutputWrite(b *testing.B) {
	o := NewOutput(64<<10, []string{"secret-one", "secret-two"})
	line := []byte("deploying payments 1.4.2 to qa: rolling update 3/5 pods ready\n")
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		o.Write(line)
	}
}

func BenchmarkOutputString(b *testing.B) {
	o := NewOutput(64<<10, []string{"secret-one", "secret-two", "s3cr3t"})
	for o.Written() < 128<<10 {
		o.Write([]byte("deploying payments 1.4.2 to qa: rolling update 3/5 pods ready secret-one\n"))
	}
	for b.Loop() {
		_ = o.String()
	}
}
