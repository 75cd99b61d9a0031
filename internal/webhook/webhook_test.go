package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

const secret = "It's a Secret to Everybody"

// rig serves one repository per provider, named after it, and one
// repository without a webhook is simply absent.
type rig struct {
	srv *httptest.Server
	mu  sync.Mutex
	// triggered counts polls asked for, by repository; results the
	// observed results.
	triggered map[string]int
	results   []string
}

func newRig(t *testing.T) *rig {
	t.Helper()
	rg := &rig{triggered: map[string]int{}}
	hooks := map[string]Hook{}
	for name := range providers {
		hooks[name] = Hook{Provider: name, Secret: []byte(secret)}
	}
	h := New(hooks, Options{
		Trigger: func(repo string) { rg.mu.Lock(); rg.triggered[repo]++; rg.mu.Unlock() },
		Observe: func(repo, result string) {
			rg.mu.Lock()
			rg.results = append(rg.results, repo+":"+result)
			rg.mu.Unlock()
		},
	})
	mux := http.NewServeMux()
	mux.Handle("/webhooks/{repository}", h)
	rg.srv = httptest.NewServer(mux)
	t.Cleanup(rg.srv.Close)
	return rg
}

func (rg *rig) count(repo string) int {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	return rg.triggered[repo]
}

func hmacHex(key, body string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}

// sign sets the headers provider's host sends for a delivery of body
// signed with key.
func sign(provider, key, body string, h http.Header) {
	p := providers[provider]
	if p.token {
		h.Set(p.header, key)
		return
	}
	h.Set(p.header, p.prefix+hmacHex(key, body))
}

// pingHeaders are the headers of each provider's test delivery, where it
// has one.
var pingHeaders = map[string][2]string{
	"github":    {"X-GitHub-Event", "ping"},
	"bitbucket": {"X-Event-Key", "diagnostics:ping"},
	"generic":   {"X-Gitmon-Event", "ping"},
}

func (rg *rig) send(t *testing.T, method, repo string, body []byte, h http.Header) int {
	t.Helper()
	req, err := http.NewRequest(method, rg.srv.URL+"/webhooks/"+repo, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := rg.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestProviders(t *testing.T) {
	const body = `{"ref":"refs/heads/prod","after":"0000000000000000000000000000000000000000"}`
	for name, p := range providers {
		t.Run(name, func(t *testing.T) {
			rg := newRig(t)
			delivery := 0
			hdr := func(key, body string) http.Header {
				h := http.Header{}
				sign(name, key, body, h)
				delivery++
				h.Set(p.delivery[0], fmt.Sprintf("delivery-%d", delivery))
				return h
			}
			cases := []struct {
				name    string
				method  string
				repo    string
				body    string
				headers http.Header
				want    int
				polls   int // polls asked for by this case
			}{
				{"good", "POST", name, body, hdr(secret, body), 202, 1},
				{"empty body", "POST", name, "", hdr(secret, ""), 202, 1},
				// GitLab sends the secret itself, which covers no body: a
				// changed body with the right token is accepted (and, as the
				// payload decides nothing, only polls).
				{"forged body", "POST", name, body + " ", hdr(secret, body), map[bool]int{true: 202, false: 401}[p.token], map[bool]int{true: 1}[p.token]},
				{"wrong secret", "POST", name, body, hdr("not the secret", body), 401, 0},
				{"secret longer", "POST", name, body, hdr(secret+"x", body), 401, 0},
				{"secret shorter", "POST", name, body, hdr(secret[:len(secret)-1], body), 401, 0},
				{"missing header", "POST", name, body, http.Header{p.delivery[0]: {"x"}}, 401, 0},
				{"empty header", "POST", name, body, http.Header{p.header: {""}}, 401, 0},
				{"unknown repository", "POST", "nope", body, hdr(secret, body), 404, 0},
				{"GET", "GET", name, "", hdr(secret, ""), 405, 0},
				{"PUT", "PUT", name, body, hdr(secret, body), 405, 0},
			}
			if !p.token {
				full := p.prefix + hmacHex(secret, body)
				cases = append(cases,
					struct {
						name, method, repo, body string
						headers                  http.Header
						want, polls              int
					}{"truncated signature", "POST", name, body, http.Header{p.header: {full[:len(full)-2]}}, 401, 0},
					struct {
						name, method, repo, body string
						headers                  http.Header
						want, polls              int
					}{"no prefix", "POST", name, body, http.Header{p.header: {strings.TrimPrefix(full, p.prefix) + "00"}}, 401, 0},
					struct {
						name, method, repo, body string
						headers                  http.Header
						want, polls              int
					}{"not hex", "POST", name, body, http.Header{p.header: {p.prefix + strings.Repeat("zz", 32)}}, 401, 0},
				)
			}
			polls := 0
			for _, c := range cases {
				got := rg.send(t, c.method, c.repo, []byte(c.body), c.headers)
				polls += c.polls
				if got != c.want || rg.count(name) != polls {
					t.Errorf("%s: %d and %d polls, want %d and %d", c.name, got, rg.count(name), c.want, polls)
				}
			}
		})
	}
}

func TestRedeliveryTriggersNothingNew(t *testing.T) {
	for name, p := range providers {
		t.Run(name, func(t *testing.T) {
			rg := newRig(t)
			body := `{"zen":"x"}`
			h := http.Header{}
			sign(name, secret, body, h)
			h.Set(p.delivery[0], "72d3162e-cc78-11e3-81ab-4c9367dc0958")
			for i := range 3 {
				if got := rg.send(t, "POST", name, []byte(body), h); got != 202 {
					t.Fatalf("delivery %d: %d, want 202", i, got)
				}
			}
			if n := rg.count(name); n != 1 {
				t.Errorf("3 deliveries of one id polled %d times, want 1", n)
			}
			// Another id polls again; a delivery without an id always polls.
			h.Set(p.delivery[0], "another")
			rg.send(t, "POST", name, []byte(body), h)
			h.Del(p.delivery[0])
			rg.send(t, "POST", name, []byte(body), h)
			rg.send(t, "POST", name, []byte(body), h)
			if n := rg.count(name); n != 4 {
				t.Errorf("polls %d, want 4", n)
			}
			want := []string{"accepted", "redelivery", "redelivery", "accepted", "accepted", "accepted"}
			for i, r := range rg.results {
				if r != name+":"+want[i] {
					t.Errorf("result %d: %s, want %s", i, r, want[i])
				}
			}
		})
	}
}

// A forged delivery cannot take up a delivery id, so the genuine one
// with that id still polls.
func TestForgedDeliveryDoesNotConsumeID(t *testing.T) {
	rg := newRig(t)
	body := "{}"
	h := http.Header{"X-Github-Delivery": {"id-1"}}
	sign("github", "forger", body, h)
	if got := rg.send(t, "POST", "github", []byte(body), h); got != 401 {
		t.Fatalf("forged: %d", got)
	}
	sign("github", secret, body, h)
	if got := rg.send(t, "POST", "github", []byte(body), h); got != 202 || rg.count("github") != 1 {
		t.Errorf("genuine after forged: %d, %d polls", got, rg.count("github"))
	}
}

func TestPing(t *testing.T) {
	for name, ph := range pingHeaders {
		t.Run(name, func(t *testing.T) {
			rg := newRig(t)
			h := http.Header{ph[0]: {ph[1]}}
			sign(name, secret, "{}", h)
			if got := rg.send(t, "POST", name, []byte("{}"), h); got != 204 || rg.count(name) != 0 {
				t.Errorf("ping: %d, %d polls; want 204, none", got, rg.count(name))
			}
			// A ping must be signed too.
			sign(name, "forger", "{}", h)
			if got := rg.send(t, "POST", name, []byte("{}"), h); got != 401 {
				t.Errorf("forged ping: %d, want 401", got)
			}
		})
	}
}

func TestOversized(t *testing.T) {
	rg := newRig(t)
	for _, tc := range []struct {
		name  string
		size  int
		want  int
		chunk bool // no Content-Length: the cap is found while reading
	}{
		{"exactly 1 MiB", MaxBody, 202, false},
		{"1 MiB + 1", MaxBody + 1, 413, false},
		{"1 MiB + 1 chunked", MaxBody + 1, 413, true},
		{"8 MiB chunked", 8 * MaxBody, 413, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := bytes.Repeat([]byte("a"), tc.size)
			h := http.Header{}
			sign("github", secret, string(body), h)
			var r io.Reader = bytes.NewReader(body)
			if tc.chunk {
				r = io.MultiReader(r) // hides the length
			}
			req, _ := http.NewRequest("POST", rg.srv.URL+"/webhooks/github", r)
			req.Header = h
			before := rg.count("github")
			resp, err := rg.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			polled := rg.count("github") - before
			if resp.StatusCode != tc.want || (tc.want == 413) != (polled == 0) {
				t.Errorf("%d bytes: %d and %d polls, want %d", tc.size, resp.StatusCode, polled, tc.want)
			}
		})
	}
}

// Observe never sees a label for a path that is not a configured
// repository, whatever the method.
func TestUnknownRepositoryAddsNoLabel(t *testing.T) {
	rg := newRig(t)
	rg.send(t, "POST", "evil-"+strings.Repeat("x", 50), nil, nil)
	rg.send(t, "GET", "evil2", nil, nil)
	for _, r := range rg.results {
		if !strings.HasPrefix(r, ":") {
			t.Errorf("result %q labels an unknown repository", r)
		}
	}
}

func TestLRUBound(t *testing.T) {
	l := newLRU(3)
	k := func(i byte) [32]byte { return [32]byte{i} }
	for i := range byte(3) {
		if !l.add(k(i)) {
			t.Fatal("new key seen")
		}
	}
	l.add(k(0)) // 0 becomes the most recent
	l.add(k(3)) // forgets 1
	if l.order.Len() != 3 || len(l.index) != 3 {
		t.Fatalf("size %d/%d, want 3", l.order.Len(), len(l.index))
	}
	if !l.add(k(1)) {
		t.Error("1 should have been forgotten")
	}
	if l.add(k(0)) {
		t.Error("0 was seen recently")
	}
}

// Each provider's other delivery-id headers dedup as well: GitLab's
// Idempotency-Key (kept across its retries), Bitbucket Data Center's
// X-Request-Id.
func TestAlternativeDeliveryIDs(t *testing.T) {
	for _, c := range []struct{ provider, header string }{
		{"gitlab", "Idempotency-Key"},
		{"bitbucket", "X-Request-Id"},
	} {
		t.Run(c.provider, func(t *testing.T) {
			rg := newRig(t)
			h := http.Header{c.header: {"d-1"}}
			sign(c.provider, secret, "{}", h)
			rg.send(t, "POST", c.provider, []byte("{}"), h)
			rg.send(t, "POST", c.provider, []byte("{}"), h)
			if n := rg.count(c.provider); n != 1 {
				t.Errorf("two deliveries with %s d-1 polled %d times, want 1", c.header, n)
			}
		})
	}
}

// An id that comes back with another body is another event: a sender
// that reuses ids must not lose a push.
func TestReusedIDWithAnotherBodyPolls(t *testing.T) {
	rg := newRig(t)
	for _, body := range []string{`{"after":"a"}`, `{"after":"b"}`} {
		h := http.Header{"X-Github-Delivery": {"same"}}
		sign("github", secret, body, h)
		if got := rg.send(t, "POST", "github", []byte(body), h); got != 202 {
			t.Fatalf("%s: %d", body, got)
		}
	}
	if n := rg.count("github"); n != 2 {
		t.Errorf("polled %d times, want 2", n)
	}
}

// failReader fails the test if the handler reads the body.
type failReader struct{ t *testing.T }

func (f failReader) Read([]byte) (int, error) {
	f.t.Error("the body of a delivery that cannot be genuine was read")
	return 0, io.EOF
}

// A delivery whose signature header cannot be right, or a wrong GitLab
// token, is refused before a byte of its body is read.
func TestImpossibleSignatureRefusedUnread(t *testing.T) {
	h := New(map[string]Hook{"github": {Provider: "github", Secret: []byte(secret)}, "gitlab": {Provider: "gitlab", Secret: []byte(secret)}},
		Options{Trigger: func(string) { t.Error("polled") }})
	for _, c := range []struct{ repo, header, value string }{
		{"github", "X-Hub-Signature-256", "sha1=" + strings.Repeat("0", 40)},
		{"github", "X-Hub-Signature-256", "sha256=" + strings.Repeat("0", 63)},
		{"github", "X-Hub-Signature-256", "sha256=" + strings.Repeat("z", 64)},
		{"gitlab", "X-Gitlab-Token", "not the secret"},
	} {
		req := httptest.NewRequest("POST", "/webhooks/"+c.repo, failReader{t})
		req.SetPathValue("repository", c.repo)
		req.Header.Set(c.header, c.value)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 401 {
			t.Errorf("%s %s: %d, want 401", c.header, c.value, w.Code)
		}
	}
}

// A hook whose secret is empty (a secret file that is empty) lets
// nothing in, not even a delivery that "signs" with the empty key.
func TestEmptySecretLetsNothingIn(t *testing.T) {
	for _, p := range []string{"github", "gitlab"} {
		h := New(map[string]Hook{"r": {Provider: p}}, Options{Trigger: func(string) { t.Error("polled") }})
		hdr := http.Header{}
		sign(p, "", "{}", hdr)
		if p == "gitlab" {
			hdr.Set("X-Gitlab-Token", "")
		}
		req := httptest.NewRequest("POST", "/webhooks/r", strings.NewReader("{}"))
		req.SetPathValue("repository", "r")
		req.Header = hdr
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 401 {
			t.Errorf("%s with an empty secret: %d, want 401", p, w.Code)
		}
	}
}
