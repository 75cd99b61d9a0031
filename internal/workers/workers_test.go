package workers

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestBound: 20 calls that all block run 3 at a time, the others
// waiting; when they are let go, every call runs, on at most 3 workers.
func TestBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := New(3)
		release := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		ran := 0
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := p.Do(context.Background(), func() {
					<-release
					mu.Lock()
					ran++
					mu.Unlock()
				}); err != nil {
					t.Error(err)
				}
			}()
		}
		synctest.Wait()
		if p.InFlight() != 3 || p.Waiting() != 17 {
			t.Fatalf("%d running and %d waiting, want 3 and 17", p.InFlight(), p.Waiting())
		}
		close(release)
		wg.Wait()
		if ran != 20 || p.Peak() != 3 {
			t.Fatalf("%d calls ran, at most %d at once; want 20, 3", ran, p.Peak())
		}
		time.Sleep(idle + time.Second) // the workers end
	})
}

// TestWorkersAreReusedAndEnd: sequential calls reuse one worker, whose
// goroutine ends once it has been idle; nothing outlives the bubble.
func TestWorkersAreReusedAndEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := New(4)
		base := runtime.NumGoroutine()
		for range 5 {
			if err := p.Do(context.Background(), func() {}); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if got := runtime.NumGoroutine() - base; got != 1 {
			t.Fatalf("%d workers after 5 sequential calls, want 1", got)
		}
		time.Sleep(idle + time.Second)
		synctest.Wait()
		if got := runtime.NumGoroutine() - base; got != 0 {
			t.Fatalf("%d workers after idling, want 0", got)
		}
	})
}

// TestWaitEndsWithContext: a call waiting for a worker returns the
// context's error, and its function never runs.
func TestWaitEndsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := New(1)
		release := make(chan struct{})
		go p.Do(context.Background(), func() { <-release })
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		ran := false
		if err := p.Do(ctx, func() { ran = true }); !errors.Is(err, context.DeadlineExceeded) || ran {
			t.Fatalf("Do = %v (ran: %v), want the deadline and no call", err, ran)
		}
		close(release)
		time.Sleep(idle + time.Second) // the worker ends
	})
}
