package app

import (
	"context"
	"sync"
	"time"

	"github.com/gitmon-dev/gitmon/internal/integrations/scm"
	"github.com/gitmon-dev/gitmon/internal/notify"
	"github.com/gitmon-dev/gitmon/internal/store"
)

// scmStatuses writes the commit status of every record of a repository
// with scm.project to the outbox (SPEC §8): pending when it is decided
// pending or is queued, running when its release starts, and its end.
// notify.SCMStatusItem says what each status is; the worker delivers it
// through notify.SCM, which skips a status that a later one overtook.
// After a crash, sweep enqueues what the crash kept from the outbox.
type scmStatuses struct {
	a        *App
	client   scm.Client
	projects map[string]string // repository → scm.project
	worker   *notify.Worker

	mu sync.Mutex
	// sent is the status last enqueued for each record in flight, so that
	// a record decided again (a review, a freeze's wake) writes nothing
	// when its status is the same; it forgets a record once it ends.
	sent map[string]string
}

var _ Announcer = (*scmStatuses)(nil)

func newSCMStatuses(a *App, client scm.Client) *scmStatuses {
	s := &scmStatuses{a: a, client: client, projects: map[string]string{}, sent: map[string]string{}}
	for _, r := range a.cfg.Repositories {
		if r.SCM != nil {
			s.projects[r.Name] = r.SCM.Project
		}
	}
	return s
}

// record enqueues the statuses of recs as they stand now.
func (s *scmStatuses) record(ctx context.Context, recs ...*store.Record) {
	if s == nil {
		return
	}
	var items []store.OutboxItem
	for _, rec := range recs {
		project, ok := s.projects[rec.Repository]
		if !ok || !s.changed(rec) {
			continue
		}
		it, err := notify.SCMStatusItem(rec, notify.SCMStatusOptions{Project: project, PublicURL: s.a.cfg.PublicURL, Secrets: s.a.secrets})
		if err != nil {
			s.a.log.Warn("building a commit status", keyRecord, rec.ID, keyErr, err)
			continue
		}
		items = append(items, it)
	}
	if len(items) == 0 {
		return
	}
	if err := s.a.store.Enqueue(context.WithoutCancel(ctx), items...); err != nil {
		// The sweep at the next start enqueues what is missing.
		s.a.log.Error("writing commit statuses to the outbox", keyErr, err)
		s.forget(recs...)
		return
	}
	if s.worker != nil {
		s.worker.Wake()
	}
}

// changed notes rec's status and reports whether it differs from the one
// last enqueued for it.
func (s *scmStatuses) changed(rec *store.Record) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sent[rec.ID] == rec.Status {
		return false
	}
	if rec.Status == store.StatusPending || rec.Status == store.StatusRunning {
		s.sent[rec.ID] = rec.Status
	} else {
		delete(s.sent, rec.ID)
	}
	return true
}

func (s *scmStatuses) forget(recs ...*store.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		delete(s.sent, r.ID)
	}
}

// decided enqueues the statuses of a batch's records and of the records
// it superseded (read back: the batch names only their ids).
func (s *scmStatuses) decided(ctx context.Context, b store.Batch, superseded []string) {
	if s == nil {
		return
	}
	recs := append([]*store.Record(nil), b.Records...)
	for _, id := range superseded {
		rec, err := s.a.store.Record(ctx, id)
		if err != nil || rec.Status != store.StatusSuperseded {
			continue // the sweep at the next start catches what a failed read missed
		}
		recs = append(recs, rec)
	}
	s.record(ctx, recs...)
}

func (s *scmStatuses) Decided(context.Context, *store.Record)          {} // decided covers it, pending records too
func (s *scmStatuses) Started(ctx context.Context, rec *store.Record)  { s.record(ctx, rec) }
func (s *scmStatuses) Finished(ctx context.Context, rec *store.Record) { s.record(ctx, rec) }

// sweepAge is how far back sweep looks: the outbox gives up on an item
// after notify.MaxAge anyway.
const sweepAge = notify.MaxAge

// sweep enqueues, at start, the current status of every record of the
// last day that has none in the outbox: gitmon died between a record's
// write and its status's, or Recover ended it.
func (s *scmStatuses) sweep(ctx context.Context) {
	if s == nil {
		return
	}
	ids, err := s.a.store.Unannounced(ctx, notify.SCMKeyPrefix, s.a.now().Add(-sweepAge))
	if err != nil {
		s.a.log.Warn("reading the records without a commit status", keyErr, err)
		return
	}
	var recs []*store.Record
	for i := len(ids) - 1; i >= 0; i-- { // oldest first
		rec, err := s.a.store.Record(ctx, ids[i])
		if err != nil {
			continue
		}
		if _, ok := s.projects[rec.Repository]; ok {
			recs = append(recs, rec)
		}
	}
	if len(recs) > 0 {
		s.a.log.Info("commit statuses enqueued after a restart", "records", len(recs))
	}
	for len(recs) > 0 { // in bounded transactions
		n := min(len(recs), 200)
		s.record(ctx, recs[:n]...)
		recs = recs[n:]
	}
}

// multiAnnouncer tells every announcer in turn.
type multiAnnouncer []Announcer

func (m multiAnnouncer) Decided(ctx context.Context, rec *store.Record) {
	for _, a := range m {
		a.Decided(ctx, rec)
	}
}

func (m multiAnnouncer) Started(ctx context.Context, rec *store.Record) {
	for _, a := range m {
		a.Started(ctx, rec)
	}
}

func (m multiAnnouncer) Finished(ctx context.Context, rec *store.Record) {
	for _, a := range m {
		a.Finished(ctx, rec)
	}
}

// scmTimeout bounds one SCM API request.
const scmTimeout = 30 * time.Second
