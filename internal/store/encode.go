package store

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gitmon-dev/gitmon/descriptors"
	"github.com/gitmon-dev/gitmon/policy"
)

// MarshalJSON renders a record as SPEC §7 says, whatever the record holds:
// the SPEC's keys in its order, lists as [] rather than null (a nil
// Tickets, Reasons, Commits, Stages or contribution Fields included), and
// finished_at null until the record ends.
func (r Record) MarshalJSON() ([]byte, error) {
	type plain Record // no methods: no recursion
	p := plain(r)
	p.Tickets = orEmpty(p.Tickets)
	p.Reasons = orEmpty(p.Reasons)
	p.Stages = orEmpty(p.Stages)
	if p.Commits == nil {
		p.Commits = []policy.Contribution{}
	} else if hasNilFields(p.Commits) {
		cs := make([]policy.Contribution, len(p.Commits))
		for i, c := range p.Commits {
			c.Fields = orEmpty(c.Fields)
			cs[i] = c
		}
		p.Commits = cs
	}
	return json.Marshal(p)
}

func hasNilFields(cs []policy.Contribution) bool {
	for _, c := range cs {
		if c.Fields == nil {
			return true
		}
	}
	return false
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Finished reports whether status ends a record.
func Finished(status string) bool {
	switch status {
	case StatusSucceeded, StatusFailed, StatusSkipped, StatusRejected, StatusSuperseded:
		return true
	}
	return false
}

func validStatus(status string) bool {
	return status == StatusPending || status == StatusRunning || Finished(status)
}

// Times are stored in UTC with a fixed width, so that they sort as text.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// nullTime stores the zero time as NULL.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return formatTime(t)
}

func nullTimePtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return formatTime(*t)
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("stored time %q: %w", s, err)
	}
	return t.UTC(), nil
}

func parseNullTime(ns sql.NullString) (time.Time, error) {
	if !ns.Valid {
		return time.Time{}, nil
	}
	return parseTime(ns.String)
}

func parseTimePtr(ns sql.NullString) (*time.Time, error) {
	if !ns.Valid {
		return nil, nil
	}
	t, err := parseTime(ns.String)
	return &t, err
}

// jsonText is v as JSON text.
func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// descriptorText stores a nil descriptor as NULL.
func descriptorText(d *descriptors.Descriptor) (any, error) {
	if d == nil {
		return nil, nil
	}
	b, err := d.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("descriptor %s: %w", d.Service, err)
	}
	return string(b), nil
}

func parseDescriptor(ns sql.NullString) (*descriptors.Descriptor, error) {
	if !ns.Valid {
		return nil, nil
	}
	d := new(descriptors.Descriptor)
	if err := d.UnmarshalJSON([]byte(ns.String)); err != nil {
		return nil, fmt.Errorf("stored descriptor: %w", err)
	}
	return d, nil
}

// decoder collects the first error of a series of JSON decodes.
type decoder struct{ err error }

func (d *decoder) json(text string, v any) {
	if d.err == nil {
		if err := json.Unmarshal([]byte(text), v); err != nil {
			d.err = fmt.Errorf("stored JSON %.40q: %w", text, err)
		}
	}
}

func (d *decoder) time(ns sql.NullString) time.Time {
	t, err := parseNullTime(ns)
	if d.err == nil {
		d.err = err
	}
	return t
}

func (d *decoder) timePtr(ns sql.NullString) *time.Time {
	t, err := parseTimePtr(ns)
	if d.err == nil {
		d.err = err
	}
	return t
}

func (d *decoder) descriptor(ns sql.NullString) *descriptors.Descriptor {
	v, err := parseDescriptor(ns)
	if d.err == nil {
		d.err = err
	}
	return v
}

// encoder collects the first error of a series of JSON encodes.
type encoder struct{ err error }

func (e *encoder) json(v any) string {
	s, err := jsonText(v)
	if e.err == nil {
		e.err = err
	}
	return s
}

func (e *encoder) descriptor(d *descriptors.Descriptor) any {
	v, err := descriptorText(d)
	if e.err == nil {
		e.err = err
	}
	return v
}

// signer stores a nil signer as NULL.
func (e *encoder) signer(s *Signer) any {
	if s == nil {
		return nil
	}
	return e.json(s)
}
