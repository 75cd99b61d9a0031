package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/test/gitserver"
)

// TestWebhookPollsAtOnce: with a poll interval of an hour, a signed
// delivery makes serve list the repository's refs and record the new
// commit; a forged one, a redelivery and a ping do not poll.
func TestWebhookPollsAtOnce(t *testing.T) {
	const secret = "webhook-secret-for-the-test"
	repo := gitserver.NewRepo(t)
	repo.WriteFile("services/a.yaml", tDescriptor("a", "1.0.0"))
	initial := repo.Commit("qa", "initial", tAlice, tAlice)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hook-secret"), []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, dir, fmt.Sprintf(`state: %s
poll_interval: 1h
tuning: {concurrency: 1, shutdown_grace: 50ms}
repositories:
  - {name: deployments, url: %q, webhook: {provider: github, secret_file: hook-secret}}
environments:
  - {name: qa, branch: qa, release: [deploy]}
pipelines:
  deploy: {runner: exec, command: ["/bin/true"]}
policy: {committers: ["*@example.com"]}
`, filepath.Join(dir, "state"), repo.Bare))
	ctx, cancel := context.WithCancel(context.Background())
	a, err := New(ctx, cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NoJitter: true, Listener: localListener(t)})
	if err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- a.Run(ctx) }()
	defer func() { cancel(); <-exited }()
	lastProcessed := func() string {
		b, err := a.store.Branch(ctx, "deployments", "qa")
		if err != nil {
			return ""
		}
		return b.LastProcessed
	}
	eventually(t, "the baseline", func() bool { return lastProcessed() == initial })
	polls := func() float64 { return testutil.ToFloat64(a.metrics.polls.WithLabelValues("deployments")) }
	eventually(t, "the first poll to be counted", func() bool { return polls() == 1 })

	url := "http://" + a.Addr() + "/webhooks/deployments"
	send := func(key, delivery, event string) int {
		t.Helper()
		body := `{"ref":"refs/heads/qa"}`
		req, _ := http.NewRequest("POST", url, strings.NewReader(body))
		m := hmac.New(sha256.New, []byte(key))
		m.Write([]byte(body))
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m.Sum(nil)))
		req.Header.Set("X-GitHub-Delivery", delivery)
		req.Header.Set("X-GitHub-Event", event)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := send(secret, "ping-1", "ping"); got != http.StatusNoContent {
		t.Fatalf("ping: %d", got)
	}
	repo.WriteFile("services/a.yaml", tDescriptor("a", "1.1.0"))
	c1 := repo.Commit("qa", "bump a", tAlice, tAlice)
	if got := send("forged", "d-1", "push"); got != http.StatusUnauthorized {
		t.Fatalf("forged: %d", got)
	}
	if got := send(secret, "d-1", "push"); got != http.StatusAccepted {
		t.Fatalf("genuine: %d", got)
	}
	eventually(t, "the webhook's poll to process the new commit", func() bool { return lastProcessed() == c1 })
	eventually(t, "its release to succeed", func() bool {
		recs, err := a.store.Records(ctx, store.Filter{Repository: "deployments", Environment: "qa"})
		return err == nil && len(recs) == 1 && recs[0].Commit == c1 && recs[0].Status == store.StatusSucceeded
	})
	if n := polls(); n != 2 {
		t.Errorf("%v polls, want 2: the first and the webhook's (not the ping's nor the forged one's)", n)
	}
	if got := send(secret, "d-1", "push"); got != http.StatusAccepted {
		t.Fatalf("redelivery: %d", got)
	}
	for result, want := range map[string]float64{"accepted": 1, "redelivery": 1, "ping": 1, "unauthorized": 1} {
		if got := testutil.ToFloat64(a.metrics.webhooks.WithLabelValues("deployments", result)); got != want {
			t.Errorf("gitmon_webhooks_total{result=%q} = %v, want %v", result, got, want)
		}
	}
	// The redelivery asked for nothing: the next delivery's poll is the
	// third. (Trigger runs before the 202, so a poll it asked for would be
	// counted by the time the next one is.)
	repo.WriteFile("services/a.yaml", tDescriptor("a", "1.2.0"))
	c2 := repo.Commit("qa", "bump a again", tAlice, tAlice)
	if got := send(secret, "d-2", "push"); got != http.StatusAccepted {
		t.Fatalf("second: %d", got)
	}
	eventually(t, "the second webhook's poll", func() bool { return lastProcessed() == c2 })
	if n := polls(); n != 3 {
		t.Errorf("%v polls, want 3: the redelivery must not poll", n)
	}
}
