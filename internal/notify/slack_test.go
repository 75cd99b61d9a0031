package notify

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/internal/store"
)

// Set GITMON_TEST_SLACK_TOKEN and GITMON_TEST_SLACK_CHANNEL (and
// GITMON_TEST_SLACK_API_URL for a proxy) to post to a real Slack
// workspace; the fake's assertions on blocks and threads are then
// skipped, the deliveries and thread lookups still run.

type clock struct {
	mu sync.Mutex
	t  time.Time
}

// newClock starts a second ahead, so that items enqueued now are due.
func newClock() *clock { return &clock{t: time.Now().Add(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// slackSetup returns a Slack sender, its channel, and the fake (nil when
// real Slack is used).
func slackSetup(t *testing.T, st OutboxLookup) (*Slack, string, *fakeSlack) {
	if token := os.Getenv("GITMON_TEST_SLACK_TOKEN"); token != "" {
		ch := os.Getenv("GITMON_TEST_SLACK_CHANNEL")
		return NewSlack(token, os.Getenv("GITMON_TEST_SLACK_API_URL"), ch, st, nil), ch, nil
	}
	f := newFakeSlack(t)
	return NewSlack("xoxb-test", f.srv.GetAPIURL(), "#deploys-qa", st, nil), "#deploys-qa", f
}

func TestSlackThreadBlocksAndDuplicates(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, t.TempDir())
	sl, ch, fake := slackSetup(t, st)
	clk := newClock()
	w := &Worker{Outbox: st, Senders: map[string]Sender{store.OutboxSlack: sl}, Now: clk.Now}

	rec := testRecord(store.StatusRunning)
	opts := Options{Secrets: []string{canary}, TicketURL: "https://jira.example.com/browse/OPS-7"}
	started, err := Items(rec.ID, EventStarted, RecordStarted(rec, opts), []string{ch}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec.Status = store.StatusFailed
	finished, err := Items(rec.ID, EventFinished, RecordFinished(rec, opts), []string{ch}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The started message fails (Slack answers 500): the reply waits for
	// its thread rather than going out top-level.
	if err := st.Enqueue(ctx, append(started, finished...)...); err != nil {
		t.Fatal(err)
	}
	if fake != nil {
		fake.failNext(500)
		if n, err := w.RunOnce(ctx); err != nil || n != 0 {
			t.Fatalf("during the outage: %d sent, %v", n, err)
		}
		if it, _, _ := st.OutboxItem(ctx, finished[0].Key); it.Attempts != 1 || !strings.Contains(it.LastError, "not sent yet") {
			t.Errorf("reply before its thread: %+v", it)
		}
	}
	// Enqueueing the same notifications again (a retried decision) adds nothing.
	for range 2 {
		if err := st.Enqueue(ctx, append(started, finished...)...); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Minute)
	for i := 0; i < 3; i++ {
		if _, err := w.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
	}
	first, _, _ := st.OutboxItem(ctx, started[0].Key)
	reply, _, _ := st.OutboxItem(ctx, finished[0].Key)
	if !first.Sent() || !reply.Sent() || first.ExternalID == "" || reply.ExternalID == first.ExternalID {
		t.Fatalf("outbox: %+v\n%+v", first, reply)
	}
	if fake == nil {
		return
	}
	posts := fake.sent()
	if len(posts) != 2 {
		t.Fatalf("%d posts, want 2 (duplicates enqueued twice): %+v", len(posts), posts)
	}
	if posts[0].ThreadTS != "" || posts[0].TS != first.ExternalID || posts[1].ThreadTS != posts[0].TS {
		t.Errorf("threading: first ts %q thread %q; reply thread %q", posts[0].TS, posts[0].ThreadTS, posts[1].ThreadTS)
	}
	for i, p := range posts {
		noCanary(t, "slack post", p.Raw)
		if p.Channel != ch || p.Text == "" || len(p.Blocks.BlockSet) < 2 {
			t.Errorf("post %d: channel %q text %q, %d blocks", i, p.Channel, p.Text, len(p.Blocks.BlockSet))
		}
		if p.Blocks.BlockSet[0].BlockType() != "header" {
			t.Errorf("post %d starts with a %s block", i, p.Blocks.BlockSet[0].BlockType())
		}
	}
	for _, want := range []string{"payments", "1.4.1", "1.4.2", "qa", "0123456789ab", "alice@example.com", "healthcheck", "@bob@example.com", "https://jira.example.com/browse/OPS-7", "redacted"} {
		if !strings.Contains(posts[1].Raw, strings.NewReplacer("@", "%40", "/", "%2F", ":", "%3A", "<", "%3C", ">", "%3E").Replace(want)) {
			t.Errorf("failure alert lacks %q:\n%s", want, posts[1].Raw)
		}
	}
	if !strings.Contains(posts[1].Text, "@bob@example.com") || !strings.Contains(posts[1].Text, "OPS-7") {
		t.Errorf("fallback text %q lacks the maintainer or the ticket", posts[1].Text)
	}
	if strings.Contains(posts[0].Text, "bob@") {
		t.Errorf("start message mentions the maintainer: %q", posts[0].Text)
	}
}

func TestSlackRateLimitAndOutage(t *testing.T) {
	ctx := context.Background()
	if os.Getenv("GITMON_TEST_SLACK_TOKEN") != "" {
		t.Log("rate limit and outage need the fake: using it")
	}
	t.Setenv("GITMON_TEST_SLACK_TOKEN", "")
	dir := t.TempDir()
	st, err := store.Open(ctx, dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sl, ch, fake := slackSetup(t, st)
	clk := newClock()
	worker := func(st store.Store) *Worker {
		return &Worker{Outbox: st, Senders: map[string]Sender{store.OutboxSlack: sl}, Now: clk.Now,
			MinBackoff: 5 * time.Second, MaxBackoff: 20 * time.Second, Rand: func() float64 { return 0 }}
	}
	w := worker(st)

	rec := testRecord(store.StatusRejected)
	rej, _ := SlackItem(rec.ID, EventRejected, ch, RecordRejected(rec, Options{Secrets: []string{canary}}))
	other := testRecord(store.StatusRunning)
	other.ID = "01JREC0000000000000000000B"
	start, _ := SlackItem(other.ID, EventStarted, ch, RecordStarted(other, Options{Secrets: []string{canary}}))
	if err := st.Enqueue(ctx, rej, start); err != nil {
		t.Fatal(err)
	}

	// 429 with Retry-After: 7: the item waits 7s, the other Slack item is
	// held back without an attempt.
	fake.failNext(429)
	if n, err := w.RunOnce(ctx); err != nil || n != 0 {
		t.Fatalf("429: %d sent, %v", n, err)
	}
	it, _, _ := st.OutboxItem(ctx, rej.Key)
	if it.Attempts != 1 || !it.NextAttemptAt.Equal(clk.Now().Add(7*time.Second)) || !strings.Contains(it.LastError, "rate limit") {
		t.Errorf("after 429: %+v (now %s)", it, clk.Now())
	}
	if held, _, _ := st.OutboxItem(ctx, start.Key); held.Attempts != 0 || held.Sent() {
		t.Errorf("held item: %+v", held)
	}
	if n, _ := w.RunOnce(ctx); n != 1 { // the held one is due, the limited one not yet
		t.Fatalf("second round: %d sent", n)
	}

	// Slack answers 500 three times: capped exponential backoff, nothing lost
	// across a store reopen.
	fake.failNext(500, 500, 500)
	clk.Advance(7 * time.Second)
	if n, _ := w.RunOnce(ctx); n != 0 {
		t.Fatal("sent during the outage")
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = store.Open(ctx, dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sl.outbox = st
	w = worker(st)
	waits := []time.Duration{}
	for i := 0; i < 6; i++ {
		it, _, _ := st.OutboxItem(ctx, rej.Key)
		if it.Sent() {
			break
		}
		wait := it.NextAttemptAt.Sub(clk.Now())
		waits = append(waits, wait.Round(time.Second))
		clk.Advance(wait)
		if _, err := w.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	it, _, _ = st.OutboxItem(ctx, rej.Key)
	if !it.Sent() || it.Attempts != 4 {
		t.Fatalf("after recovery: %+v", it)
	}
	// 10s after the 2nd failure (the 429 was the 1st), then 20s, 20s (capped).
	if got := waits; len(got) != 3 || got[0] != 10*time.Second || got[1] != 20*time.Second || got[2] != 20*time.Second {
		t.Errorf("backoff waits %v", got)
	}
	posts := fake.sent()
	if len(posts) != 2 {
		t.Fatalf("%d posts", len(posts))
	}
	for _, p := range posts {
		noCanary(t, "slack post", p.Raw)
	}
	if posts[1].ThreadTS != "" {
		t.Errorf("a rejected record's message is threaded under %q", posts[1].ThreadTS)
	}
}
