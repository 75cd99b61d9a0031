// Package backoff is gitmon's one retry schedule: capped exponential,
// shared by the poll loop, the store retries of releases, the outbox and
// plugin relaunches.
package backoff

import "time"

// Exponential is the wait after the n-th consecutive failure (n >= 1):
// base doubled n-1 times, at most max. n below 1 counts as 1.
func Exponential(base, max time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}
