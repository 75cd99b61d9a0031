package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gitmon-dev/gitmon/internal/backoff"
	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/runners"
)

// releaser runs releases, stage by stage. Every step is a durable write
// before the next one starts, and recovery reads only those writes, so
// gitmon may die between any two of them (SPEC §5 Crashes):
//
//  1. StartRecord: the record is running, its first stage running, its
//     descriptor the service's last attempted (one transaction);
//  2. the runner's handle, when it saves one (a process group, a build);
//  3. each stage's end; a stage that is not the last is followed by the
//     next one's start;
//  4. EndRecord: the last stage's end (or the skipped rest after a
//     failure) with the record's status, in one transaction.
//
// A write that fails is retried until it succeeds: nothing that depends on
// it runs meanwhile, and the service's next release waits.
type releaser struct {
	store     store.Store
	runners   map[string]runners.Runner
	pipelines map[string]config.Pipeline
	// env returns an environment's config; nil when it is gone.
	env       func(name string) *config.Environment
	now       func() time.Time
	log       *slog.Logger
	secrets   []string
	outputCap int
	grace     time.Duration
	metrics   *metrics
	announce  Announcer
	// seen returns when the tip of a record's commit was seen, once.
	seen func(*store.Record) (time.Time, bool)
	// ended hears about every record that ended (nil: nobody).
	ended func(context.Context, *store.Record)
	// retry is the first wait after a failed write (default 100ms);
	// drain is how long writes are still retried once ctx is done.
	retry, retryMax, drain time.Duration
}

func newRunID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Run takes a record as far as it can go: a pending record starts, a
// running one (left by a previous gitmon, see Recover) goes on with its
// next stage or follows the stage its runner can re-attach to. A record
// that ended meanwhile (superseded) is left alone. Stages run on ctx;
// cancelling it interrupts them.
func (r *releaser) Run(ctx context.Context, id string) error {
	// A read that fails is retried like a write: the scheduler has let
	// this record go, and nothing later of its service may start first.
	var rec *store.Record
	err := r.durably(ctx, "reading a record to release", func(ctx context.Context) error {
		var err error
		rec, err = r.store.Record(ctx, id)
		return err
	})
	if err != nil {
		return err
	}
	switch rec.Status {
	case store.StatusPending:
		return r.start(ctx, rec)
	case store.StatusRunning:
		return r.resume(ctx, rec)
	}
	return nil
}

// start starts a pending record's release.
func (r *releaser) start(ctx context.Context, rec *store.Record) error {
	env := r.env(rec.Environment)
	if env == nil {
		return fmt.Errorf("environment %s is no longer configured", rec.Environment)
	}
	names := env.Release
	if rec.Action == "remove" {
		names = env.Remove
	}
	at := r.now()
	stages := make([]store.Stage, len(names))
	for i, n := range names {
		stages[i] = store.Stage{Name: n, Runner: r.pipelines[n].Runner, Status: store.StagePending, RunID: newRunID()}
	}
	if len(stages) > 0 {
		stages[0].Status, stages[0].StartedAt = store.StageRunning, &at
	}
	// The previous version is the last attempted as the release starts;
	// only this release can change it now (one per service at a time).
	var sv store.Service
	err := r.durably(ctx, "reading the service of a release", func(ctx context.Context) error {
		var err error
		sv, err = r.store.Service(ctx, rec.Repository, rec.Environment, rec.Service)
		return err
	})
	if err != nil {
		return err
	}
	rec.PreviousVersion = ""
	if sv.LastAttempted != nil {
		rec.PreviousVersion = sv.LastAttempted.Version
	}
	err = r.durably(ctx, "the start of a release", func(ctx context.Context) error {
		return r.store.StartRecord(ctx, rec.ID, stages, at)
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil // superseded meanwhile
	}
	if err != nil {
		return err
	}
	if seen, ok := r.seen(rec); ok {
		r.metrics.detection.Observe(at.Sub(seen).Seconds())
	}
	rec.Status, rec.Stages = store.StatusRunning, stages
	r.log.Info("release started", keyRepo, rec.Repository, keyEnv, rec.Environment, keyService, rec.Service,
		keyRecord, rec.ID, "version", rec.Version, "previous_version", rec.PreviousVersion, "stages", len(stages))
	r.announce.Started(ctx, rec)
	return r.runStages(ctx, rec, 0, nil)
}

// resume goes on with a running record after a restart: from its first
// stage that has not ended, following it when its runner can re-attach.
func (r *releaser) resume(ctx context.Context, rec *store.Record) error {
	from := len(rec.Stages)
	for i, st := range rec.Stages {
		if st.Status != store.StageSucceeded {
			from = i
			break
		}
	}
	var handle json.RawMessage
	if from < len(rec.Stages) {
		switch st := rec.Stages[from]; {
		case st.Status == store.StageRunning && len(st.Handle) > 0:
			handle = st.Handle // Recover left it to its runner to follow
		case st.Status != store.StagePending:
			return fmt.Errorf("record %s: stage %d is %s; recovery should have ended the record", rec.ID, from, st.Status)
		}
	}
	r.log.Info("release continues after a restart", keyRepo, rec.Repository, keyEnv, rec.Environment, keyService, rec.Service,
		keyRecord, rec.ID, "from_stage", from, "reattach", handle != nil)
	return r.runStages(ctx, rec, from, handle)
}

// runStages runs rec.Stages[from:] and ends the record. reattach, when
// set, is the saved handle of stages[from]: its runner follows the run
// started before a restart instead of starting anew.
func (r *releaser) runStages(ctx context.Context, rec *store.Record, from int, reattach json.RawMessage) error {
	descJSON, err := json.Marshal(rec.Descriptor)
	if err != nil {
		return err
	}
	stages := rec.Stages
	status := store.StatusSucceeded
	end := store.End{Stages: map[int]store.Stage{}}
	for i := from; i < len(stages); i++ {
		st := &stages[i]
		if status != store.StatusSucceeded {
			st.Status = store.StageSkipped
			end.Stages[i] = *st
			continue
		}
		var handle json.RawMessage
		if i == from {
			handle = reattach
		}
		if err := r.stage(ctx, rec, i, descJSON, handle); err != nil {
			return err
		}
		if st.Status != store.StageSucceeded {
			status = store.StatusFailed
		}
		if i == len(stages)-1 || st.Status != store.StageSucceeded {
			end.Stages[i] = *st // written with the record's end
			continue
		}
		if err := r.durably(ctx, "a stage's end", func(ctx context.Context) error {
			return r.store.UpdateStage(ctx, rec.ID, i, *st)
		}); err != nil {
			return err
		}
	}
	end.Status, end.At = status, r.now()
	if err := r.durably(ctx, "the end of a release", func(ctx context.Context) error {
		return r.store.EndRecord(ctx, rec.ID, end)
	}); err != nil {
		return err
	}
	r.metrics.records.WithLabelValues(rec.Environment, status).Inc()
	rec.Status, rec.FinishedAt = status, &end.At
	r.log.Info("release ended", keyRepo, rec.Repository, keyEnv, rec.Environment, keyService, rec.Service,
		keyRecord, rec.ID, "version", rec.Version, "status", status)
	r.announce.Finished(context.WithoutCancel(ctx), rec)
	if r.ended != nil {
		r.ended(context.WithoutCancel(ctx), rec)
	}
	return nil
}

// stage runs rec.Stages[i] and sets its outcome; the caller writes it.
// A stage not yet marked running is marked so, durably, first.
func (r *releaser) stage(ctx context.Context, rec *store.Record, i int, descJSON []byte, reattach json.RawMessage) error {
	st := &rec.Stages[i]
	p := r.pipelines[st.Name]
	runner := r.runners[st.Name]
	if st.Status != store.StageRunning {
		now := r.now()
		st.Status, st.StartedAt = store.StageRunning, &now
		if err := r.durably(ctx, "a stage's start", func(ctx context.Context) error {
			return r.store.UpdateStage(ctx, rec.ID, i, *st)
		}); err != nil {
			return err
		}
	}
	started := *st.StartedAt
	r.log.Info("stage started", keyEnv, rec.Environment, keyService, rec.Service, keyRecord, rec.ID,
		"stage", st.Name, "runner", st.Runner, "reattach", reattach != nil)
	out := runners.NewOutput(r.outputCap, r.secrets)
	sctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	req := &runners.Request{
		Repository: rec.Repository, Environment: rec.Environment, Service: rec.Service, Version: rec.Version,
		PreviousVersion: rec.PreviousVersion, Commit: rec.Commit, Author: rec.Author, Committer: rec.Committer,
		Tickets: rec.Tickets, Stage: st.Name, Action: rec.Action, RunID: st.RunID, Descriptor: descJSON,
	}
	h := &stageHandle{r: r, ctx: ctx, rec: rec.ID, i: i, st: st}
	var res runners.Result
	var err error
	switch ra, ok := runner.(runners.Reattacher); {
	case runner == nil:
		err = fmt.Errorf("no runner for pipeline %s", st.Name)
	case reattach != nil && ok:
		fmt.Fprintf(out, "gitmon restarted: following the run started before\n")
		res, err = ra.Reattach(sctx, req, reattach, out)
	default:
		res, err = runner.Run(sctx, req, out, h)
	}
	end := r.now()
	// Everything a runner returns is redacted before it is stored.
	st.FinishedAt, st.Output = &end, out.String()
	st.URL, st.Message = runners.Redact(res.URL, r.secrets), runners.Redact(res.Message, r.secrets)
	switch {
	case ctx.Err() != nil:
		st.Status, st.Message = store.StageInterrupted, fmt.Sprintf("interrupted: gitmon shut down after %s of grace", r.grace)
	case sctx.Err() != nil:
		st.Status, st.Message = store.StageFailed, fmt.Sprintf("timed out after %s", p.Timeout)
	case err != nil:
		st.Status, st.Message = store.StageFailed, runners.Redact(err.Error(), r.secrets)
	case res.OK:
		st.Status = store.StageSucceeded
	default:
		st.Status = store.StageFailed
	}
	r.metrics.stageDuration.WithLabelValues(st.Name, st.Status).Observe(end.Sub(started).Seconds())
	r.log.Info("stage ended", keyEnv, rec.Environment, keyService, rec.Service, keyRecord, rec.ID,
		"stage", st.Name, "status", st.Status, "duration", end.Sub(started))
	return nil
}

// stageHandle saves a runner's handle into the stage record.
type stageHandle struct {
	r   *releaser
	ctx context.Context
	rec string
	i   int
	st  *store.Stage
}

func (h *stageHandle) Save(ctx context.Context, data json.RawMessage) error {
	h.st.Handle = data
	return h.r.durably(h.ctx, "a stage's handle", func(ctx context.Context) error {
		return h.r.store.UpdateStage(ctx, h.rec, h.i, *h.st)
	})
}

// durably runs a store write until it succeeds or the record it names is
// gone (ErrNotFound, returned as is). A failing write (disk full, a
// read-only database) is retried with capped backoff; once ctx is done it
// is still retried for the drain period, so that a shutdown records what
// it interrupted, and then its error is returned.
func (r *releaser) durably(ctx context.Context, what string, write func(context.Context) error) error {
	// Until ctx is done, retries go on for ever; then for the drain period.
	var giveUp time.Time
	for failures := 1; ; failures++ {
		err := write(context.WithoutCancel(ctx))
		if err == nil || errors.Is(err, store.ErrNotFound) {
			if failures > 1 && err == nil {
				r.log.Info("store call works again", "call", what, "after_failures", failures-1)
			}
			return err
		}
		if failures == 1 {
			r.log.Error("store call failed; retrying until it succeeds, nothing that depends on it runs meanwhile",
				"call", what, keyErr, err)
		}
		if ctx.Err() != nil && giveUp.IsZero() {
			giveUp = time.Now().Add(r.drain)
		}
		wait := backoff.Exponential(r.retry, r.retryMax, failures)
		if !giveUp.IsZero() {
			left := time.Until(giveUp)
			if left <= 0 {
				return fmt.Errorf("%s: %w", what, err)
			}
			wait = min(wait, left)
		}
		t := time.NewTimer(wait)
		done := ctx.Done()
		if !giveUp.IsZero() {
			done = nil // draining: wait the whole backoff, never spin
		}
		select {
		case <-t.C:
		case <-done:
			t.Stop() // the drain period starts at the next failure
		}
	}
}

// Recover ends what a previous gitmon left running, before anything else
// runs (SPEC §5 Crashes), and returns the records that go on:
//   - a stage in flight ends interrupted (its process group killed by its
//     runner), the stages after it are skipped, and the record fails;
//   - a stage in flight whose runner can re-attach (a Jenkins build) is
//     followed instead: its record goes on;
//   - a record between two stages goes on with the next one;
//   - a record whose every stage ended ends as they say.
//
// Each record's end, its stages and its event are one transaction.
// Completed stages are never run again.
func (r *releaser) Recover(ctx context.Context) ([]*store.Record, error) {
	running, err := r.store.Running(ctx)
	if err != nil {
		return nil, err
	}
	var goOn []*store.Record
	for _, rec := range running {
		status, end := r.recoverOne(ctx, rec)
		if status == "" {
			goOn = append(goOn, rec)
			continue
		}
		end.Events = []store.Event{{At: end.At, Repository: rec.Repository, Environment: rec.Environment, Kind: store.EventInterrupted,
			Commit: rec.Commit, Commits: []string{},
			Message: fmt.Sprintf("release of %s %s was running when gitmon stopped; it ended %s", rec.Service, rec.Version, status)}}
		if err := r.store.EndRecord(ctx, rec.ID, end); err != nil {
			return nil, err
		}
		r.metrics.records.WithLabelValues(rec.Environment, status).Inc()
		r.log.Info("crash recovery: release ended", keyRepo, rec.Repository, keyEnv, rec.Environment, keyService, rec.Service,
			keyRecord, rec.ID, "status", status)
	}
	return goOn, nil
}

// recoverOne says how a running record ends after a restart ("" when it
// goes on), with the stage writes that go with its end.
func (r *releaser) recoverOne(ctx context.Context, rec *store.Record) (string, store.End) {
	end := store.End{At: r.now(), Stages: map[int]store.Stage{}}
	failed := false
	for i := range rec.Stages {
		st := &rec.Stages[i]
		switch st.Status {
		case store.StageSucceeded:
			continue
		case store.StageFailed, store.StageInterrupted:
			failed = true
			continue
		case store.StagePending:
			if !failed {
				return "", end // between stages: the next one starts
			}
			st.Status = store.StageSkipped
		case store.StageRunning:
			if failed {
				st.Status = store.StageSkipped
				break
			}
			if _, ok := r.runners[st.Name].(runners.Reattacher); ok && len(st.Handle) > 0 {
				return "", end // a build that goes on without gitmon: follow it
			}
			if rc, ok := r.runners[st.Name].(runners.Recoverer); ok && len(st.Handle) > 0 {
				if err := rc.Recover(ctx, st.Handle); err != nil {
					r.log.Warn("crash recovery: ending a stage's run", keyRecord, rec.ID, "stage", st.Name, keyErr, err)
				}
			}
			st.Status, st.FinishedAt = store.StageInterrupted, &end.At
			st.Message = "interrupted: gitmon stopped while this stage ran"
			failed = true
		default:
			continue
		}
		end.Stages[i] = *st
	}
	end.Status = store.StatusSucceeded
	if failed {
		end.Status = store.StatusFailed
	}
	return end.Status, end
}
