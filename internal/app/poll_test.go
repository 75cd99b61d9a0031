package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/internal/store"
)

func TestPhaseIsStableAndSpread(t *testing.T) {
	const interval = 2 * time.Second
	if a, b := phase("deployments", interval), phase("deployments", interval); a != b {
		t.Fatalf("phase of one name differs between calls: %s, %s", a, b)
	}
	// 1,000 names like those people use fill ten buckets of the interval
	// evenly: none holds more than twice its share.
	var buckets [10]int
	for i := range 1000 {
		p := phase(repoName(i), interval)
		if p < 0 || p >= interval {
			t.Fatalf("phase %s outside [0, %s)", p, interval)
		}
		buckets[p*10/interval]++
	}
	for i, n := range buckets {
		if n > 200 || n < 50 {
			t.Errorf("bucket %d of the interval holds %d of 1,000 repositories: %v", i, n, buckets)
		}
	}
	if phase("x", 0) != 0 {
		t.Error("a zero interval has a phase")
	}
}

func repoName(i int) string { return "team-" + string(rune('a'+i%26)) + "/deploy-" + itoa(i) }

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func TestSlotAfter(t *testing.T) {
	const interval = 10 * time.Second
	base := time.Unix(1_700_000_000, 0) // a multiple of 10 s
	tests := []struct {
		name  string
		t     time.Time
		phase time.Duration
		want  time.Time
	}{
		{"before the phase", base.Add(time.Second), 3 * time.Second, base.Add(3 * time.Second)},
		{"after the phase", base.Add(4 * time.Second), 3 * time.Second, base.Add(13 * time.Second)},
		{"exactly at the slot: the next one", base.Add(3 * time.Second), 3 * time.Second, base.Add(13 * time.Second)},
		{"phase zero", base, 0, base.Add(interval)},
		{"before the epoch", time.Unix(-15, 0), 3 * time.Second, time.Unix(-7, 0)},
	}
	for _, tt := range tests {
		if got := slotAfter(tt.t, tt.phase, interval); !got.Equal(tt.want) {
			t.Errorf("%s: slotAfter(%s, %s) = %s, want %s", tt.name, tt.t.UTC(), tt.phase, got.UTC(), tt.want.UTC())
		}
	}
}

// stampRepo answers every listing with the same branches and records
// when it was asked; any other call panics (the embedded nil interface).
type stampRepo struct {
	gitRepo
	mu    sync.Mutex
	calls []time.Time
	err   error
	gate  chan struct{} // when not nil, a listing waits for it to close
}

func (s *stampRepo) ListBranches(ctx context.Context) (map[string]string, error) {
	s.mu.Lock()
	s.calls = append(s.calls, time.Now())
	gate, err := s.gate, s.err
	s.mu.Unlock()
	if gate != nil {
		<-gate
	}
	return map[string]string{}, err
}

func (s *stampRepo) times() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.calls...)
}

// loopApp is an App whose repositories are stampRepos and whose config
// has no environments: a poll is its ref listing alone.
func loopApp(t *testing.T, n int, interval time.Duration) (*App, []*stampRepo) {
	t.Helper()
	a := &App{cfg: &config.Config{PollInterval: interval, Tuning: config.Tuning{BackoffMax: time.Hour}},
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), metrics: newMetrics(), now: time.Now, store: nopStore{},
		poller: newPoller()}
	var fakes []*stampRepo
	for i := range n {
		f := &stampRepo{}
		rc := &config.Repository{Name: repoName(i)}
		a.repos = append(a.repos, a.newRepoState(rc, f))
		fakes = append(fakes, f)
	}
	return a, fakes
}

// runLoops polls every repository for d, in the bubble.
func runLoops(a *App, d time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.pollRepos(ctx); close(done) }()
	time.Sleep(d) // the bubble's clock
	cancel()
	<-done
	time.Sleep(time.Minute) // the idle workers end
}

// TestFirstPollsSpreadOverTheInterval: 200 repositories started together
// make their first polls spread over the first interval, at their own
// phase, not at once; every repository polls once per interval from
// there; and a restart at another moment keeps each one's phase.
func TestFirstPollsSpreadOverTheInterval(t *testing.T) {
	const n, interval, intervals = 200, 2 * time.Second, 5
	phases := map[string]time.Duration{}
	for run, startAfter := range []time.Duration{0, 7*time.Second + 300*time.Millisecond} {
		synctest.Test(t, func(t *testing.T) {
			time.Sleep(startAfter) // a restart at another moment
			a, fakes := loopApp(t, n, interval)
			start := time.Now()
			runLoops(a, intervals*interval)
			var firsts []time.Duration
			for i, f := range fakes {
				calls := f.times()
				if len(calls) != intervals {
					t.Fatalf("repository %d polled %d times in %d intervals, want %d", i, len(calls), intervals, intervals)
				}
				first := calls[0].Sub(start)
				if first < 0 || first >= interval {
					t.Fatalf("repository %d first polled %s after start, outside the first interval", i, first)
				}
				for k := 1; k < len(calls); k++ {
					if d := calls[k].Sub(calls[k-1]); d != interval {
						t.Fatalf("repository %d: polls %d and %d are %s apart, want %s", i, k-1, k, d, interval)
					}
				}
				ph := time.Duration(calls[0].UnixNano() % int64(interval))
				name := a.repos[i].cfg.Name
				if run == 0 {
					phases[name] = ph
				} else if phases[name] != ph {
					t.Errorf("repository %s polls at %s of the interval after a restart, %s before", name, ph, phases[name])
				}
				firsts = append(firsts, first)
			}
			// Spread: no 10 ms of the first interval holds more than a few
			// first polls (200 at once before), and they reach across it.
			sort.Slice(firsts, func(i, j int) bool { return firsts[i] < firsts[j] })
			most := 0
			for i := range firsts {
				j := sort.Search(len(firsts), func(j int) bool { return firsts[j] >= firsts[i]+10*time.Millisecond })
				most = max(most, j-i)
			}
			if most > 8 {
				t.Errorf("%d of %d first polls fall within 10 ms", most, n)
			}
			if spanned := firsts[n-1] - firsts[0]; spanned < interval*9/10 {
				t.Errorf("first polls span %s of a %s interval", spanned, interval)
			}
		})
	}
}

// TestFirstPollsComeSoonWithALongInterval: with an hour between polls
// (webhooks do the rest), 100 repositories started together still make
// their first polls within two seconds, spread (startRate a second, not
// at once), and then keep to their own slot of the hour, the first one
// at least half an hour on.
func TestFirstPollsComeSoonWithALongInterval(t *testing.T) {
	const n, interval = 100, time.Hour
	synctest.Test(t, func(t *testing.T) {
		a, fakes := loopApp(t, n, interval)
		start := time.Now()
		runLoops(a, 2*interval)
		var firsts []time.Duration
		for i, f := range fakes {
			calls := f.times()
			if len(calls) < 2 {
				t.Fatalf("repository %d polled %d times in two hours, want 2 or more", i, len(calls))
			}
			first := calls[0].Sub(start)
			if first < 0 || first >= 2*time.Second {
				t.Errorf("repository %d first polled %s after start, want within 2s", i, first)
			}
			if want := slotAfter(calls[0].Add(interval/2), a.repos[i].poll.phase, interval); !calls[1].Equal(want) {
				t.Errorf("repository %d polled again at %s, want its slot %s", i, calls[1], want)
			}
			firsts = append(firsts, first)
		}
		sort.Slice(firsts, func(i, j int) bool { return firsts[i] < firsts[j] })
		most := 0
		for i := range firsts {
			j := sort.Search(len(firsts), func(j int) bool { return firsts[j] >= firsts[i]+100*time.Millisecond })
			most = max(most, j-i)
		}
		if most > 15 {
			t.Errorf("%d of %d first polls fall within 100 ms (%d a second allowed)", most, n, startRate)
		}
	})
}

// TestTriggerPollsAtOnceAndCoalesces: a webhook between two slots polls
// at once; a burst of them during that poll makes one more poll, not
// five; the phase grid stays.
func TestTriggerPollsAtOnceAndCoalesces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 10 * time.Second
		a, fakes := loopApp(t, 1, interval)
		f, r := fakes[0], a.repos[0]
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { a.pollRepos(ctx); close(done) }()
		defer func() { cancel(); <-done; time.Sleep(time.Minute) }()

		first := firstPoll(time.Now(), r.cfg.Name, r.poll.phase, interval, startSpread(1, interval))
		time.Sleep(first.Sub(time.Now()) + interval/4)
		synctest.Wait()
		if calls := f.times(); len(calls) != 1 || !calls[0].Equal(first) {
			t.Fatalf("polls at %v, want one at start, %v", calls, first)
		}
		f.mu.Lock()
		f.gate = make(chan struct{}) // the next listings wait for the test
		f.mu.Unlock()
		triggered := time.Now()
		a.Trigger(r.cfg.Name)
		synctest.Wait() // the triggered poll is listing
		for range 5 {
			a.Trigger(r.cfg.Name)
		}
		close(f.gate)
		synctest.Wait()
		calls := f.times()
		if len(calls) != 3 || !calls[1].Equal(triggered) || !calls[2].Equal(triggered) {
			t.Fatalf("polls at %v, want two more at %v: the webhook's, and one for the burst during it", calls, triggered)
		}
		next := slotAfter(time.Now(), r.poll.phase, interval)
		time.Sleep(next.Sub(time.Now()))
		synctest.Wait()
		if calls = f.times(); len(calls) != 4 || !calls[3].Equal(next) || time.Duration(next.UnixNano()%int64(interval)) != r.poll.phase {
			t.Fatalf("polls at %v: the next is not at the phase, %v", calls, next)
		}
	})
}

// TestBackoffKeepsThePhase: a failing repository retries after 1, 2, 4
// intervals (capped), each time at its phase, and returns to every
// interval once it works again.
func TestBackoffKeepsThePhase(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = time.Second
		a, fakes := loopApp(t, 1, interval)
		a.cfg.Tuning.BackoffMax = 4 * interval
		f := fakes[0]
		f.err = errors.New("server down")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { a.pollRepos(ctx); close(done) }()
		defer func() { cancel(); <-done; time.Sleep(time.Minute) }()
		time.Sleep(16 * interval)
		synctest.Wait()
		f.mu.Lock()
		f.err = nil
		f.mu.Unlock()
		time.Sleep(6 * interval)
		calls := f.times()
		var gaps []time.Duration
		for i := 1; i < len(calls); i++ {
			gaps = append(gaps, calls[i].Sub(calls[i-1]))
		}
		// Polls at p, p+1, p+3, p+7, p+11, p+15 fail (the server is back
		// at 16 s); p+19 works, then every interval.
		want := []time.Duration{1 * interval, 2 * interval, 4 * interval, 4 * interval, 4 * interval, 4 * interval, interval, interval}
		if !slices.Equal(gaps, want) {
			t.Fatalf("gaps between polls %v, want %v", gaps, want)
		}
		ph := a.repos[0].poll.phase
		for _, c := range calls {
			if got := time.Duration(c.UnixNano() % int64(interval)); got != ph {
				t.Fatalf("a poll at %s of the interval, off the phase %s", got, ph)
			}
		}
	})
}

// nopStore takes events and holds nothing: the loop tests never process
// a branch.
type nopStore struct{ store.Store }

func (nopStore) AddEvent(context.Context, store.Event) error { return nil }

// TestTriggerBeforeStart: a webhook that comes before polling starts is
// answered by a poll at the start, not at the repository's phase.
func TestTriggerBeforeStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, fakes := loopApp(t, 2, time.Hour)
		a.Trigger(a.repos[0].cfg.Name)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		start := time.Now()
		go func() { a.pollRepos(ctx); close(done) }()
		defer func() { cancel(); <-done; time.Sleep(time.Minute) }()
		synctest.Wait()
		if calls := fakes[0].times(); len(calls) != 1 || !calls[0].Equal(start) {
			t.Fatalf("the triggered repository polled at %v, want once at the start %v", calls, start)
		}
		if calls := fakes[1].times(); len(calls) != 0 {
			t.Fatalf("the other repository polled at %v, before its phase", calls)
		}
	})
}
