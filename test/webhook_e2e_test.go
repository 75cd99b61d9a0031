package test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/test/gitserver"
)

// hookSecret is the webhook secret of the end-to-end tests.
const hookSecret = "correct horse battery staple"

// hookHost is how one Git host signs and names a push delivery (SPEC §8),
// as its documentation describes it.
type hookHost struct {
	provider string
	// sign sets the signature header of body under secret.
	sign func(h http.Header, secret string, body []byte)
	// push are the headers of a push event with delivery id; ping those of
	// the host's test delivery (nil: it has none, its test is a push).
	push func(id string) http.Header
	ping http.Header
	// payload is a push event naming another branch and commit than the
	// one that moved: gitmon must not believe it.
	payload string
}

func hmacHeader(name, prefix string) func(http.Header, string, []byte) {
	return func(h http.Header, secret string, body []byte) {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		h.Set(name, prefix+hex.EncodeToString(m.Sum(nil)))
	}
}

var hookHosts = []hookHost{
	{
		provider: "github",
		sign:     hmacHeader("X-Hub-Signature-256", "sha256="),
		push:     func(id string) http.Header { return http.Header{"X-Github-Event": {"push"}, "X-Github-Delivery": {id}} },
		ping:     http.Header{"X-Github-Event": {"ping"}, "X-Github-Delivery": {"ping-1"}},
		payload:  `{"ref":"refs/heads/prod","before":"0000000000000000000000000000000000000000","after":"1111111111111111111111111111111111111111","repository":{"full_name":"platform/deployments"}}`,
	},
	{
		provider: "gitlab",
		sign:     func(h http.Header, secret string, _ []byte) { h.Set("X-Gitlab-Token", secret) },
		push: func(id string) http.Header {
			return http.Header{"X-Gitlab-Event": {"Push Hook"}, "X-Gitlab-Event-Uuid": {"event-" + id}, "Idempotency-Key": {id}}
		},
		payload: `{"object_kind":"push","ref":"refs/heads/prod","after":"1111111111111111111111111111111111111111","project":{"path_with_namespace":"platform/deployments"}}`,
	},
	{
		provider: "gitea",
		sign:     hmacHeader("X-Gitea-Signature", ""),
		push:     func(id string) http.Header { return http.Header{"X-Gitea-Event": {"push"}, "X-Gitea-Delivery": {id}} },
		payload:  `{"ref":"refs/heads/prod","after":"1111111111111111111111111111111111111111","repository":{"full_name":"platform/deployments"}}`,
	},
	{
		provider: "bitbucket",
		sign:     hmacHeader("X-Hub-Signature", "sha256="),
		push: func(id string) http.Header {
			return http.Header{"X-Event-Key": {"repo:refs_changed"}, "X-Request-Id": {id}}
		},
		ping:    http.Header{"X-Event-Key": {"diagnostics:ping"}, "X-Request-Id": {"ping-1"}},
		payload: `{"eventKey":"repo:refs_changed","changes":[{"ref":{"id":"refs/heads/prod"},"toHash":"1111111111111111111111111111111111111111"}]}`,
	},
	{
		provider: "generic",
		sign:     hmacHeader("X-Gitmon-Signature", "sha256="),
		push:     func(id string) http.Header { return http.Header{"X-Gitmon-Event": {"push"}, "X-Gitmon-Delivery": {id}} },
		ping:     http.Header{"X-Gitmon-Event": {"ping"}},
		payload:  `{"ref":"refs/heads/prod"}`,
	},
}

// refusedDelivery is a delivery that must not poll, and its answer.
type refusedDelivery struct {
	what, method, repo string
	h                  http.Header
	body               []byte
	want               int
}

// deliver posts body to /webhooks/repo with headers and returns the
// status code.
func deliver(t *testing.T, d *Daemon, method, repo string, h http.Header, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+d.Addr+"/webhooks/"+repo, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestWebhookDeliveries runs `gitmon serve` with a poll interval of an
// hour, so that only a delivery can make it see a push, against each Git
// host's deliveries (SPEC §8): a forged, unsigned or oversized one, one
// for an unknown repository, another method and a ping change nothing; a
// genuine one makes serve record and release the commit that really
// moved, whatever its payload claims; its redelivery triggers nothing new.
func TestWebhookDeliveries(t *testing.T) {
	for _, host := range hookHosts {
		t.Run(host.provider, func(t *testing.T) {
			repo := NewGitRepo(t)
			repo.WriteFile("services/payments.yaml", Descriptor("payments", "1.0.0"))
			repo.Commit("qa", "baseline", Alice, Alice)
			secretKey := "secret_file: hook-secret"
			if host.provider == "gitlab" {
				secretKey = "secret_env: HOOK_SECRET"
			}
			d := NewDaemon(t, ConfigOptions{URL: gitserver.Daemon(t, repo), Insecure: true, PollInterval: time.Hour,
				Repo: fmt.Sprintf("webhook: {provider: %s, %s}\n", host.provider, secretKey)})
			d.Env = append(d.Env, "HOOK_SECRET="+hookSecret)
			if err := os.WriteFile(filepath.Join(d.Dir, "hook-secret"), []byte(hookSecret+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			d.Start()
			polls := func() float64 { return cMetric(d, "gitmon_polls_total", `repository="deployments"`) }
			d.Eventually(10*time.Second, "the first poll counted", func() bool { return polls() >= 1 })
			base := polls()

			repo.WriteFile("services/payments.yaml", Descriptor("payments", "1.1.0"))
			c1 := repo.Commit("qa", "payments 1.1.0", Alice, Alice)
			body := []byte(host.payload)
			signed := func(h http.Header, secret string, b []byte) http.Header {
				h = h.Clone()
				host.sign(h, secret, b)
				return h
			}
			big := bytes.Repeat([]byte(" "), 1<<20+1)
			zen := []byte(`{"zen":"Keep it logically awesome."}`)
			refused := []refusedDelivery{
				{"forged", "POST", "deployments", signed(host.push("f-1"), "not the secret", body), body, 401},
				{"unsigned", "POST", "deployments", host.push("f-2"), body, 401},
				{"oversized", "POST", "deployments", signed(host.push("f-3"), hookSecret, big), big, 413},
				{"unknown repository", "POST", "other", signed(host.push("f-4"), hookSecret, body), body, 404},
				{"GET", "GET", "deployments", signed(host.push("f-5"), hookSecret, nil), nil, 405},
			}
			if host.ping != nil {
				refused = append(refused, refusedDelivery{"ping", "POST", "deployments", signed(host.ping, hookSecret, zen), zen, 204})
			}
			for _, c := range refused {
				if got := deliver(t, d, c.method, c.repo, c.h, c.body); got != c.want {
					t.Errorf("%s delivery: %d, want %d", c.what, got, c.want)
				}
			}
			if n := polls(); n != base {
				t.Errorf("refused deliveries polled: %v polls, want %v", n, base)
			}
			if got := len(d.Deployed()); got != 0 {
				t.Errorf("%d deploys before a genuine delivery", got)
			}

			// A genuine delivery: its payload names prod and a commit that
			// does not exist; the ref listing finds qa at c1.
			good := signed(host.push("d-1"), hookSecret, body)
			if got := deliver(t, d, "POST", "deployments", good, body); got != 202 {
				t.Fatalf("genuine delivery: %d, want 202", got)
			}
			if r := d.RecordFor("qa", "payments", c1); r.Status != "succeeded" {
				t.Fatalf("record of c1: %s %v", r.Status, r.Reasons)
			}
			// Its redelivery is accepted and triggers nothing new.
			if got := deliver(t, d, "POST", "deployments", good, body); got != 202 {
				t.Errorf("redelivery: %d, want 202", got)
			}
			repo.WriteFile("services/payments.yaml", Descriptor("payments", "1.2.0"))
			c2 := repo.Commit("qa", "payments 1.2.0", Alice, Alice)
			if got := deliver(t, d, "POST", "deployments", signed(host.push("d-2"), hookSecret, body), body); got != 202 {
				t.Fatalf("second delivery: %d, want 202", got)
			}
			if r := d.RecordFor("qa", "payments", c2); r.Status != "succeeded" {
				t.Fatalf("record of c2: %s %v", r.Status, r.Reasons)
			}
			d.Eventually(10*time.Second, "two polls after the first", func() bool { return polls() >= base+2 })
			if n := polls(); n != base+2 {
				t.Errorf("%v polls after the first, want 2 (one per genuine delivery)", n-base)
			}
			if got := d.Deployed(); len(got) != 2 || !strings.Contains(got[0], "1.1.0") || !strings.Contains(got[1], "1.2.0") {
				t.Errorf("deployed %q, want 1.1.0 then 1.2.0", got)
			}
			results := map[string]float64{"accepted": 2, "redelivery": 1, "unauthorized": 2, "too_large": 1}
			if host.ping != nil {
				results["ping"] = 1
			}
			for result, want := range results {
				if got := cMetric(d, "gitmon_webhooks_total", `repository="deployments"`, `result="`+result+`"`); got != want {
					t.Errorf("gitmon_webhooks_total{result=%q} = %v, want %v", result, got, want)
				}
			}
			if logs := d.Logs(); strings.Contains(logs, hookSecret) {
				t.Errorf("the webhook secret is in the logs")
			}
		})
	}
}

// TestWebhookPollingStaysTheBackstop: a repository with a webhook whose
// deliveries never come is still polled at poll_interval.
func TestWebhookPollingStaysTheBackstop(t *testing.T) {
	repo := NewGitRepo(t)
	repo.WriteFile("services/payments.yaml", Descriptor("payments", "1.0.0"))
	repo.Commit("qa", "baseline", Alice, Alice)
	d := NewDaemon(t, ConfigOptions{URL: gitserver.Daemon(t, repo), Insecure: true,
		Repo: "webhook: {provider: github, secret_env: HOOK_SECRET}\n"})
	d.Env = append(d.Env, "HOOK_SECRET="+hookSecret)
	d.Start()
	repo.WriteFile("services/payments.yaml", Descriptor("payments", "1.1.0"))
	c := repo.Commit("qa", "payments 1.1.0", Alice, Alice)
	if r := d.RecordFor("qa", "payments", c); r.Status != "succeeded" {
		t.Fatalf("record without a delivery: %s %v", r.Status, r.Reasons)
	}
}
