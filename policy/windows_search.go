package policy

import "time"

// search is the state of one At call: its look-up budget and horizon.
// Once the budget is spent (gaveUp), look-ups return zero and callers
// stop trusting what they compute.
type search struct {
	ws      *Windows
	lookups int
	limit   time.Time
	gaveUp  bool
}

// next returns w's first occurrence after x, or zero if there is none
// (or the budget is spent).
func (s *search) next(w *window, x time.Time) time.Time {
	if s.lookups <= 0 {
		s.gaveUp = true
		return time.Time{}
	}
	s.lookups--
	return w.next(x)
}

// next returns w's first occurrence after x, or zero if there is none
// within cron's five years.
func (w *window) next(x time.Time) time.Time {
	// Start from the last second of x's minute on w's clock: occurrences
	// fall on second 0, so the answer is the same, and cron's Next skips
	// its second-by-second loop (about a third of its cost).
	lt := x.In(w.loc)
	x = x.Add(time.Duration(59-lt.Second())*time.Second - time.Duration(lt.Nanosecond()))
	r := w.sched.Next(x)
	// Cron truncates to the start of x's hour on the clock before it
	// steps, which can lie before a shift up to two hours back.
	for cur := lt.Add(-2 * time.Hour); !r.IsZero(); {
		_, end := cur.ZoneBounds()
		if end.IsZero() || !end.Before(r) {
			break
		}
		end = end.In(w.loc)
		_, before := end.Add(-time.Second).Zone()
		if _, after := end.Zone(); (after-before)%3600 != 0 {
			r = w.acrossShift(x, r, end)
		}
		cur = end
	}
	return r
}

// acrossShift corrects r, cron's answer for the first occurrence of w
// after x, when the offset of w's zone changes by other than whole hours
// at shift, shortly before x or between x and r (Australia/Lord_Howe's
// 30 minutes). Cron's
// Next steps hours in elapsed time, so from before such a shift it lands
// on the wrong minute of the hour and misses that day's matches; until
// the shift it is right. The minutes from the shift to the next whole
// hour are checked one by one, and cron is asked again from that hour.
func (w *window) acrossShift(x, r, shift time.Time) time.Time {
	lt := shift.In(w.loc)
	hour := shift.Add(-time.Duration(lt.Minute())*time.Minute - time.Duration(lt.Second())*time.Second - time.Duration(lt.Nanosecond()))
	if hour.Before(shift) {
		hour = hour.Add(time.Hour)
	}
	for m := shift; m.Before(hour) && m.Before(r); m = m.Add(time.Minute) {
		if m.After(x) && w.matches(m) {
			return m
		}
	}
	if again := w.sched.Next(hour.Add(-time.Second)); again.After(x) && again.Before(r) {
		return again
	}
	return r
}

// matches reports whether the wall clock of t in w's zone matches every
// field of w's schedule.
func (w *window) matches(t time.Time) bool {
	s := w.sched
	t = t.In(w.loc)
	bit := func(set uint64, v int) bool { return set&(1<<uint(v)) != 0 }
	const star = 1 << 63
	day := bit(s.Dom, t.Day()) && bit(s.Dow, int(t.Weekday()))
	if s.Dom&star == 0 && s.Dow&star == 0 {
		day = bit(s.Dom, t.Day()) || bit(s.Dow, int(t.Weekday()))
	}
	return bit(s.Second, t.Second()) && bit(s.Minute, t.Minute()) && bit(s.Hour, t.Hour()) && bit(s.Month, int(t.Month())) && day
}

// active returns the earliest occurrence of w whose window covers x, and
// whether there is one.
func (s *search) active(w *window, x time.Time) (time.Time, bool) {
	o := s.next(w, x.Add(-w.dur))
	return o, !o.IsZero() && !o.After(x)
}

// latest returns w's latest occurrence at or before x, given lo, one of
// its occurrences at or before x, and (when found on the way, known) the
// occurrence after it, zero if none. When the budget runs out it returns
// the latest one it found.
func (s *search) latest(w *window, x, lo time.Time) (last, after time.Time, known bool) {
	for range 4 {
		n := s.next(w, lo)
		if s.gaveUp {
			return lo, time.Time{}, false
		}
		if n.IsZero() || n.After(x) {
			return lo, n, true
		}
		lo = n
	}
	// A dense schedule: binary search. Invariant: an occurrence lies in
	// (lo, x] and none in (hi, x]. Occurrences fall on whole seconds.
	hi := x
	for hi.Sub(lo) > time.Second {
		mid := lo.Add(hi.Sub(lo) / 2)
		n := s.next(w, mid)
		if s.gaveUp {
			return lo, time.Time{}, false
		}
		if !n.IsZero() && !n.After(x) {
			lo = mid
		} else {
			hi = mid
		}
	}
	if n := s.next(w, lo); !n.IsZero() && !n.After(x) {
		return n, time.Time{}, false
	}
	return lo, time.Time{}, false
}

// stretchEnd returns when w, open at x with o the earliest occurrence
// covering x, next closes: the first instant after x that none of its
// occurrences covers. known is false when the walk passed the horizon or
// spent the budget; end is then how far w is known to stay open, which
// is after x.
func (s *search) stretchEnd(w *window, x, o time.Time) (end time.Time, known bool) {
	q, n, haveNext := s.latest(w, x, o)
	for {
		y := q.Add(w.dur) // every occurrence from o on covers up to here
		if y.After(s.limit) || s.gaveUp {
			return y, false
		}
		if !haveNext {
			if n = s.next(w, q); s.gaveUp {
				return y, false
			}
		}
		if n.IsZero() || n.After(y) {
			return y, true
		}
		if w.dur <= maxScanDuration && n.Sub(q) <= w.dur {
			// Back to back, minute after minute: scan the wall clock.
			return s.scan(w, n)
		}
		q, n, haveNext = s.latest(w, y, n)
	}
}

// Scanning minute by minute: windows up to maxScanDuration long whose
// occurrences follow each other closely are walked by matching the wall
// clock against the schedule's fields (about 50 ns a minute) instead of
// one cron look-up an occurrence; scanMinutesPerLookup minutes cost one
// look-up of the budget.
const (
	maxScanDuration      = 2 * time.Hour
	scanMinutesPerLookup = 32
)

// scan returns when w stops covering, walking minute by minute from q,
// one of its occurrences. It gives up (known false, end: how far w is
// known to stay open) at the horizon, when the budget is spent, or at an
// offset change that is not whole minutes (only in history), where
// minutes on the clock stop falling on whole minutes of elapsed time.
func (s *search) scan(w *window, q time.Time) (end time.Time, known bool) {
	last := q.In(w.loc)
	_, zoneEnd := last.ZoneBounds()
	for m, i := last.Add(time.Minute), 1; ; m, i = m.Add(time.Minute), i+1 {
		if y := last.Add(w.dur); m.After(y) {
			return y, true
		}
		if i%scanMinutesPerLookup == 0 {
			if s.lookups <= 0 {
				s.gaveUp = true
			}
			s.lookups--
		}
		if s.gaveUp || m.After(s.limit) {
			return last.Add(w.dur), false
		}
		if !zoneEnd.IsZero() && !m.Before(zoneEnd) {
			_, before := zoneEnd.Add(-time.Second).Zone()
			if _, after := zoneEnd.Zone(); (after-before)%60 != 0 {
				return last.Add(w.dur), false
			}
			_, zoneEnd = zoneEnd.ZoneBounds()
		}
		if w.matches(m) {
			last = m
		}
	}
}

// blockingDeny returns the deny window open at x that stays open longest,
// with when it closes (known false: how far it is known to stay open);
// nil when no deny window is open at x. Which windows are open is decided
// before any walk, so a spent budget never hides one.
func (s *search) blockingDeny(x time.Time) (by *window, end time.Time, known bool) {
	var open [MaxWindows]time.Time
	for i := range s.ws.list {
		if w := &s.ws.list[i]; w.deny {
			if o, ok := s.active(w, x); ok {
				open[i] = o
			}
		}
	}
	for i := range s.ws.list {
		if open[i].IsZero() {
			continue
		}
		w := &s.ws.list[i]
		e, k := s.stretchEnd(w, x, open[i])
		if by == nil || (known && !k) || (known == k && e.After(end)) {
			by, end, known = w, e.In(w.loc), k
		}
	}
	return by, end, known
}

// activeAllow returns the first allow window open at x, or nil.
func (s *search) activeAllow(x time.Time) *window {
	for i := range s.ws.list {
		w := &s.ws.list[i]
		if _, ok := s.active(w, x); !w.deny && ok {
			return w
		}
	}
	return nil
}

// nextOpen returns the earliest instant at or after x at which releases
// may start, and the allow window open then; x is an instant before which
// releases are known not to start (known false: only that). When no
// such instant is found it returns a zero time and how far the walk got.
func (s *search) nextOpen(x time.Time, known bool) (next time.Time, opener *Window, checked time.Time) {
	for beyond := false; known; {
		// One step may go past the horizon: an answer found there is
		// still right (the next February 29th).
		if beyond || s.gaveUp {
			break
		}
		beyond = x.After(s.limit)
		by, end, k := s.blockingDeny(x)
		if s.gaveUp && by == nil {
			break
		}
		if by != nil {
			x, known = end, k
			continue
		}
		if !s.ws.hasAllow {
			return x, nil, time.Time{}
		}
		w := s.activeAllow(x)
		if s.gaveUp {
			break
		}
		if w != nil {
			return x.In(w.loc), &w.cfg, time.Time{}
		}
		// Closed until an allow window opens.
		var first time.Time
		for i := range s.ws.list {
			w := &s.ws.list[i]
			if w.deny {
				continue
			}
			if n := s.next(w, x); !n.IsZero() && (first.IsZero() || n.Before(first)) {
				first = n
			}
		}
		if s.gaveUp {
			break
		}
		if first.IsZero() {
			return time.Time{}, nil, s.limit // no allow window opens again
		}
		x = first
	}
	return time.Time{}, nil, x
}

// until returns when releases, allowed at x, stop being allowed; zero
// when never or unknown. When unknown because the walk gave up, checked
// is how far releases are known to stay allowed.
func (s *search) until(x time.Time) (until, checked time.Time) {
	var deny time.Time // the next opening of a deny window
	var denyLoc *time.Location
	for i := range s.ws.list {
		w := &s.ws.list[i]
		if !w.deny {
			continue
		}
		if n := s.next(w, x); !n.IsZero() && (deny.IsZero() || n.Before(deny)) {
			deny, denyLoc = n, w.loc
		}
	}
	byDeny := func() (time.Time, time.Time) {
		if deny.IsZero() {
			return time.Time{}, time.Time{}
		}
		return deny.In(denyLoc), time.Time{}
	}
	if !s.ws.hasAllow {
		return byDeny()
	}
	// Follow the allow windows while one of them covers the instant.
	cur := x
	for {
		if !deny.IsZero() && !cur.Before(deny) {
			return byDeny()
		}
		var last *window
		var end time.Time
		for i := range s.ws.list {
			w := &s.ws.list[i]
			if w.deny {
				continue
			}
			o, ok := s.active(w, cur)
			if !ok {
				continue
			}
			e, known := s.stretchEnd(w, cur, o)
			if !known {
				if !deny.IsZero() && !e.Before(deny) {
					return byDeny()
				}
				return time.Time{}, e.In(w.loc)
			}
			if last == nil || e.After(end) {
				last, end = w, e
			}
		}
		if s.gaveUp {
			return time.Time{}, cur
		}
		if last == nil {
			return cur, time.Time{} // no allow window covers cur: they closed here
		}
		cur = end.In(last.loc)
	}
}
