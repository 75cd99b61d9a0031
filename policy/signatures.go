package policy

import (
	"fmt"
	"strings"
)

// Signer is who signed a record's commit (SPEC §7 signer): the key's type
// and fingerprint, and the identity it vouched for.
type Signer struct {
	Type     string `json:"type"`
	Key      string `json:"key"`
	Identity string `json:"identity"`
}

// subject is one commit step 1 judges.
type subject struct {
	c Commit
	// fields are the fields attributed to it (or to the merge that
	// brought it in); nil for the record's own commit.
	fields []string
	// contribution is its index in Verdict.Commits, or -1.
	contribution int
	// by is the merge that brought it in (merges: all), or "".
	by string
	// err says why the commits it brings in could not be listed.
	err error
}

// mergedIn adds, after each subject that is a merge, the commits it
// brings in from its other parents, each once: their fields are the
// merge's (SPEC §1).
func mergedIn(subjects []subject) []subject {
	seen := make(map[string]bool, len(subjects))
	for _, s := range subjects {
		seen[s.c.SHA] = true
	}
	out := make([]subject, 0, len(subjects))
	for _, s := range subjects {
		s.err = s.c.MergedInErr
		out = append(out, s)
		for _, m := range s.c.MergedIn {
			if seen[m.SHA] {
				continue
			}
			seen[m.SHA] = true
			out = append(out, subject{c: m, fields: s.fields, contribution: -1, by: s.c.SHA})
		}
	}
	return out
}

// checkSignature applies rule signatures to c: a valid signature by a
// trusted key, whose identities include the commit's committer (or
// author, with identity: author). It returns the signer when c passes.
func (e *Engine) checkSignature(c Commit, fail func(rule, msg string)) (*Signer, bool) {
	sig := c.Signature
	if sig == nil {
		fail(RuleSignatures, fmt.Sprintf("commit %s was not verified", short(c.SHA)))
		return nil, false
	}
	if sig.Err != nil {
		fail(RuleSignatures, fmt.Sprintf("commit %s: %v", short(c.SHA), sig.Err))
		return nil, false
	}
	who := c.Committer.Email
	if e.cfg.Identity == IdentityAuthor {
		who = c.Author.Email
	}
	if who == "" || !sig.Signer.Matches(who) {
		fail(RuleSignatures, fmt.Sprintf("commit %s is signed by %s key %s, which may sign for %s, not for its %s %s",
			short(c.SHA), sig.Signer.Type, sig.Signer.Key, identities(sig.Signer.Identities), e.cfg.Identity, orQuoted(who)))
		return nil, false
	}
	return &Signer{Type: sig.Signer.Type, Key: sig.Signer.Key, Identity: who}, true
}

func identities(ids []string) string {
	const max = 5
	if len(ids) > max {
		return strings.Join(ids[:max], ", ") + fmt.Sprintf(" and %d more", len(ids)-max)
	}
	return strings.Join(ids, ", ")
}

func orQuoted(s string) string {
	if s == "" {
		return `""`
	}
	return s
}
