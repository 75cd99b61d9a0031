package app

import (
	"context"

	"github.com/gitmon-dev/gitmon/internal/store"
)

// Announcer hears about records as they are decided, start and end, to
// notify people (Slack, e-mail, JIRA). Implementations must not block:
// they write to the outbox and return; deployments never wait on them.
type Announcer interface {
	// Decided is called for a record that ends at its decision
	// (rejected, skipped) once it is stored.
	Decided(ctx context.Context, rec *store.Record)
	// Started is called when a release's first stage is about to run.
	Started(ctx context.Context, rec *store.Record)
	// Finished is called once a release ended (succeeded or failed).
	Finished(ctx context.Context, rec *store.Record)
}

type noAnnouncer struct{}

func (noAnnouncer) Decided(context.Context, *store.Record)  {}
func (noAnnouncer) Started(context.Context, *store.Record)  {}
func (noAnnouncer) Finished(context.Context, *store.Record) {}
