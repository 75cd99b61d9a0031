package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/runners"
)

// reattachJob is a release whose stage i ran when gitmon stopped, on a
// runner that can follow it.
type reattachJob struct {
	rec *store.Record
	i   int
}

// follow finishes a release left running by a previous gitmon: its runner
// follows stage j.i to its end, then the remaining stages run.
func (s *legacySched) follow(runCtx context.Context, j reattachJob) {
	key := serviceKey(j.rec)
	s.mu.Lock()
	s.running[key] = true
	s.mu.Unlock()
	s.slots <- struct{}{}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.running, key)
			s.mu.Unlock()
			<-s.slots
			s.wake()
		}()
		descJSON, err := json.Marshal(j.rec.Descriptor)
		if err == nil {
			err = s.runStages(runCtx, j.rec, j.rec.Stages, j.i, store.StatusSucceeded, descJSON, j.rec.Stages[j.i].Handle)
		}
		if err != nil && runCtx.Err() == nil {
			s.a.log.Error("following a release after restart", keyRecord, j.rec.ID, keyErr, err)
		}
	}()
}

func newRunID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// release runs a record's stages in order, recording each before the next
// starts. The first failure ends the release.
func (s *legacySched) release(ctx context.Context, rec *store.Record) error {
	a := s.a
	env := a.cfg.Environment(rec.Environment)
	if env == nil {
		return fmt.Errorf("environment %s is no longer configured", rec.Environment)
	}
	names := env.Release
	if rec.Action == "remove" {
		names = env.Remove
	}
	stages := make([]store.Stage, len(names))
	for i, n := range names {
		stages[i] = store.Stage{Name: n, Runner: a.cfg.Pipelines[n].Runner, Status: store.StagePending, RunID: newRunID()}
	}
	start := a.now()
	a.decideMu.Lock()
	// The previous version is the last attempted as the release starts
	// (StartRecord records the same).
	sv, err := a.store.Service(ctx, rec.Repository, rec.Environment, rec.Service)
	if err == nil {
		rec.PreviousVersion = ""
		if sv.LastAttempted != nil {
			rec.PreviousVersion = sv.LastAttempted.Version
		}
		err = a.store.StartRecord(ctx, rec.ID, stages, start)
	}
	a.decideMu.Unlock()
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil // superseded meanwhile
		}
		return err
	}
	if seen, ok := a.takeSeen(rec); ok {
		a.metrics.detection.Observe(start.Sub(seen).Seconds())
	}
	descJSON, err := json.Marshal(rec.Descriptor)
	if err != nil {
		return err
	}
	rec.Status, rec.Stages = store.StatusRunning, stages
	a.opts.Announcer.Started(ctx, rec)
	return s.runStages(ctx, rec, stages, 0, store.StatusSucceeded, descJSON, nil)
}

// runStages runs stages[from:] of a started record, recording each before
// the next starts, and ends the record. status is the record's status so
// far (a failed stage before from means the rest are skipped).
//
// reattach, when set, is the saved handle of stages[from], a run started
// before a restart that its runner follows instead of starting anew.
func (s *legacySched) runStages(ctx context.Context, rec *store.Record, stages []store.Stage, from int, status string, descJSON []byte, reattach json.RawMessage) error {
	a := s.a
	for i := from; i < len(stages); i++ {
		st := &stages[i]
		if status != store.StatusSucceeded {
			st.Status = store.StageSkipped
			if err := a.store.UpdateStage(context.WithoutCancel(ctx), rec.ID, i, *st); err != nil {
				return err
			}
			continue
		}
		var handle json.RawMessage
		if i == from {
			handle = reattach
		}
		ok, err := s.stage(ctx, rec, i, st, descJSON, handle)
		if err != nil {
			return err
		}
		if !ok {
			status = store.StatusFailed
		}
	}
	a.metrics.records.WithLabelValues(rec.Environment, status).Inc()
	end := a.now()
	if err := a.store.FinishRecord(context.WithoutCancel(ctx), rec.ID, status, end); err != nil {
		return err
	}
	rec.Status, rec.Stages, rec.FinishedAt = status, stages, &end
	a.opts.Announcer.Finished(context.WithoutCancel(ctx), rec)
	return nil
}

// stage runs one stage and records its outcome; it reports whether the
// stage succeeded.
func (s *legacySched) stage(ctx context.Context, rec *store.Record, i int, st *store.Stage, descJSON []byte, reattach json.RawMessage) (bool, error) {
	a := s.a
	p := a.cfg.Pipelines[st.Name]
	runner := a.runners[st.Name]
	now := a.now()
	if reattach == nil || st.StartedAt == nil {
		st.StartedAt = &now
	}
	now = *st.StartedAt
	st.Status = store.StageRunning
	wctx := context.WithoutCancel(ctx) // records are written even while shutting down
	if err := a.store.UpdateStage(wctx, rec.ID, i, *st); err != nil {
		return false, err
	}
	out := runners.NewOutput(int(a.cfg.Tuning.OutputCap.Int64()), a.secrets)
	sctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	req := &runners.Request{
		Repository: rec.Repository, Environment: rec.Environment, Service: rec.Service, Version: rec.Version,
		PreviousVersion: rec.PreviousVersion, Commit: rec.Commit, Author: rec.Author, Committer: rec.Committer,
		Tickets: rec.Tickets, Stage: st.Name, Action: rec.Action, RunID: st.RunID, Descriptor: descJSON,
	}
	h := &stageHandle{a: a, rec: rec.ID, i: i, st: st}
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
	end := a.now()
	st.FinishedAt, st.Output, st.URL, st.Message = &end, out.String(), res.URL, res.Message
	switch {
	case ctx.Err() != nil:
		st.Status, st.Message = store.StageInterrupted, fmt.Sprintf("interrupted: gitmon shut down after %s of grace", a.cfg.Tuning.ShutdownGrace)
	case sctx.Err() != nil:
		st.Status, st.Message = store.StageFailed, fmt.Sprintf("timed out after %s", p.Timeout)
	case err != nil:
		st.Status, st.Message = store.StageFailed, runners.Redact(err.Error(), a.secrets)
	case res.OK:
		st.Status = store.StageSucceeded
	default:
		st.Status = store.StageFailed
	}
	a.metrics.stageDuration.WithLabelValues(st.Name, st.Status).Observe(end.Sub(now).Seconds())
	if err := a.store.UpdateStage(wctx, rec.ID, i, *st); err != nil {
		return false, err
	}
	return st.Status == store.StageSucceeded, nil
}

// stageHandle saves a runner's handle into the stage record.
type stageHandle struct {
	a   *App
	rec string
	i   int
	st  *store.Stage
}

func (h *stageHandle) Save(ctx context.Context, data json.RawMessage) error {
	h.st.Handle = data
	return h.a.store.UpdateStage(context.WithoutCancel(ctx), h.rec, h.i, *h.st)
}

// recover ends the releases a previous gitmon left running: a stage in
// flight ends interrupted (its process group killed by its runner), the
// stages after it are skipped, and the record fails. Completed stages are
// never run again.
func (a *App) recover(ctx context.Context) error {
	running, err := a.store.Running(ctx)
	if err != nil {
		return err
	}
records:
	for _, rec := range running {
		now := a.now()
		failed := false
		for i := range rec.Stages {
			st := &rec.Stages[i]
			if _, ok := a.runners[st.Name].(runners.Reattacher); ok && st.Status == store.StageRunning && len(st.Handle) > 0 && !failed {
				// A Jenkins build (say) goes on without gitmon: follow it
				// rather than fail it, and never run it twice.
				a.reattach = append(a.reattach, reattachJob{rec: rec, i: i})
				continue records
			}
			switch st.Status {
			case store.StageRunning:
				if r, ok := a.runners[st.Name].(runners.Recoverer); ok && len(st.Handle) > 0 {
					if err := r.Recover(ctx, st.Handle); err != nil {
						a.log.Warn("recovering a stage", keyRecord, rec.ID, "stage", st.Name, keyErr, err)
					}
				}
				st.Status, st.FinishedAt = store.StageInterrupted, &now
				st.Message = "interrupted: gitmon stopped while this stage ran"
				failed = true
			case store.StagePending:
				st.Status = store.StageSkipped
			case store.StageFailed, store.StageInterrupted:
				failed = true
			default:
				continue
			}
			if err := a.store.UpdateStage(ctx, rec.ID, i, *st); err != nil {
				return err
			}
		}
		status := store.StatusSucceeded
		if failed {
			status = store.StatusFailed
		}
		if err := a.store.FinishRecord(ctx, rec.ID, status, now); err != nil {
			return err
		}
		_ = a.store.AddEvent(ctx, store.Event{At: now, Repository: rec.Repository, Environment: rec.Environment, Kind: store.EventInterrupted,
			Commit: rec.Commit, Commits: []string{}, Message: fmt.Sprintf("release of %s %s was running when gitmon stopped; it ended %s", rec.Service, rec.Version, status)})
	}
	return nil
}
