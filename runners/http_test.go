package runners

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/descriptors"
)

// server is a test server on 127.0.0.1 counting requests per path.
type server struct {
	*httptest.Server
	hits map[string]*atomic.Int32
}

func newServer(t *testing.T, handlers map[string]http.HandlerFunc) *server {
	t.Helper()
	s := &server{hits: map[string]*atomic.Int32{}}
	mux := http.NewServeMux()
	for p, h := range handlers {
		n := &atomic.Int32{}
		s.hits[p] = n
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			h(w, r)
		})
	}
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func (s *server) port(t *testing.T) int {
	u, _ := url.Parse(s.URL)
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func status(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }
}

// healthAfter answers 503 until its n-th request.
func healthAfter(n int32) http.HandlerFunc {
	var seen atomic.Int32
	return func(w http.ResponseWriter, r *http.Request) {
		if seen.Add(1) < n {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	}
}

// checkRequest is a request whose descriptor points its relative
// endpoints at s, with tiny intervals.
func checkRequest(t *testing.T, s *server, edit func(*descriptors.Descriptor)) *Request {
	t.Helper()
	d := descriptors.New()
	d.Service, d.Version = "payments", "1.4.2"
	d.Healthcheck.Scheme = "http"
	d.Healthcheck.Interval = descriptors.Duration(time.Millisecond)
	d.Healthcheck.Timeout = descriptors.Duration(10 * time.Second)
	if s != nil {
		d.Domain, d.Port = "127.0.0.1", s.port(t)
	}
	if edit != nil {
		edit(d)
	}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return &Request{Environment: "qa", Service: "payments", Stage: "healthcheck", Descriptor: b}
}

func runCheck(t *testing.T, env Env, req *Request) (Result, string) {
	t.Helper()
	f, ok := Lookup(KindHTTP)
	if !ok {
		t.Fatal("the http runner is not registered")
	}
	r, err := f(Pipeline{Name: "healthcheck", Kind: KindHTTP}, env)
	if err != nil {
		t.Fatal(err)
	}
	out := NewOutput(1<<16, env.Secrets)
	res, err := r.Run(t.Context(), req, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res, out.String()
}

func TestHTTPHealthyFirstTry(t *testing.T) {
	s := newServer(t, map[string]http.HandlerFunc{"/healthz": status(200), "/ready": status(204)})
	res, out := runCheck(t, Env{}, checkRequest(t, s, func(d *descriptors.Descriptor) {
		d.Healthcheck.Endpoints = []string{"/healthz", "/ready"}
	}))
	if !res.OK || res.Message != "2 endpoints healthy" {
		t.Fatalf("Run = %+v\n%s", res, out)
	}
	want := fmt.Sprintf("GET %s/healthz → 200 (attempt 1/3)\nGET %s/ready → 204 (attempt 1/3)\n", s.URL, s.URL)
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	if s.hits["/healthz"].Load() != 1 || s.hits["/ready"].Load() != 1 {
		t.Errorf("hits %d, %d", s.hits["/healthz"].Load(), s.hits["/ready"].Load())
	}
}

func TestHTTPHealthyAfterRetries(t *testing.T) {
	s := newServer(t, map[string]http.HandlerFunc{"/healthz": healthAfter(3)})
	res, out := runCheck(t, Env{}, checkRequest(t, s, func(d *descriptors.Descriptor) {
		d.Healthcheck.Endpoints = []string{"/healthz"}
		d.Healthcheck.Retries = 5
	}))
	if !res.OK || s.hits["/healthz"].Load() != 3 {
		t.Fatalf("Run = %+v after %d requests\n%s", res, s.hits["/healthz"].Load(), out)
	}
	if !strings.Contains(out, "→ 503 (attempt 2/5)\n  body: \"starting\\n\"\n") || !strings.Contains(out, "→ 200 (attempt 3/5)") {
		t.Errorf("output:\n%s", out)
	}
}

func TestHTTPNeverHealthy(t *testing.T) {
	s := newServer(t, map[string]http.HandlerFunc{"/healthz": status(200), "/ready": status(503)})
	res, out := runCheck(t, Env{}, checkRequest(t, s, func(d *descriptors.Descriptor) {
		d.Healthcheck.Endpoints = []string{"/healthz", "/ready"}
		d.Healthcheck.Retries = 4
	}))
	if res.OK {
		t.Fatalf("Run = %+v", res)
	}
	if got := s.hits["/ready"].Load(); got != 4 {
		t.Errorf("/ready had %d requests, want exactly 4", got)
	}
	want := "healthcheck of " + s.URL + "/ready failed after 4 attempts; last: status 503 Service Unavailable"
	if res.Message != want {
		t.Errorf("Message %q, want %q\n%s", res.Message, want, out)
	}
}

func TestHTTPRequestTimeout(t *testing.T) {
	release := make(chan struct{})
	s := newServer(t, map[string]http.HandlerFunc{"/slow": func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}})
	defer close(release)
	res, out := runCheck(t, Env{}, checkRequest(t, s, func(d *descriptors.Descriptor) {
		d.Healthcheck.Endpoints = []string{"/slow"}
		d.Healthcheck.Retries = 2
		d.Healthcheck.Timeout = descriptors.Duration(20 * time.Millisecond)
	}))
	if res.OK || !strings.HasSuffix(res.Message, "last: error: no response within 20ms") || s.hits["/slow"].Load() != 2 {
		t.Errorf("Run = %+v after %d requests\n%s", res, s.hits["/slow"].Load(), out)
	}
}

func TestHTTPRedirects(t *testing.T) {
	other := newServer(t, map[string]http.HandlerFunc{"/": status(200)})
	otherURL := strings.Replace(other.URL, "127.0.0.1", "localhost", 1) // another host name
	var s *server
	s = newServer(t, map[string]http.HandlerFunc{
		"/elsewhere": func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, otherURL+"/", http.StatusFound) },
		"/a":         func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/b", http.StatusMovedPermanently) },
		"/b": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, s.URL+"/c", http.StatusTemporaryRedirect)
		},
		"/c":    status(200),
		"/loop": func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) },
	})

	t.Run("to another host is refused", func(t *testing.T) {
		res, out := runCheck(t, Env{}, checkRequest(t, s, func(d *descriptors.Descriptor) { d.Healthcheck.Endpoints = []string{"/elsewhere"} }))
		want := fmt.Sprintf("healthcheck of %s/elsewhere refused: redirect to another host (%s) refused", s.URL, strings.TrimPrefix(otherURL, "http://"))
		if res.OK || res.Message != want {
			t.Errorf("Message %q, want %q\n%s", res.Message, want, out)
		}
		if other.hits["/"].Load() != 0 || s.hits["/elsewhere"].Load() != 1 {
			t.Errorf("the other host had %d requests, the first %d (a refusal is not retried)", other.hits["/"].Load(), s.hits["/elsewhere"].Load())
		}
	})
	t.Run("same host is followed", func(t *testing.T) {
		res, out := runCheck(t, Env{}, checkRequest(t, s, func(d *descriptors.Descriptor) { d.Healthcheck.Endpoints = []string{"/a"} }))
		if !res.OK || s.hits["/c"].Load() != 1 {
			t.Errorf("Run = %+v\n%s", res, out)
		}
	})
	t.Run("at most 5", func(t *testing.T) {
		res, out := runCheck(t, Env{}, checkRequest(t, s, func(d *descriptors.Descriptor) {
			d.Healthcheck.Endpoints = []string{"/loop"}
			d.Healthcheck.Retries = 1
		}))
		if res.OK || !strings.Contains(res.Message, "stopped after 5 redirects") || s.hits["/loop"].Load() != 6 {
			t.Errorf("Run = %+v after %d requests\n%s", res, s.hits["/loop"].Load(), out)
		}
	})
}

func TestHTTPLinkLocalRefusedAtDial(t *testing.T) {
	for _, endpoint := range []string{
		"http://169.254.169.254/latest/meta-data/",
		"https://169.254.169.254:443/",
		"http://[fe80::1%25lo]:8080/healthz",
		"http://[::ffff:169.254.169.254]/",
		"http://[64:ff9b::a9fe:a9fe]/", // NAT64 form of 169.254.169.254
	} {
		t.Run(endpoint, func(t *testing.T) {
			start := time.Now()
			res, out := runCheck(t, Env{}, checkRequest(t, nil, func(d *descriptors.Descriptor) {
				d.Healthcheck.Endpoints = []string{endpoint}
				d.Healthcheck.Retries = 3
				d.Healthcheck.Timeout = descriptors.Duration(time.Minute)
			}))
			if res.OK || !strings.Contains(res.Message, "is link-local; healthchecks never reach link-local addresses") {
				t.Errorf("Message %q\n%s", res.Message, out)
			}
			if n := strings.Count(out, "(attempt "); n != 1 {
				t.Errorf("%d attempts, want 1: a refusal is not retried\n%s", n, out)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %s: something was dialled", d)
			}
		})
	}
}

func TestCheckDialAddress(t *testing.T) {
	for addr, refused := range map[string]bool{
		"169.254.169.254:80":       true,
		"169.254.0.1:443":          true,
		"[fe80::1]:80":             true,
		"[fe80::abcd%eth0]:80":     true,
		"[::ffff:169.254.1.1]:80":  true,
		"[64:ff9b::a9fe:a9fe]:80":  true,
		"[ff02::1]:80":             true, // link-local multicast
		"224.0.0.251:5353":         true, // link-local multicast
		"not-an-address:80":        true, // cannot be checked
		"127.0.0.1:8080":           false,
		"10.1.2.3:443":             false,
		"[::1]:80":                 false,
		"[2001:db8::1]:443":        false,
		"[64:ff9b::a01:203]:80":    false,
		"169.255.0.1:80":           false,
		"[fec0::1]:80":             false,
		"[::ffff:127.0.0.1]:65535": false,
	} {
		err := checkDialAddress("tcp", addr, nil)
		if (err != nil) != refused {
			t.Errorf("checkDialAddress(%s) = %v, want refused %v", addr, err, refused)
		}
	}
	if !linkLocal(netip.MustParseAddr("fe80::1")) {
		t.Error("fe80::1 is link-local")
	}
}

func TestHTTPHealthcheckHosts(t *testing.T) {
	s := newServer(t, map[string]http.HandlerFunc{"/healthz": status(200)})
	list := func(g ...string) *[]string { return &g }
	req := func(env string) *Request {
		r := checkRequest(t, s, func(d *descriptors.Descriptor) { d.Healthcheck.Endpoints = []string{"/healthz"} })
		r.Environment = env
		return r
	}
	tests := []struct {
		name string
		env  Env
		envn string
		ok   bool
	}{
		{name: "no list allows every host", env: Env{}, envn: "qa", ok: true},
		{name: "a matching glob", env: Env{HealthcheckHosts: list("*.example.com", "127.0.0.*")}, envn: "qa", ok: true},
		{name: "outside the globs", env: Env{HealthcheckHosts: list("*.svc.example.com")}, envn: "qa"},
		{name: "empty list allows nothing", env: Env{HealthcheckHosts: list()}, envn: "qa"},
		{name: "environment override refuses", env: Env{EnvironmentHealthcheckHosts: map[string]*[]string{"prod": list("*.prod.example.com")}}, envn: "prod"},
		{name: "environment override allows", env: Env{HealthcheckHosts: list(), EnvironmentHealthcheckHosts: map[string]*[]string{"qa": nil}}, envn: "qa", ok: true},
		{name: "another environment keeps the global list", env: Env{HealthcheckHosts: list(), EnvironmentHealthcheckHosts: map[string]*[]string{"qa": nil}}, envn: "prod"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.hits["/healthz"].Load()
			res, out := runCheck(t, tt.env, req(tt.envn))
			if res.OK != tt.ok {
				t.Fatalf("Run = %+v\n%s", res, out)
			}
			if !tt.ok {
				if !strings.Contains(res.Message, "host 127.0.0.1 is outside healthcheck_hosts") || s.hits["/healthz"].Load() != before {
					t.Errorf("Message %q, %d requests reached the server", res.Message, s.hits["/healthz"].Load()-before)
				}
			}
		})
	}
	if _, err := NewHTTP(Pipeline{}, Env{HealthcheckHosts: list("[")}); err == nil {
		t.Error("NewHTTP accepted a bad glob")
	}
}

// The body is read up to the cap and no further (the server keeps the
// response open), and a secret cut by the cap shows none of its bytes.
func TestHTTPBodyCapAndRedaction(t *testing.T) {
	const secret = "TOPSECRET-0123456789"
	release := make(chan struct{})
	defer close(release)
	s := newServer(t, map[string]http.HandlerFunc{
		"/big": func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(strings.Repeat("a", MaxHealthcheckBody-5) + secret + strings.Repeat("b", 100)))
			w.(http.Flusher).Flush()
			select { // never ends the body: reading past the cap would hang
			case <-r.Context().Done():
			case <-release:
			}
		},
		"/leaky": func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "db password is "+secret+", bye", http.StatusInternalServerError)
		},
	})
	env := Env{Secrets: []string{secret}}

	res, out := runCheck(t, env, checkRequest(t, s, func(d *descriptors.Descriptor) {
		d.Healthcheck.Endpoints = []string{"/big"}
		d.Healthcheck.Timeout = descriptors.Duration(time.Minute)
	}))
	want := "  body: \"" + strings.Repeat("a", MaxHealthcheckBody-5) + Redacted + "\"\n"
	if !res.OK || !strings.HasSuffix(out, want) {
		t.Errorf("Run = %+v, output:\n%s\nwant the body line:\n%s", res, out, want)
	}

	res, out = runCheck(t, env, checkRequest(t, s, func(d *descriptors.Descriptor) {
		d.Healthcheck.Endpoints = []string{"/leaky"}
		d.Healthcheck.Retries = 1
	}))
	want = `last: status 500 Internal Server Error, body "db password is <redacted>, bye\n"`
	if res.OK || !strings.HasSuffix(res.Message, want) || strings.Contains(out, "TOPSECRET") {
		t.Errorf("Message %q, want the suffix %q; output:\n%s", res.Message, want, out)
	}
}

func TestHTTPCancelStopsPromptly(t *testing.T) {
	got := make(chan struct{}, 1)
	s := newServer(t, map[string]http.HandlerFunc{"/hang": func(w http.ResponseWriter, r *http.Request) {
		got <- struct{}{}
		<-r.Context().Done()
	}})
	tests := []struct {
		name    string
		edit    func(*descriptors.Descriptor)
		waitFor chan struct{}
	}{
		{name: "during a request", edit: func(d *descriptors.Descriptor) { d.Healthcheck.Endpoints = []string{"/hang"} }, waitFor: got},
		{name: "during initial_delay", edit: func(d *descriptors.Descriptor) {
			d.Healthcheck.Endpoints = []string{"/hang"}
			d.Healthcheck.InitialDelay = descriptors.Duration(30 * time.Minute)
		}},
		{name: "during an interval", edit: func(d *descriptors.Descriptor) {
			d.Healthcheck.Endpoints = []string{"/nothing-here"}
			d.Healthcheck.Interval = descriptors.Duration(10 * time.Minute)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := NewHTTP(Pipeline{}, Env{})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			req := checkRequest(t, s, func(d *descriptors.Descriptor) {
				d.Healthcheck.Timeout = descriptors.Duration(time.Minute)
				tt.edit(d)
			})
			out := NewOutput(1<<16, nil)
			done := make(chan Result, 1)
			go func() {
				res, _ := h.Run(ctx, req, out, nil)
				done <- res
			}()
			if tt.waitFor != nil {
				<-tt.waitFor
			} else {
				waitFor(t, "the first wait starts", func() bool { return strings.Contains(out.String(), "waiting") || strings.Contains(out.String(), "404") })
			}
			start := time.Now()
			cancel()
			select {
			case res := <-done:
				if res.OK || res.Message != "cancelled: context canceled" {
					t.Errorf("Run = %+v", res)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return 10s after the cancel")
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Run returned %s after the cancel", d)
			}
		})
	}
}

func TestHTTPNoEndpoints(t *testing.T) {
	res, _ := runCheck(t, Env{}, checkRequest(t, nil, nil))
	if !res.OK {
		t.Errorf("Run = %+v", res)
	}
}

func TestEndpointURL(t *testing.T) {
	tests := []struct {
		scheme, domain string
		port           int
		endpoint, want string
	}{
		{"https", "payments.qa.example.com", 0, "/healthz", "https://payments.qa.example.com/healthz"},
		{"http", "payments.qa.example.com", 8080, "/ready?full=1", "http://payments.qa.example.com:8080/ready?full=1"},
		{"http", "::1", 8080, "/healthz", "http://[::1]:8080/healthz"},
		{"https", "2001:db8::1", 0, "/healthz", "https://[2001:db8::1]/healthz"},
		{"https", "ignored.example.com", 9, "http://other.example.com:81/x", "http://other.example.com:81/x"},
		{"https", "", 0, "/healthz", ""},
		{"https", "x.example.com", 0, "ftp://x.example.com/", ""},
		{"https", "x.example.com", 0, "https://user:pw@x.example.com/", ""},
		{"https", "x.example.com", 0, "//x.example.com/", ""},
	}
	for _, tt := range tests {
		u, err := endpointURL(tt.scheme, tt.domain, tt.port, tt.endpoint)
		got := ""
		if err == nil {
			got = u.String()
		}
		if got != tt.want {
			t.Errorf("endpointURL(%q, %q, %d, %q) = %q, %v; want %q", tt.scheme, tt.domain, tt.port, tt.endpoint, got, err, tt.want)
		}
	}
}
