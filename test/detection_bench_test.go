package test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/runners"
)

// startStamp is an in-process deploy runner that succeeds at once and
// sends the moment each run started.
type startStamp struct{ started chan time.Time }

func (s *startStamp) Run(ctx context.Context, req *runners.Request, out io.Writer, h runners.Handle) (runners.Result, error) {
	s.started <- time.Now()
	return runners.Result{OK: true}, nil
}

// detectionPushes is how many pushes each variant of
// BenchmarkPushToFirstStage measures.
const detectionPushes = 200

// BenchmarkPushToFirstStage measures on loopback, for 200 pushes, the time
// from a push's completion to the first stage of its release started:
//   - webhook: poll_interval 1h, so only the delivery (signed, GitHub's
//     headers, posted when the push completes, as the host would) can
//     explain it;
//   - poll-1s: no webhook, poll_interval 1s, pushes at random moments of
//     the interval.
//
// It reports p50 and p99 (goal for the webhook: p99 < 100 ms), and the
// mean of gitmon's own tip-seen → stage-started histogram. Run it with
// -benchtime=1x: one iteration is the 200 pushes.
func BenchmarkPushToFirstStage(b *testing.B) {
	requireE2E(b, hasGit(), "git")
	const secret = "bench-webhook-secret"
	b.Setenv("BENCH_HOOK_SECRET", secret)
	for _, v := range []struct {
		name    string
		poll    time.Duration
		repo    string
		webhook bool
	}{
		{"webhook-poll-1h", time.Hour, "webhook: {provider: github, secret_env: BENCH_HOOK_SECRET}", true},
		{"poll-1s", time.Second, "", false},
	} {
		b.Run(v.name, func(b *testing.B) {
			var lat []time.Duration
			var seenSum, seenCount float64
			for range b.N {
				dir := b.TempDir()
				bare := filepath.Join(dir, "repo.git")
				fastImport(b, bare, 20, 0)
				work := filepath.Join(dir, "work")
				git(b, "", "clone", "-q", "--branch", "qa", bare, work)
				run := &startStamp{started: make(chan time.Time, 1)}
				a, _, stop := benchDaemonWith(b, bare, v.poll, v.repo, run)
				waitFor(b, time.Minute, "baseline", func() bool { ok, _ := a.Ready(); return ok })
				hook := "http://" + a.Addr() + "/webhooks/deployments"
				for i := range detectionPushes {
					path := filepath.Join(work, "services", fmt.Sprintf("svc-%04d.yaml", i%20))
					os.WriteFile(path, []byte(fmt.Sprintf("service: svc-%04d\nversion: 3.0.%d\n", i%20, i)), 0o644)
					git(b, work, "-c", "user.name=Alice", "-c", "user.email=alice@example.com", "commit", "-qam", "bump")
					if !v.webhook {
						// A push at a random moment of the poll interval,
						// not just after the poll that started the last one.
						time.Sleep(rand.N(v.poll))
					}
					git(b, work, "push", "-q", "origin", "qa")
					pushed := time.Now()
					if v.webhook {
						deliverPush(b, hook, secret, strconv.Itoa(i))
					}
					select {
					case started := <-run.started:
						lat = append(lat, started.Sub(pushed))
					case <-time.After(time.Minute):
						b.Fatalf("push %d: no stage started within a minute", i)
					}
				}
				sum, count := histogram(b, a.Addr(), "gitmon_detection_latency_seconds")
				seenSum, seenCount = seenSum+sum, seenCount+count
				stop()
			}
			// Whether the cost grows with the pushes made: the first and
			// the last quarter's means.
			q := len(lat) / 4
			b.ReportMetric(float64(mean(lat[:q]).Microseconds())/1000, "ms-mean-first-quarter")
			b.ReportMetric(float64(mean(lat[len(lat)-q:]).Microseconds())/1000, "ms-mean-last-quarter")
			slices.Sort(lat)
			b.ReportMetric(float64(quantile(lat, 0.50).Microseconds())/1000, "ms-p50")
			b.ReportMetric(float64(quantile(lat, 0.99).Microseconds())/1000, "ms-p99")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "ms-max")
			if seenCount > 0 {
				// gitmon's own share: from the poll that saw the tip to the
				// stage started (the rest is the delivery or the poll's wait).
				b.ReportMetric(seenSum/seenCount*1000, "ms-tip-seen-to-stage-mean")
			}
		})
	}
}

func mean(ds []time.Duration) time.Duration {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(max(1, len(ds)))
}

// quantile is the q-quantile of sorted durations (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// deliverPush posts a GitHub push delivery signed with secret.
func deliverPush(tb testing.TB, url, secret, id string) {
	tb.Helper()
	body := []byte(`{"ref":"refs/heads/qa"}`)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m.Sum(nil)))
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		tb.Fatalf("delivery %s: %d", id, resp.StatusCode)
	}
}
