package app

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/synctest"
)

// The property and fuzz tests drive a scheduler with random Add, Ready,
// Remove and release-end sequences and check it against a model after every
// step: each start is of a Ready record that heads its service, after every
// earlier record of that service; one release per service and at most
// Concurrency run; a free slot is never left idle while a record may start;
// Len agrees; and at the end every record still queued starts once ready.

// chooser yields the test's choices: random, or read from fuzz input.
type chooser interface {
	intn(n int) int
	done() bool
}

type randChooser struct {
	r    *rand.Rand
	left int
}

func (c *randChooser) intn(n int) int { return c.r.IntN(n) }
func (c *randChooser) done() bool     { c.left--; return c.left < 0 }

type byteChooser struct{ b []byte }

func (c *byteChooser) intn(n int) int {
	if len(c.b) == 0 {
		return 0
	}
	v := int(c.b[0]) % n
	c.b = c.b[1:]
	return v
}
func (c *byteChooser) done() bool { return len(c.b) == 0 }

type propState int

const (
	propQueued propState = iota
	propRunning
	propEnded
	propRemoved
	propRefused
)

type propItem struct {
	schedItem
	state propState
}

// schedModel is what the scheduler should do; the harness's lock guards it.
type schedModel struct {
	t       *testing.T
	conc    int
	items   map[string]*propItem
	lastSeq map[svcKey]int64 // last started, per service
	running map[svcKey]string
	nQueued int
}

func keyOf(it schedItem) svcKey { return svcKey{it.Repository, it.Environment, it.Service} }

// head returns the earliest queued record of k.
func (m *schedModel) head(k svcKey) *propItem {
	var h *propItem
	for _, it := range m.items {
		if it.state == propQueued && keyOf(it.schedItem) == k && (h == nil || it.Seq < h.Seq) {
			h = it
		}
	}
	return h
}

func (m *schedModel) add(items []schedItem) {
	sorted := slices.Clone(items)
	slices.SortStableFunc(sorted, func(a, b schedItem) int { return cmp.Compare(a.Seq, b.Seq) })
	for _, it := range sorted {
		p := m.items[it.ID]
		if p != nil && (p.state == propQueued || p.state == propRunning) {
			continue
		}
		if last, ok := m.lastSeq[keyOf(it)]; ok && it.Seq <= last {
			if p == nil {
				m.items[it.ID] = &propItem{schedItem: it, state: propRefused}
			}
			continue // ended, removed or refused: it never starts
		}
		if p == nil {
			p = &propItem{}
			m.items[it.ID] = p
		}
		p.schedItem, p.state = it, propQueued
		m.nQueued++
	}
}

// started checks one start against the model.
func (m *schedModel) started(id string) {
	p := m.items[id]
	if p == nil || p.state != propQueued {
		m.t.Errorf("%s started in state %v", id, p)
		return
	}
	k := keyOf(p.schedItem)
	if !p.Ready {
		m.t.Errorf("%s started while it waits", id)
	}
	if h := m.head(k); h != p {
		m.t.Errorf("%s (seq %d) started before %s (seq %d) of its service", id, p.Seq, h.ID, h.Seq)
	}
	if last, ok := m.lastSeq[k]; ok && p.Seq <= last {
		m.t.Errorf("%s (seq %d) started after seq %d of its service", id, p.Seq, last)
	}
	p.state = propRunning
	m.lastSeq[k] = p.Seq
	m.running[k] = id
	m.nQueued--
}

// check compares the quiet scheduler with the model.
func (m *schedModel) check(s *scheduler) {
	if q, r := s.Len(); q != m.nQueued || r != len(m.running) {
		m.t.Errorf("Len() = %d, %d; model %d, %d", q, r, m.nQueued, len(m.running))
	}
	if len(m.running) >= m.conc {
		return
	}
	for _, it := range m.items {
		k := keyOf(it.schedItem)
		if _, busy := m.running[k]; !busy && it.state == propQueued && it.Ready && m.head(k) == it {
			m.t.Errorf("%d of %d slots busy, but %s may start", len(m.running), m.conc, it.ID)
		}
	}
}

// runSchedProperty plays one random history.
func runSchedProperty(t *testing.T, c chooser) {
	conc := 1 + c.intn(4)
	h := newSchedHarness(t, conc, false)
	m := &schedModel{t: t, conc: conc, items: map[string]*propItem{}, lastSeq: map[svcKey]int64{}, running: map[svcKey]string{}}
	h.onStart = m.started
	// Refused records are part of the history: their log is noise here.
	h.s = newScheduler(schedulerDeps{Concurrency: conc, Start: h.start})
	h.run()
	var ids []string // every ID ever added
	seq, used := int64(0), map[int64]bool{}
	newItem := func() schedItem {
		seq += 2 // odd values stay free for records that arrive late
		s := seq
		if late := seq - 1 - 2*int64(c.intn(4)); c.intn(4) == 0 && late > 0 && !used[late] {
			s = late // late: before later ones, maybe before started ones
		}
		used[s] = true // Seqs are unique, as the store's
		id := fmt.Sprint("r", len(ids))
		ids = append(ids, id)
		return schedItem{ID: id, Seq: s, Repository: fmt.Sprint("repo", c.intn(2)), Environment: []string{"qa", "staging", "prod"}[c.intn(3)],
			Service: fmt.Sprint("svc", c.intn(3)), Ready: c.intn(3) != 0}
	}
	known := func() string {
		if len(ids) == 0 || c.intn(10) == 0 {
			return "unknown"
		}
		return ids[c.intn(len(ids))]
	}
	do := func(f func()) { // the model first: starts may follow at once
		h.mu.Lock()
		f()
		h.mu.Unlock()
	}
	for !c.done() {
		switch c.intn(6) {
		case 0, 1: // new records, in any order
			batch := make([]schedItem, 1+c.intn(3))
			for i := range batch {
				batch[i] = newItem()
			}
			for i := len(batch) - 1; i > 0; i-- {
				j := c.intn(i + 1)
				batch[i], batch[j] = batch[j], batch[i]
			}
			do(func() { m.add(batch) })
			h.add(batch...)
		case 2: // the same record again
			id := known()
			h.mu.Lock()
			p := m.items[id]
			h.mu.Unlock()
			if p != nil {
				do(func() { m.add([]schedItem{p.schedItem}) })
				h.add(p.schedItem)
			}
		case 3:
			id := known()
			do(func() {
				if p := m.items[id]; p != nil && p.state == propQueued {
					p.Ready = true
				}
			})
			h.ready(id)
		case 4:
			id := known()
			do(func() {
				if p := m.items[id]; p != nil && p.state == propQueued {
					p.state = propRemoved
					m.nQueued--
				}
			})
			h.remove(id)
		case 5:
			running := h.runningIDs()
			if len(running) == 0 {
				continue
			}
			id := running[c.intn(len(running))]
			do(func() { m.ended(id) })
			h.finish(id)
		}
		h.mu.Lock()
		m.check(h.s)
		h.mu.Unlock()
		if t.Failed() {
			break
		}
	}
	// Every record still queued starts once ready, in its turn.
	for _, id := range ids {
		do(func() {
			if p := m.items[id]; p != nil && p.state == propQueued {
				p.Ready = true
			}
		})
		h.ready(id)
	}
	h.mu.Lock()
	m.check(h.s)
	h.mu.Unlock()
	for running := h.runningIDs(); len(running) > 0; running = h.runningIDs() {
		do(func() { m.ended(running[0]) })
		h.finish(running[0])
	}
	if q, r := h.s.Len(); q != 0 || r != 0 || m.nQueued != 0 {
		t.Errorf("at the end Len() = %d, %d; model %d queued", q, r, m.nQueued)
	}
	h.stop()
}

func (m *schedModel) ended(id string) {
	p := m.items[id]
	p.state = propEnded
	delete(m.running, keyOf(p.schedItem))
}

func TestSchedulerProperty(t *testing.T) {
	for seed := range uint64(200) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				runSchedProperty(t, &randChooser{r: rand.New(rand.NewPCG(seed, 7)), left: 300})
			})
		})
	}
}

func FuzzScheduler(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 5, 0, 3, 2, 4, 1, 5})
	f.Add([]byte{3, 1, 1, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			return
		}
		synctest.Test(t, func(t *testing.T) { runSchedProperty(t, &byteChooser{b: data}) })
	})
}
