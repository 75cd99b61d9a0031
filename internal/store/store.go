// Package store keeps gitmon's durable state: the last processed commit of
// every (repository, environment) branch, what each service looks like
// there, deployment records with their stages and contributing commits,
// and the event log. The embedded default is SQLite in the state folder
// (pure Go, no cgo); the Store interface is what a server database will
// implement later, so monitor, policy and runners never see SQL.
//
// Exactly-once rests on two promises of Apply and the stage methods: a
// commit's records and the branch's new position are written in one
// transaction, and each stage's completion is written before the next
// stage starts.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/gitmon-dev/gitmon/descriptors"
	"github.com/gitmon-dev/gitmon/policy"
)

// Record statuses (SPEC §7).
const (
	StatusPending    = "pending"
	StatusRunning    = "running"
	StatusSucceeded  = "succeeded"
	StatusFailed     = "failed"
	StatusSkipped    = "skipped"
	StatusRejected   = "rejected"
	StatusSuperseded = "superseded"
)

// Stage statuses (SPEC §7).
const (
	StagePending     = "pending"
	StageRunning     = "running"
	StageSucceeded   = "succeeded"
	StageFailed      = "failed"
	StageInterrupted = "interrupted"
	StageSkipped     = "skipped" // not reached
)

// Phases of a pending record, internal to gitmon.
const (
	PhasePolicy    = "policy"    // waiting for JIRA: policy runs again
	PhaseQueued    = "queued"    // allowed: waiting for the runner
	PhasePromotion = "promotion" // waiting for upstream (SPEC §5 step 5)
	PhaseWindow    = "window"    // held by a window, a freeze or a halt (step 6)
)

// Triggers of a record (SPEC §7).
const (
	TriggerCommit  = "commit"
	TriggerRetry   = "retry"
	TriggerInitial = "initial"
)

// Pause reasons of a branch.
const (
	PauseForcePush = "force_push"
	PauseDeleted   = "deleted"
)

// ErrNotRetryable is returned by Retry when the record is no longer the
// one to retry.
var ErrNotRetryable = errors.New("not retryable")

// ErrTooLong is returned when an operator's action carries more text than
// the state keeps (MaxReason, MaxActor).
var ErrTooLong = errors.New("too long")

// What the state keeps of an operator's action (SPEC §6): a freeze's
// reason and an actor, in bytes. Status, history and every record a
// freeze holds show them.
const (
	MaxReason = 1024
	MaxActor  = 256
)

// ErrNotFound is returned for a missing record.
var ErrNotFound = errors.New("not found")

// ErrLocked is returned by Open with Lock when another process holds the
// state folder.
var ErrLocked = errors.New("state folder is locked by another gitmon serve")

// Record is what one commit means for one service in one environment. Its
// JSON form is SPEC §7 exactly; the fields tagged "-" are gitmon's own.
type Record struct {
	ID              string `json:"id"`
	Repository      string `json:"repository"`
	Environment     string `json:"environment"`
	Service         string `json:"service"`
	Action          string `json:"action"` // deploy | remove
	Version         string `json:"version"`
	PreviousVersion string `json:"previous_version"`
	Commit          string `json:"commit"`
	Author          string `json:"author"`
	Committer       string `json:"committer"`
	Verified        bool   `json:"verified"`
	// Signer is who signed the commit (SPEC §5 Signatures); nil, JSON
	// null, when it was not verified.
	Signer     *Signer               `json:"signer"`
	Tickets    []string              `json:"tickets"`
	Status     string                `json:"status"`
	Trigger    string                `json:"trigger"` // Trigger*; "" reads as commit
	Actor      string                `json:"actor"`
	Reasons    []policy.Reason       `json:"reasons"`
	Commits    []policy.Contribution `json:"commits"`
	Evidence   Evidence              `json:"evidence"`
	Stages     []Stage               `json:"stages"`
	CreatedAt  time.Time             `json:"created_at"`
	StartedAt  *time.Time            `json:"started_at"`
	FinishedAt *time.Time            `json:"finished_at"`

	// Seq orders records: assigned by the store, increasing.
	Seq int64 `json:"-"`
	// Phase says what a pending record waits for.
	Phase string `json:"-"`
	// PendingSince is when the record first waited for JIRA.
	PendingSince time.Time `json:"-"`
	// WakeAt is when a record waiting at a gate is decided again (a soak
	// or window that ends, a wait that runs out); zero: on events only.
	WakeAt time.Time `json:"-"`
	// Descriptor is the requested descriptor (the last good one for a
	// remove), as runners receive it.
	Descriptor *descriptors.Descriptor `json:"-"`
	// Message is the commit message, for policy re-evaluation.
	Message string `json:"-"`
	// Diff is last good → requested when the record was decided.
	Diff descriptors.Changes `json:"-"`
	// Emails and Slack are the service recipients chosen by policy;
	// Dropped were left out by email_domains.
	Emails  []string `json:"-"`
	Slack   []string `json:"-"`
	Dropped []string `json:"-"`
}

// Signer is the identity bound to the key that signed a record's commit
// (SPEC §7 signer): policy's.
type Signer = policy.Signer

// Evidence is what a record was decided with (SPEC §7), captured at its
// decision.
type Evidence struct {
	Diff       []EvidenceChange `json:"diff"`
	Tickets    []EvidenceTicket `json:"tickets"`
	Upstream   *Upstream        `json:"upstream"`
	BreakGlass bool             `json:"break_glass"`
}

// MarshalJSON writes empty lists as [] (SPEC §7).
func (e Evidence) MarshalJSON() ([]byte, error) {
	type plain Evidence
	return json.Marshal(plain(normEvidence(e)))
}

// EvidenceChange is one field of the diff, last good → requested.
type EvidenceChange struct {
	Field string `json:"field"`
	From  string `json:"from"`
	To    string `json:"to"`
}

// EvidenceTicket is a ticket as policy saw it.
type EvidenceTicket struct {
	Key       string    `json:"key"`
	Status    string    `json:"status"`
	Approvers []string  `json:"approvers"`
	Labels    []string  `json:"labels"`
	CheckedAt time.Time `json:"checked_at"`
}

// Upstream is the upstream record that let a promotion through.
type Upstream struct {
	Environment string    `json:"environment"`
	Record      string    `json:"record"`
	SucceededAt time.Time `json:"succeeded_at"`
}

// Freeze is an operator's hold on an environment (SPEC §6 freeze); an
// empty Environment is a halt of every environment.
type Freeze struct {
	Environment string     `json:"-"`
	Reason      string     `json:"reason"`
	Actor       string     `json:"actor"`
	Since       time.Time  `json:"since"`
	Until       *time.Time `json:"until"`
}

// Active reports whether f holds releases at t.
func (f Freeze) Active(t time.Time) bool { return f.Until == nil || t.Before(*f.Until) }

// Stage is one pipeline run inside a record's release.
type Stage struct {
	Name       string     `json:"name"`
	Runner     string     `json:"runner"`
	Status     string     `json:"status"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	Message    string     `json:"message"`
	Output     string     `json:"output"`
	URL        string     `json:"url"`

	// RunID is GITMON_RUN_ID: unique per stage run.
	RunID string `json:"-"`
	// Handle is what a runner needs to find the stage again after a crash
	// (an exec process group, a Jenkins build), as the runner wrote it.
	Handle json.RawMessage `json:"-"`
}

// Event is something that happened to a branch or an environment.
type Event struct {
	ID          int64     `json:"id"`
	At          time.Time `json:"at"`
	Repository  string    `json:"repository"`
	Environment string    `json:"environment"`
	Branch      string    `json:"branch"`
	Kind        string    `json:"kind"`
	Message     string    `json:"message"`
	Commit      string    `json:"commit"`
	// Commits are the commits the event names, such as those a force-push
	// dropped.
	Commits []string `json:"commits"`
	Actor   string   `json:"actor"`
}

// Event kinds.
const (
	EventBaseline      = "baseline"
	EventForcePush     = "force_push"
	EventBranchDeleted = "branch_deleted"
	EventBranchAbsent  = "branch_absent" // an environment branch that does not exist yet
	EventPollError     = "poll_error"
	EventRecovered     = "poll_recovered"
	EventResume        = "resume"
	EventUnpaused      = "unpaused"
	EventInterrupted   = "interrupted"
	EventFreeze        = "freeze"
	EventUnfreeze      = "unfreeze"
	EventRetry         = "retry"
)

// Branch is where gitmon stands on one (repository, environment) branch.
type Branch struct {
	Repository  string
	Environment string
	Branch      string
	// Known is false until gitmon first saw the branch.
	Known bool
	// LastProcessed is the newest commit whose records are written.
	LastProcessed string
	// Paused is "" or a Pause* reason; Anchor is the last processed commit
	// before a force-push, for "put back on top of it".
	Paused   string
	Anchor   string
	PausedAt time.Time
}

// Service is what gitmon knows of one service in one environment of one
// repository.
type Service struct {
	Repository  string
	Environment string
	Service     string
	// Present says whether the branch holds the descriptor at
	// LastProcessed; Current is it, parsed (nil if absent or broken).
	Present bool
	Current *descriptors.Descriptor
	// Attribution names the commit that last changed each field of
	// Current along the branch's first-parent history.
	Attribution policy.Attribution
	// Broken are the commits since Current whose descriptor did not parse,
	// oldest first: what differs when it parses again is attributed to
	// them too (SPEC §5 Bad descriptors).
	Broken []policy.Commit
	// LastGood and LastAttempted (SPEC §0) with their commits and versions;
	// nil descriptor when there is none.
	LastGood            *descriptors.Descriptor
	LastGoodCommit      string
	LastAttempted       *descriptors.Descriptor
	LastAttemptedCommit string
}

// Batch is everything one processed commit writes, applied atomically.
type Batch struct {
	Repository  string
	Environment string
	Branch      string
	// Commit becomes the branch's LastProcessed; it and Processed are
	// marked processed (Store.Processed).
	Commit    string
	Processed []string
	// Records are inserted; the store assigns ID, Seq and CreatedAt when
	// they are empty.
	Records []*Record
	// Services are upserted (state at Commit). Their LastGood and
	// LastAttempted fields are ignored: only Baseline sets them, from
	// Current.
	Services []Service
	// Baseline marks services whose LastGood and LastAttempted are set
	// from Current (the first sight of a branch).
	Baseline bool
	// Supersede names records whose status becomes superseded, if they
	// are still pending.
	Supersede []string
	// Superseding names services whose record in Records supersedes
	// their records that have not started (SPEC §5 step 7): every record
	// of the service in the batch's repository and environment that is
	// pending and came before it becomes superseded, in the same
	// transaction. It takes those another process wrote after the caller
	// read what Supersede lists (a retry).
	Superseding []string
	// Pause sets the branch's pause ("" leaves it); Unpause clears it.
	Pause   string
	Anchor  string
	Unpause bool
	// Events are appended.
	Events []Event
	// Objects are kept (CommitObjects): the commits step 1 verified.
	Objects []CommitObject
}

// CommitObject is a commit as its SHA names it, kept so that it can be
// verified again without the Git object store (SPEC §5 Signatures).
type CommitObject struct {
	SHA    string
	Object []byte // the raw object, without the "commit <size>\x00" header
	// MergedIn are, for a merge, the commits it brings in from its other
	// parents; nil when not known (KnownMergedIn false).
	MergedIn      []string
	KnownMergedIn bool
}

// End is how a record ends (EndRecord).
type End struct {
	Status string
	At     time.Time
	// Stages are stage writes (by index) made with the end.
	Stages map[int]Stage
	// Events are appended with the end.
	Events []Event
}

// Filter selects records or events, newest first.
type Filter struct {
	Repository  string
	Environment string
	Service     string
	Status      []string
	Since       time.Time // records created at or after it; zero: any time
	Limit       int       // 0: no limit
}

// Store is gitmon's durable state.
type Store interface {
	// Branch returns the state of a branch; Known is false if never seen.
	Branch(ctx context.Context, repo, env string) (Branch, error)
	// Services returns the services of a (repository, environment).
	Services(ctx context.Context, repo, env string) ([]Service, error)
	// Service returns one service; a zero Service (Present false) if none.
	Service(ctx context.Context, repo, env, service string) (Service, error)
	// Deployed returns every service's last good version.
	Deployed(ctx context.Context) ([]Deployed, error)
	// Branches returns every branch gitmon has seen.
	Branches(ctx context.Context) ([]Branch, error)
	// Claims returns the repositories whose branch of env holds service.
	Claims(ctx context.Context, env, service string) ([]string, error)
	// Apply writes a batch in one transaction.
	Apply(ctx context.Context, b Batch) error
	// Processed returns which of shas were processed on the branch of
	// (repo, env): a commit is processed once per environment, whatever
	// the branch does later.
	Processed(ctx context.Context, repo, env string, shas []string) (map[string]bool, error)

	// Record returns one record.
	Record(ctx context.Context, id string) (*Record, error)
	// Records returns records, newest first.
	Records(ctx context.Context, f Filter) ([]*Record, error)
	// Pending returns every pending record, oldest first.
	Pending(ctx context.Context) ([]*Record, error)
	// Running returns every running record, oldest first.
	Running(ctx context.Context) ([]*Record, error)
	// Decide updates a pending record after policy ran again: its status,
	// phase, reasons and pending-since (and the rest of the verdict:
	// tickets, commits, diff, recipients; FinishedAt when the status ends
	// it), and supersedes the listed records that are still pending, in one
	// transaction. It fails with ErrNotFound if r is no longer pending.
	Decide(ctx context.Context, r *Record, supersede []string) error
	// CommitObjects returns the kept objects of the given commits of a
	// repository (Batch.Objects); a commit never kept is missing.
	CommitObjects(ctx context.Context, repo string, shas []string) (map[string]CommitObject, error)

	// StartRecord marks a queued record running with its stages pending,
	// and makes its descriptor the service's last attempted. It fails with
	// ErrNotFound if the record is no longer pending (superseded).
	StartRecord(ctx context.Context, id string, stages []Stage, at time.Time) error
	// UpdateStage writes stage i of a record (status, times, message,
	// output, url, handle). It returns once the write is durable.
	UpdateStage(ctx context.Context, id string, i int, s Stage) error
	// FinishRecord ends a record: succeeded makes its descriptor the
	// service's last good (or, for a remove, clears it); failed keeps the
	// last good.
	FinishRecord(ctx context.Context, id, status string, at time.Time) error
	// EndRecord ends a pending or running record as FinishRecord does,
	// and in the same transaction writes the stages in e.Stages and
	// appends e.Events: a release's last stage, its end and what recovery
	// says of it are durable together or not at all.
	EndRecord(ctx context.Context, id string, e End) error

	// AddEvent appends an event.
	AddEvent(ctx context.Context, e Event) error
	// Events returns events, newest first.
	Events(ctx context.Context, f Filter) ([]Event, error)
	// Resume lifts the pauses of env (of every repository when repo is
	// empty) and records who did it; it returns the branches it unpaused.
	Resume(ctx context.Context, env, repo, actor string) ([]Branch, error)

	// Freeze sets (or replaces) the freeze of f.Environment ("" halts
	// every environment) and records a freeze event with its actor.
	Freeze(ctx context.Context, f Freeze) error
	// Unfreeze lifts the freeze of env ("" lifts the halt) and records an
	// unfreeze event; it returns the freeze it lifted, false if none.
	Unfreeze(ctx context.Context, env, actor string) (Freeze, bool, error)
	// Freezes returns the freezes set, expired ones included.
	Freezes(ctx context.Context) ([]Freeze, error)
	// PendingAfter returns the pending records whose Seq is after seq,
	// oldest first: what another process (retry) queued.
	PendingAfter(ctx context.Context, seq int64) ([]*Record, error)
	// Artifact returns the records of (repo, env, service) at version,
	// newest first, without their stages: the promotion gate's upstream.
	Artifact(ctx context.Context, repo, env, service, version string) ([]*Record, error)
	// Retry inserts r, a retry of the failed record of, and a retry event,
	// in one transaction, if of is still the service's last started
	// record and nothing of the service is pending or running; otherwise
	// it fails with ErrNotRetryable.
	Retry(ctx context.Context, r *Record, of string) error

	Close() error

	// Enqueue adds notifications to the outbox, ignoring keys already
	// there.
	Enqueue(ctx context.Context, items ...OutboxItem) error
	// DueOutbox returns at most limit items to deliver that are due at
	// now, earliest first; with kinds, only items of those kinds.
	DueOutbox(ctx context.Context, now time.Time, limit int, kinds ...string) ([]OutboxItem, error)
	// MarkSent records a delivery and what the far side answered.
	MarkSent(ctx context.Context, id int64, externalID string, at time.Time) error
	// MarkFailed records a failed delivery and when to try again.
	MarkFailed(ctx context.Context, id int64, errText string, next time.Time) error
	// MarkDead makes an item a dead letter, never tried again, and
	// reports whether this call did.
	MarkDead(ctx context.Context, id int64, errText string, at time.Time) (bool, error)
	// DeadLetters counts the dead letters.
	DeadLetters(ctx context.Context) (int, error)
	// OutboxItem returns the item with key; false if there is none.
	OutboxItem(ctx context.Context, key string) (OutboxItem, bool, error)
	// Unannounced returns the ids of the records created at or after
	// since whose outbox key prefix+id+":"+status is not in the outbox,
	// newest first: what a crash kept from being enqueued.
	Unannounced(ctx context.Context, prefix string, since time.Time) ([]string, error)

	// Standings returns, from one snapshot, where every service of env
	// ("" every environment) stands (its last good, the succeeded record
	// that made it and its newest record) and the records in flight there,
	// summarised. Its cost does not grow with the history.
	Standings(ctx context.Context, env string) (Standings, error)
}
