package policy

import (
	"slices"

	"github.com/gitmon-dev/gitmon/descriptors"
)

// Attribution maps each field to the commit that last changed its value
// along a branch's first-parent history. It is built incrementally: Record
// each commit's own diff against its first parent, oldest first.
//
// A field can name several commits when it is not known which of them set
// its value: the commits whose descriptor did not parse, and the commit
// that repaired it (RecordAll). Each of them must pass policy, so a
// repair never takes over what the broken commits changed.
type Attribution map[string][]Commit

// Record notes that c changed the fields in diff, its semantic diff against
// its first parent. A commit that writes a field's value again does not
// appear in its diff, so it changes nothing.
func (a Attribution) Record(c Commit, diff descriptors.Changes) {
	for _, f := range diff.Fields() {
		a[f] = []Commit{c}
	}
}

// RecordAll notes that the fields in diff changed across all of cs
// (oldest first), without knowing which of them set each value.
func (a Attribution) RecordAll(cs []Commit, diff descriptors.Changes) {
	if len(cs) == 1 {
		a.Record(cs[0], diff)
		return
	}
	cs = slices.Clip(slices.Clone(cs))
	for _, f := range diff.Fields() {
		a[f] = cs
	}
}

// Clone returns a copy of a. The commit lists are shared: Record and
// RecordAll replace them, never change them in place.
func (a Attribution) Clone() Attribution {
	out := make(Attribution, len(a))
	for k, v := range a {
		out[k] = v
	}
	return out
}

// attributed returns the commits a field is attributed to, oldest first.
func attributed(ch *Change, field string) []Commit {
	if cs := ch.Attribution[field]; len(cs) > 0 && cs[0].SHA != "" {
		return cs
	}
	return []Commit{ch.Commit}
}

func (e *Engine) contributions(ch *Change, diff descriptors.Changes) []Contribution {
	fields := diff.Fields()
	out := make([]Contribution, 0, 4)
	group := make([][2]int, 0, len(fields)) // (field index, contribution index)
	for i, f := range fields {
		for _, c := range attributed(ch, f) {
			g := slices.IndexFunc(out, func(con Contribution) bool { return con.Commit == c.SHA })
			if g < 0 {
				g = len(out)
				out = append(out, Contribution{Commit: c.SHA, Author: c.Author.Email, Committer: c.Committer.Email})
			}
			group = append(group, [2]int{i, g})
		}
	}
	// One backing array holds every contribution's fields, in field order.
	backing := make([]string, 0, len(group))
	for g := range out {
		start := len(backing)
		for _, fg := range group {
			if fg[1] == g {
				backing = append(backing, fields[fg[0]])
			}
		}
		out[g].Fields = backing[start:len(backing):len(backing)]
	}
	return out
}

// contributor returns the commit of a contribution: one of those its
// first field is attributed to.
func contributor(ch *Change, con Contribution) Commit {
	for _, c := range attributed(ch, con.Fields[0]) {
		if c.SHA == con.Commit {
			return c
		}
	}
	return Commit{SHA: con.Commit}
}
