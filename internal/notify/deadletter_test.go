package notify

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/internal/store"
)

// deadLetters records the kinds a Worker reported as dead letters.
type deadLetters struct{ kinds []string }

func (d *deadLetters) add(kind string) { d.kinds = append(d.kinds, kind) }

// slackItem is a record's started message to channel.
func slackItem(t *testing.T, recordID, channel string) store.OutboxItem {
	t.Helper()
	rec := testRecord(store.StatusRunning)
	rec.ID = recordID
	it, err := SlackItem(rec.ID, EventStarted, channel, RecordStarted(rec, Options{Secrets: []string{canary}}))
	if err != nil {
		t.Fatal(err)
	}
	return it
}

func item(t *testing.T, st *store.SQLite, key string) store.OutboxItem {
	t.Helper()
	it, ok, err := st.OutboxItem(context.Background(), key)
	if err != nil || !ok {
		t.Fatalf("outbox item %s: %v, %v", key, ok, err)
	}
	return it
}

func countDead(t *testing.T, st *store.SQLite) int {
	t.Helper()
	n, err := st.DeadLetters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSlackPermanentFailureDies: an answer that says the post can never
// succeed makes the item a dead letter after one attempt: stored, logged
// once, counted, never tried again, and the next item goes out in the
// same round.
func TestSlackPermanentFailureDies(t *testing.T) {
	for _, tc := range []struct {
		name      string
		slackErr  string // "ok": false with this error
		status    int    // or this HTTP status
		wantError string
	}{
		{name: "channel_not_found", slackErr: "channel_not_found", wantError: "channel_not_found"},
		{name: "not_in_channel", slackErr: "not_in_channel", wantError: "not_in_channel"},
		{name: "invalid_auth", slackErr: "invalid_auth", wantError: "invalid_auth"},
		{name: "is_archived", slackErr: "is_archived", wantError: "is_archived"},
		{name: "HTTP 404", status: http.StatusNotFound, wantError: "404"},
		{name: "HTTP 403", status: http.StatusForbidden, wantError: "403"},
		{name: "HTTP 400", status: http.StatusBadRequest, wantError: "400"},
		{name: "HTTP 408", status: http.StatusRequestTimeout, wantError: "408"}, // SPEC §9: a 4xx other than 429
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			t.Setenv("GITMON_TEST_SLACK_TOKEN", "")
			st := openStore(t, t.TempDir())
			sl, _, fake := slackSetup(t, st)
			clk := newClock()
			log, logs := newLog()
			dead := &deadLetters{}
			w := &Worker{Outbox: st, Senders: map[string]Sender{store.OutboxSlack: sl}, Now: clk.Now, Log: log,
				DeadLetter: dead.add, Batch: 1}

			gone := slackItem(t, "01JREC0000000000000000000A", "#gone")
			next := slackItem(t, "01JREC0000000000000000000B", "#qa")
			if err := st.Enqueue(ctx, gone, next); err != nil {
				t.Fatal(err)
			}
			if tc.slackErr != "" {
				fake.failChannel("#gone", tc.slackErr)
			} else {
				fake.failNext(tc.status)
			}
			// Batch 1: the dead letter leaves room for the next item at once.
			if n, err := w.RunOnce(ctx); err != nil || n != 0 {
				t.Fatalf("first round: %d sent, %v", n, err)
			}
			if n, err := w.RunOnce(ctx); err != nil || n != 1 {
				t.Fatalf("second round: %d sent, %v", n, err)
			}
			it := item(t, st, gone.Key)
			if !it.Dead() || it.Sent() || it.Attempts != 1 || !strings.Contains(it.LastError, tc.wantError) {
				t.Fatalf("after a permanent failure: %+v", it)
			}
			if !item(t, st, next.Key).Sent() {
				t.Fatal("the next item was not delivered")
			}
			if got := countDead(t, st); got != 1 {
				t.Errorf("DeadLetters = %d", got)
			}
			if strings.Join(dead.kinds, ",") != "slack" {
				t.Errorf("dead letters reported: %v", dead.kinds)
			}
			lines := strings.Count(logs.String(), "outbox dead letter")
			if lines != 1 || !strings.Contains(logs.String(), "key="+gone.Key) || !strings.Contains(logs.String(), "kind=slack") {
				t.Errorf("%d dead-letter lines:\n%s", lines, logs)
			}

			// Never tried again, however long it waits.
			for range 3 {
				clk.Advance(48 * time.Hour)
				if _, err := w.RunOnce(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if n := fake.tried("#gone"); n != 1 {
				t.Errorf("%d posts to #gone, want 1", n)
			}
			if len(dead.kinds) != 1 || strings.Count(logs.String(), "outbox dead letter") != 1 {
				t.Errorf("dead letter reported again: %v\n%s", dead.kinds, logs)
			}
		})
	}
}

// TestSlackRetryableFailureIsRetried: a 5xx, a 429, a timeout, a dropped
// connection or a transient Slack error is retried, and the item goes out
// once Slack is back.
func TestSlackRetryableFailureIsRetried(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    int
		slackErr  string
		wantAfter time.Duration // exact wait, when the answer says
	}{
		{name: "HTTP 503", status: http.StatusServiceUnavailable},
		{name: "HTTP 500", status: http.StatusInternalServerError},
		{name: "HTTP 502", status: http.StatusBadGateway},
		{name: "HTTP 429 Retry-After 7", status: http.StatusTooManyRequests, wantAfter: 7 * time.Second},
		{name: "dropped connection", status: dropConn},
		{name: "internal_error", slackErr: "internal_error"},
		{name: "service_unavailable", slackErr: "service_unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			t.Setenv("GITMON_TEST_SLACK_TOKEN", "")
			st := openStore(t, t.TempDir())
			sl, _, fake := slackSetup(t, st)
			clk := newClock()
			log, logs := newLog()
			dead := &deadLetters{}
			w := &Worker{Outbox: st, Senders: map[string]Sender{store.OutboxSlack: sl}, Now: clk.Now, Log: log, DeadLetter: dead.add}

			it := slackItem(t, "01JREC0000000000000000000A", "#qa")
			if err := st.Enqueue(ctx, it); err != nil {
				t.Fatal(err)
			}
			if tc.slackErr != "" {
				fake.failChannel("#qa", tc.slackErr)
			} else {
				fake.failNext(tc.status)
			}
			if n, err := w.RunOnce(ctx); err != nil || n != 0 {
				t.Fatalf("during the failure: %d sent, %v", n, err)
			}
			got := item(t, st, it.Key)
			if got.Dead() || got.Sent() || got.Attempts != 1 || got.LastError == "" || !got.NextAttemptAt.After(clk.Now()) {
				t.Fatalf("after a retryable failure: %+v (now %s)", got, clk.Now())
			}
			if tc.wantAfter != 0 && !got.NextAttemptAt.Equal(clk.Now().Add(tc.wantAfter)) {
				t.Errorf("retry at %s, want now + %s", got.NextAttemptAt, tc.wantAfter)
			}
			fake.failChannel("#qa", "")
			clk.Advance(got.NextAttemptAt.Sub(clk.Now()))
			if n, err := w.RunOnce(ctx); err != nil || n != 1 {
				t.Fatalf("after recovery: %d sent, %v", n, err)
			}
			if len(dead.kinds) != 0 || countDead(t, st) != 0 || strings.Contains(logs.String(), "dead letter") {
				t.Errorf("a retryable failure made a dead letter: %v\n%s", dead.kinds, logs)
			}
		})
	}
}

// TestOutboxGivesUpAfter24Hours: an item that fails for 24 hours since it
// was enqueued dies at its first failure past that; until then it is
// retried with capped, jittered backoff, and a younger item lives on.
func TestOutboxGivesUpAfter24Hours(t *testing.T) {
	ctx := context.Background()
	t.Setenv("GITMON_TEST_SLACK_TOKEN", "")
	clk := newClock()
	st, err := store.Open(ctx, t.TempDir(), store.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	sl, _, fake := slackSetup(t, st)
	dead := &deadLetters{}
	const minB, maxB = 5 * time.Second, 30 * time.Minute
	w := &Worker{Outbox: st, Senders: map[string]Sender{store.OutboxSlack: sl}, Now: clk.Now, DeadLetter: dead.add,
		MinBackoff: minB, MaxBackoff: maxB}

	fake.failChannel("#qa", "internal_error")
	old := slackItem(t, "01JREC0000000000000000000A", "#qa")
	if err := st.Enqueue(ctx, old); err != nil {
		t.Fatal(err)
	}
	created := item(t, st, old.Key).CreatedAt
	var young store.OutboxItem
	attempts := 0
	for {
		it := item(t, st, old.Key)
		if it.Dead() {
			break
		}
		if attempts > 500 {
			t.Fatalf("still alive after %d attempts: %+v", attempts, it)
		}
		if wait := it.NextAttemptAt.Sub(clk.Now()); attempts > 0 && (wait > maxB || wait < minB*3/4) {
			t.Fatalf("attempt %d: wait %s outside [%s, %s]", attempts, wait, minB*3/4, maxB)
		}
		if young.Key == "" && clk.Now().Sub(created) >= 12*time.Hour {
			young = slackItem(t, "01JREC0000000000000000000B", "#qa")
			if err := st.Enqueue(ctx, young); err != nil {
				t.Fatal(err)
			}
		}
		clk.Advance(it.NextAttemptAt.Sub(clk.Now()))
		if _, err := w.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		attempts++
		if it := item(t, st, old.Key); it.Dead() != (clk.Now().Sub(created) >= MaxAge) {
			t.Fatalf("at %s after enqueueing: dead %v", clk.Now().Sub(created), it.Dead())
		}
	}
	it := item(t, st, old.Key)
	if !strings.Contains(it.LastError, "gave up after 24h") || !strings.Contains(it.LastError, "internal_error") {
		t.Errorf("last error %q", it.LastError)
	}
	if it.Attempts != attempts || fake.tried("#qa") < attempts {
		t.Errorf("%d attempts stored, %d made, %d posts", it.Attempts, attempts, fake.tried("#qa"))
	}
	if y := item(t, st, young.Key); y.Dead() || y.Attempts == 0 {
		t.Errorf("the younger item: %+v", y)
	}
	if len(dead.kinds) != 1 {
		t.Errorf("dead letters reported: %v", dead.kinds)
	}
	// Slack is back: the younger item goes out.
	fake.failChannel("#qa", "")
	clk.Advance(maxB)
	if n, err := w.RunOnce(ctx); err != nil || n != 1 {
		t.Fatalf("after recovery: %d sent, %v", n, err)
	}
}

// TestBackoffJitter: waits grow from MinBackoff to MaxBackoff and are
// never more than the cap nor less than three quarters of the step.
func TestBackoffJitter(t *testing.T) {
	w := &Worker{MinBackoff: 5 * time.Second, MaxBackoff: 30 * time.Minute}
	seen := map[time.Duration]bool{}
	for attempts := range 40 {
		step := min(5*time.Second<<min(attempts, 20), 30*time.Minute)
		for range 50 {
			d := w.backoff(attempts)
			if d > step || d < step*3/4 {
				t.Fatalf("attempt %d: wait %s outside [%s, %s]", attempts, d, step*3/4, step)
			}
			seen[d] = true
		}
	}
	if len(seen) < 100 {
		t.Errorf("only %d distinct waits: no jitter", len(seen))
	}
	w.Rand = func() float64 { return 0 }
	if d := w.backoff(100); d != 30*time.Minute {
		t.Errorf("capped wait %s", d)
	}
}

// TestUnconfiguredKindsDoNotBlock: items of a kind without a sender (its
// integration was switched off) wait without filling the worker's
// batches.
func TestUnconfiguredKindsDoNotBlock(t *testing.T) {
	ctx := context.Background()
	t.Setenv("GITMON_TEST_SLACK_TOKEN", "")
	st := openStore(t, t.TempDir())
	sl, _, fake := slackSetup(t, st)
	clk := newClock()
	w := &Worker{Outbox: st, Senders: map[string]Sender{store.OutboxSlack: sl}, Now: clk.Now, Batch: 5}
	var items []store.OutboxItem
	for i := range 20 {
		items = append(items, store.OutboxItem{Kind: store.OutboxEmail, Key: "email:" + string(rune('a'+i)),
			Payload: json.RawMessage(`{"to":["a@example.com"],"subject":"s","body":"b"}`)})
	}
	it := slackItem(t, "01JREC0000000000000000000A", "#qa")
	if err := st.Enqueue(ctx, append(items, it)...); err != nil {
		t.Fatal(err)
	}
	if n, err := w.RunOnce(ctx); err != nil || n != 1 {
		t.Fatalf("%d sent, %v", n, err)
	}
	if len(fake.sent()) != 1 {
		t.Errorf("%d posts", len(fake.sent()))
	}
	if got := item(t, st, items[0].Key); got.Attempts != 0 || got.Dead() || got.Sent() {
		t.Errorf("an e-mail without a sender: %+v", got)
	}
}

// TestReplyToADeadThread: a finished message whose started message died
// goes out top-level instead of waiting for ever.
func TestReplyToADeadThread(t *testing.T) {
	ctx := context.Background()
	t.Setenv("GITMON_TEST_SLACK_TOKEN", "")
	st := openStore(t, t.TempDir())
	sl, _, fake := slackSetup(t, st)
	clk := newClock()
	w := &Worker{Outbox: st, Senders: map[string]Sender{store.OutboxSlack: sl}, Now: clk.Now}
	rec := testRecord(store.StatusRunning)
	started, _ := SlackItem(rec.ID, EventStarted, "#qa", RecordStarted(rec, Options{}))
	rec.Status = store.StatusSucceeded
	finished, _ := SlackItem(rec.ID, EventFinished, "#qa", RecordFinished(rec, Options{}))
	if err := st.Enqueue(ctx, started, finished); err != nil {
		t.Fatal(err)
	}
	fake.failNext(http.StatusNotFound) // the started message dies
	if _, err := w.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if _, err := w.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if !item(t, st, started.Key).Dead() || !item(t, st, finished.Key).Sent() {
		t.Fatalf("started %+v\nfinished %+v", item(t, st, started.Key), item(t, st, finished.Key))
	}
	if posts := fake.sent(); len(posts) != 1 || posts[0].ThreadTS != "" {
		t.Errorf("posts: %+v", posts)
	}
}
