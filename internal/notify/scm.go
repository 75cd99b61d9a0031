package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/gitmon-dev/gitmon/internal/integrations/scm"
	"github.com/gitmon-dev/gitmon/internal/store"
)

// SCMStatusPayload is the payload of a store.OutboxSCMStatus item: one
// commit status of a record (SPEC §8).
type SCMStatusPayload struct {
	Project     string `json:"project"`
	SHA         string `json:"sha"`
	State       string `json:"state"` // scm.Pending, Success, Failure
	Running     bool   `json:"running,omitempty"`
	Context     string `json:"context"`
	Description string `json:"description"`
	TargetURL   string `json:"target_url"`
	Record      string `json:"record"`
	Status      string `json:"status"` // the record's status it says
}

// SCMStatusKey is the outbox key of a record's commit status for one of
// its statuses: one item per (record, status), so a redelivery after a
// crash, or a record announced twice, enqueues nothing new.
func SCMStatusKey(recordID, status string) string {
	return "scm:" + recordID + ":" + status
}

// SCMKeyPrefix starts every SCMStatusKey.
const SCMKeyPrefix = "scm:"

// statusRank orders a record's statuses: a status is never set over one
// of a higher rank.
func statusRank(status string) int {
	switch status {
	case store.StatusPending:
		return 0
	case store.StatusRunning:
		return 1
	}
	return 2
}

// laterStatuses are the statuses of a higher rank than status.
func laterStatuses(status string) []string {
	var out []string
	for _, s := range []string{store.StatusRunning, store.StatusSucceeded, store.StatusFailed, store.StatusRejected,
		store.StatusSkipped, store.StatusSuperseded} {
		if statusRank(s) > statusRank(status) {
			out = append(out, s)
		}
	}
	return out
}

// SCMContext is the status context of a record's service in env.
func SCMContext(env, service string) string { return "gitmon/" + env + "/" + service }

// SCMStatusOptions are what SCMStatusItem needs beside the record.
type SCMStatusOptions struct {
	Project   string // the repository's scm.project
	PublicURL string // public_url, without a trailing slash
	Secrets   []string
}

// SCMStatusItem is the outbox item setting rec's commit status for its
// status now: pending while it is pending or running, success when it
// succeeded (or was skipped or superseded: nothing of it is left to
// run), failure when it was rejected or failed; the description is its
// first reason or failing stage, and the link its dashboard page.
func SCMStatusItem(rec *store.Record, o SCMStatusOptions) (store.OutboxItem, error) {
	if !scm.ValidSHA(rec.Commit) {
		return store.OutboxItem{}, fmt.Errorf("commit status of %s: %q is not a commit id", rec.ID, rec.Commit)
	}
	p := SCMStatusPayload{Project: o.Project, SHA: rec.Commit, Context: SCMContext(rec.Environment, rec.Service),
		TargetURL: o.PublicURL + "/records/" + rec.ID, Record: rec.ID, Status: rec.Status}
	switch rec.Status {
	case store.StatusPending:
		p.State = string(scm.Pending)
	case store.StatusRunning:
		p.State, p.Running = string(scm.Pending), true
	case store.StatusSucceeded, store.StatusSkipped, store.StatusSuperseded:
		p.State = string(scm.Success)
	default:
		p.State = string(scm.Failure)
	}
	p.Description = scm.Truncate(NewRedactor(o.Secrets)(statusDescription(rec)))
	b, err := json.Marshal(p)
	if err != nil {
		return store.OutboxItem{}, fmt.Errorf("commit status of %s: %w", rec.ID, err)
	}
	return store.OutboxItem{Kind: store.OutboxSCMStatus, Key: SCMStatusKey(rec.ID, rec.Status), Payload: b}, nil
}

// statusDescription words a record's status in one line.
func statusDescription(rec *store.Record) string {
	reason := ""
	if len(rec.Reasons) > 0 {
		r := rec.Reasons[0]
		reason = r.Rule + ": " + r.Message
	}
	what := rec.Version
	if rec.Action == "remove" {
		what = "removal"
	}
	switch rec.Status {
	case store.StatusPending:
		if reason != "" {
			return "waiting: " + reason
		}
		return "queued: " + what
	case store.StatusRunning:
		names := make([]string, len(rec.Stages))
		for i, st := range rec.Stages {
			names[i] = st.Name
		}
		return "running " + what + ": " + strings.Join(names, ", ")
	case store.StatusSucceeded:
		if rec.Action == "remove" {
			return "removed"
		}
		return "deployed " + what
	case store.StatusFailed:
		for _, st := range rec.Stages {
			if st.Status == store.StageFailed || st.Status == store.StageInterrupted {
				if st.Message != "" {
					return "failed at " + st.Name + ": " + st.Message
				}
				return "failed at " + st.Name + " (" + st.Status + ")"
			}
		}
		return "failed"
	case store.StatusSkipped:
		return "skipped: " + reason
	case store.StatusSuperseded:
		return "superseded by a later commit"
	}
	if reason != "" {
		return "rejected: " + reason
	}
	return rec.Status
}

// SCM sends commit statuses. An item whose record has a later status in
// the outbox (sent or not) is skipped, not sent: a retried pending must
// never land over a success that went out first.
type SCM struct {
	Client  scm.Client
	Outbox  OutboxLookup
	Secrets []string
}

var _ Sender = (*SCM)(nil)

// SkippedStale is the external id of a status skipped for a later one.
const SkippedStale = "skipped: a later status exists"

// Send sets one commit status. 4xx answers other than 429 and rate
// limits are permanent; a rate limit that names its wait is a
// *RetryAfterError.
func (s *SCM) Send(ctx context.Context, it store.OutboxItem) (string, error) {
	if it.Kind != store.OutboxSCMStatus {
		return "", Permanent(fmt.Errorf("scm: outbox item %s has kind %q", it.Key, it.Kind))
	}
	var p SCMStatusPayload
	if err := decodeRedacted(it.Payload, s.Secrets, &p); err != nil {
		return "", undecodable("commit status", it.Key, err)
	}
	if p.Record != "" && s.Outbox != nil {
		for _, later := range laterStatuses(p.Status) {
			if _, ok, err := s.Outbox.OutboxItem(ctx, SCMStatusKey(p.Record, later)); err != nil {
				return "", err
			} else if ok {
				return SkippedStale, nil
			}
		}
	}
	err := s.Client.SetStatus(ctx, p.Project, p.SHA, scm.Status{State: scm.State(p.State), Running: p.Running,
		Context: p.Context, Description: p.Description, TargetURL: p.TargetURL})
	return "", scmError(err)
}

// scmError classifies an error of the SCM client.
func scmError(err error) error {
	if err == nil {
		return nil
	}
	var e *scm.Error
	if errors.As(err, &e) {
		if e.RateLimited && e.RetryAfter > 0 {
			return &RetryAfterError{After: e.RetryAfter, Err: err}
		}
		if e.Permanent() {
			return Permanent(err)
		}
	}
	return err
}
