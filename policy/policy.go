// Package policy decides what a change to a descriptor may do. It is pure:
// given a Change (the commits, the last-good and requested descriptors and
// who changed which field) it returns a Verdict with machine-readable
// reasons. The one lookup it needs, JIRA tickets, comes in through the
// TicketChecker interface declared here.
//
// Rules apply in the order of SPEC §5: identity and tickets of every
// contributing commit, then skip markers, then "already in place", then the
// change rules. Attribution is what stops a rejected change from riding
// along with a later allowed commit.
package policy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path"
	"strings"
	"time"

	"github.com/gitmon-dev/gitmon/descriptors"
	"github.com/gitmon-dev/gitmon/internal/trust"
)

// Rule names, as records report them (SPEC §7).
const (
	RuleSkip             = "skip"
	RuleUnchanged        = "unchanged"
	RuleCommitters       = "committers"
	RuleSignatures       = "signatures"
	RuleJira             = "jira"
	RulePorts            = "ports"
	RuleCPU              = "cpu"
	RuleMemory           = "memory"
	RuleDowngrade        = "downgrade"
	RuleDelete           = "delete"
	RuleHealthcheckHosts = "healthcheck_hosts"
	RuleDescriptor       = "descriptor"
	RuleCollision        = "collision"
	RuleForcePush        = "force_push"
	RulePaused           = "paused"
	RulePromotion        = "promotion"
	RuleWindow           = "window"
)

// Identity is a Git author or committer.
type Identity struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

// Commit is what policy needs to know of one commit.
type Commit struct {
	SHA       string
	Message   string
	Author    Identity
	Committer Identity
	// Signature is what verifying the commit's signature found, set by
	// the caller before Evaluate when signatures are required; nil means
	// it was not verified, which fails the signatures rule closed.
	Signature *Signature `json:"-"`
	// MergedIn are the commits a merge brings in from its other parents
	// (reachable from them, not from its first parent), set by the caller
	// when merges is all, each with its Signature; MergedInErr says why
	// they could not be listed, which fails step 1 closed.
	MergedIn    []Commit `json:"-"`
	MergedInErr error    `json:"-"`
}

// Signature is the outcome of verifying one commit's signature: the
// signer, or why it is refused (one of the trust.Err* reasons).
type Signature struct {
	Signer trust.Signer
	Err    error
}

// Action is what a record asks of an environment.
type Action string

// Actions.
const (
	ActionDeploy Action = "deploy"
	ActionRemove Action = "remove"
)

// Change is one (repository, environment, service) at one commit: the
// deployment request policy judges.
type Change struct {
	Repository  string
	Environment string
	Service     string
	Action      Action
	// Commit is the commit the record is for: the newest that touched the
	// service.
	Commit Commit
	// LastGood is the descriptor of the last succeeded record; nil if none.
	LastGood *descriptors.Descriptor
	// LastAttempted is the descriptor of the last record whose first stage
	// started; nil if none.
	LastAttempted *descriptors.Descriptor
	// Requested is the descriptor at Commit; nil when Action is remove.
	Requested *descriptors.Descriptor
	// Attribution names, for each field, the commit that last changed its
	// value along the first-parent history. Fields missing from it are
	// attributed to Commit.
	Attribution Attribution
	// PendingSince is when this record first waited on JIRA; zero if it
	// never has.
	PendingSince time.Time
	// Retry says an operator asked again for a failed record (SPEC §5
	// Retry): steps 2 and 3 do not apply to it.
	Retry bool
}

// Decision is policy's answer.
type Decision string

// Decisions.
const (
	Allow   Decision = "allow"
	Skip    Decision = "skip"
	Reject  Decision = "reject"
	Pending Decision = "pending" // waiting for JIRA to answer
)

// Reason explains a decision (SPEC §7 "reasons").
type Reason struct {
	Rule    string `json:"rule"`
	Message string `json:"message"`
	Commit  string `json:"commit"`
	Field   string `json:"field"`
}

// Contribution is one commit that contributed fields to the requested
// descriptor (SPEC §7 "commits").
type Contribution struct {
	Commit    string   `json:"commit"`
	Author    string   `json:"author"`
	Committer string   `json:"committer"`
	Fields    []string `json:"fields"`
	// Verified says the commit's signature was verified and its identity
	// is the signer's (signatures required); Signer is that identity.
	Verified bool   `json:"verified"`
	Signer   string `json:"signer"`
}

// Verdict is the outcome of Evaluate.
type Verdict struct {
	Decision Decision
	Reasons  []Reason
	// Tickets are the ticket keys in the record commit's message.
	Tickets []string
	// Diff is last good → requested.
	Diff descriptors.Changes
	// Commits are the contributing commits, in order of first field.
	Commits []Contribution
	// Emails are the service's e-mail recipients for this record: the
	// requested descriptor's, or the last good one's when rejected,
	// within email_domains.
	Emails []string
	// Slack are the service's channels, chosen the same way.
	Slack []string
	// Dropped are e-mail addresses left out by email_domains.
	Dropped []string
	// Verified is true when signatures are required and every commit of
	// step 1 was verified (SPEC §7 verified); Signer is who signed the
	// record's commit, nil when it was not verified.
	Verified bool
	Signer   *Signer
	// Checked are the tickets step 1 looked up, each once, as JIRA
	// answered (the evidence of SPEC §7); a ticket JIRA could not find or
	// answer for is not among them.
	Checked []CheckedTicket
}

// Ticket is what JIRA says of one issue key.
type Ticket struct {
	Key    string
	Status string
	// Approvers are the e-mails of the people who approved the ticket.
	Approvers []string
	// Labels are the ticket's labels, for break_glass.jira_labels.
	Labels []string
}

// TicketChecker looks tickets up. Implementations return an error
// wrapping ErrTicketNotFound for a missing ticket and ErrUnavailable when
// JIRA cannot answer; any other error counts as unavailable too, so the
// check fails closed.
type TicketChecker interface {
	Ticket(ctx context.Context, key string) (Ticket, error)
}

// JQLMatcher is implemented by a TicketChecker that can tell whether a
// ticket matches a JQL condition (policy.jira.jql).
type JQLMatcher interface {
	MatchesJQL(ctx context.Context, key, jql string) (bool, error)
}

// Errors a TicketChecker returns.
var (
	ErrTicketNotFound = errors.New("ticket not found")
	ErrUnavailable    = errors.New("JIRA unavailable")
)

// Engine evaluates changes for one environment. It is safe for concurrent
// use.
type Engine struct {
	cfg        Config
	tickets    TicketChecker
	committers []string // lower-cased globs; nil: no limit
	domains    []string
	hosts      []string
	markers    []string
	ports      [][2]int
	windows    *Windows
}

// New compiles cfg. tickets may be nil when no JIRA integration exists:
// a ticket check then fails closed.
func New(cfg Config, tickets TicketChecker) (*Engine, error) {
	if ps := cfg.Check(); len(ps) > 0 {
		errs := make([]error, len(ps))
		for i, p := range ps {
			errs[i] = fmt.Errorf("policy.%s: %s", p.Path, p.Msg)
		}
		return nil, errors.Join(errs...)
	}
	e := &Engine{cfg: cfg, tickets: tickets}
	e.windows, _ = CompileWindows(cfg.Windows) // Check found no problems
	e.committers = lowerAll(cfg.Committers)
	e.domains = lowerAll(cfg.EmailDomains)
	e.hosts = lowerAll(cfg.Changes.HealthcheckHosts)
	for _, m := range cfg.SkipMarkers {
		e.markers = append(e.markers, strings.ToLower(m))
	}
	if cfg.Changes.AllowedPorts != nil {
		e.ports = [][2]int{}
		for _, r := range *cfg.Changes.AllowedPorts {
			lo, hi, _ := parsePortRange(r)
			e.ports = append(e.ports, [2]int{lo, hi})
		}
	}
	return e, nil
}

func lowerAll(list *[]string) []string {
	if list == nil {
		return nil
	}
	out := make([]string, len(*list))
	for i, s := range *list {
		out[i] = strings.ToLower(s)
	}
	return out
}

// Config returns the configuration the engine was built from.
func (e *Engine) Config() Config { return e.cfg }

// Windows returns the environment's compiled policy.windows; nil (always
// open) when there are none.
func (e *Engine) Windows() *Windows { return e.windows }

// Evaluate judges ch at time now. It never fails: problems it cannot
// resolve, such as JIRA being unreachable, become a Pending or Reject
// decision with reasons.
func (e *Engine) Evaluate(ctx context.Context, ch *Change, now time.Time) Verdict {
	v := Verdict{Reasons: []Reason{}}
	if ch.Action == ActionRemove {
		v.Diff = descriptors.Diff(ch.LastGood, nil)
	} else {
		v.Diff = descriptors.Diff(ch.LastGood, ch.Requested)
	}
	v.Tickets = TicketKeys(ch.Commit.Message, e.cfg.Jira.Projects)
	if v.Tickets == nil {
		v.Tickets = []string{}
	}
	v.Commits = e.contributions(ch, v.Diff)

	// 1. Identity and tickets of the record's commit and every commit a
	// field is attributed to.
	pending := e.checkCommits(ctx, ch, &v, now)
	if len(v.Reasons) > 0 {
		return e.finish(ch, v, Reject)
	}
	if pending != nil {
		v.Reasons = append(v.Reasons, *pending)
		return e.finish(ch, v, Pending)
	}

	if ch.Retry {
		// A retry goes through steps 1 and 4 (and the gates after them).
		e.checkChanges(ch, &v)
		if len(v.Reasons) > 0 {
			return e.finish(ch, v, Reject)
		}
		return e.finish(ch, v, Allow)
	}

	// 2. Skip markers.
	msg := strings.ToLower(ch.Commit.Message)
	for i, m := range e.markers {
		if strings.Contains(msg, m) {
			v.Reasons = append(v.Reasons, Reason{Rule: RuleSkip, Commit: ch.Commit.SHA,
				Message: fmt.Sprintf("the commit message contains the skip marker %q", e.cfg.SkipMarkers[i])})
			return e.finish(ch, v, Skip)
		}
	}

	// 3. Already in place.
	if ch.Action == ActionRemove && ch.LastAttempted == nil {
		v.Reasons = append(v.Reasons, Reason{Rule: RuleUnchanged, Commit: ch.Commit.SHA, Message: "the service is not deployed in this environment"})
		return e.finish(ch, v, Skip)
	}
	if ch.Action != ActionRemove && ch.LastAttempted != nil && e.inPlace(ch, v.Diff) {
		v.Reasons = append(v.Reasons, Reason{Rule: RuleUnchanged, Commit: ch.Commit.SHA,
			Message: fmt.Sprintf("version %s with this descriptor is already the last attempted", ch.Requested.Version)})
		return e.finish(ch, v, Skip)
	}

	// 4. Change rules.
	e.checkChanges(ch, &v)
	if len(v.Reasons) > 0 {
		return e.finish(ch, v, Reject)
	}
	return e.finish(ch, v, Allow)
}

// inPlace reports whether the requested descriptor equals the last
// attempted one, reusing the diff when the last attempted is the last good.
func (e *Engine) inPlace(ch *Change, diff descriptors.Changes) bool {
	if ch.LastAttempted == ch.LastGood {
		return len(diff) == 0
	}
	return descriptors.Equal(ch.LastAttempted, ch.Requested)
}

func (e *Engine) finish(ch *Change, v Verdict, d Decision) Verdict {
	v.Decision = d
	// Recipients of a rejected record are the last good descriptor's,
	// never addresses the rejected change added (SPEC §5).
	src := ch.Requested
	if d == Reject || ch.Action == ActionRemove {
		src = ch.LastGood
	}
	v.Emails, v.Slack = []string{}, []string{}
	if src != nil {
		add := func(addr string) {
			if addr == "" || containsFold(v.Emails, addr) || containsFold(v.Dropped, addr) {
				return
			}
			if e.EmailAllowed(addr) {
				v.Emails = append(v.Emails, addr)
			} else {
				v.Dropped = append(v.Dropped, addr)
			}
		}
		for _, addr := range src.Notifications.Emails {
			add(addr)
		}
		add(src.Maintainer)
		if len(src.Notifications.Slack) > 0 {
			v.Slack = src.Notifications.Slack
		}
	}
	return v
}

// EmailAllowed reports whether addr is inside email_domains.
func (e *Engine) EmailAllowed(addr string) bool {
	if e.domains == nil {
		return true
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return false
	}
	return matchAny(e.domains, strings.ToLower(addr[at+1:]))
}

func matchAny(globs []string, s string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, s); ok {
			return true
		}
	}
	return false
}

// checkCommits applies the identity, signature and ticket rules to the
// record's commit, to every contributing commit and, with merges: all, to
// every commit a merge among them brings in, adding a reason per failure.
// It returns a pending reason when JIRA could not answer yet.
func (e *Engine) checkCommits(ctx context.Context, ch *Change, v *Verdict, now time.Time) *Reason {
	subjects := []subject{{c: ch.Commit, contribution: -1}}
	for i, con := range v.Commits {
		if con.Commit == ch.Commit.SHA {
			subjects[0].contribution = i
			continue
		}
		subjects = append(subjects, subject{c: contributor(ch, con), fields: con.Fields, contribution: i})
	}
	if e.cfg.Merges == MergesAll {
		subjects = mergedIn(subjects)
	}
	l := &lookups{e: e, now: now}
	var pending *Reason
	verified := e.cfg.Signatures.Required
	for _, s := range subjects {
		fail := func(rule, msg string) {
			if s.fields == nil {
				v.Reasons = append(v.Reasons, Reason{Rule: rule, Commit: s.c.SHA, Message: msg})
				return
			}
			for _, f := range s.fields {
				v.Reasons = append(v.Reasons, Reason{Rule: rule, Commit: s.c.SHA, Field: f,
					Message: fmt.Sprintf("%s (it last changed %s)", msg, f)})
			}
		}
		if s.by != "" {
			inner := fail
			fail = func(rule, msg string) { inner(rule, fmt.Sprintf("%s, brought in by merge %s", msg, short(s.by))) }
		}
		if s.err != nil {
			fail(RuleSignatures, fmt.Sprintf("the commits merge %s brings in cannot be listed: %v", short(s.c.SHA), s.err))
			verified = false
		}
		ok := true
		if e.cfg.Signatures.Required {
			var signer *Signer
			signer, ok = e.checkSignature(s.c, fail)
			verified = verified && ok
			if s.contribution >= 0 && ok {
				v.Commits[s.contribution].Verified, v.Commits[s.contribution].Signer = true, signer.Identity
			}
			if s.c.SHA == ch.Commit.SHA && s.by == "" {
				v.Signer = signer
			}
		}
		// An identity the signature does not vouch for is not checked
		// against the allowlist: the signatures reason says why.
		if who, allowed := e.identityAllowed(s.c); ok && !allowed {
			fail(RuleCommitters, fmt.Sprintf("%s %s of commit %s is not in the committers allowlist", e.cfg.Identity, who, short(s.c.SHA)))
		}
		if p := e.checkTickets(ctx, l, s.c, ch, now, fail); p != nil && pending == nil {
			pending = p
		}
	}
	v.Verified = verified
	v.Checked = l.evidence()
	return pending
}

func (e *Engine) identityAllowed(c Commit) (string, bool) {
	who := c.Committer.Email
	if e.cfg.Identity == IdentityAuthor {
		who = c.Author.Email
	}
	if e.committers == nil {
		return who, true
	}
	return who, who != "" && matchAny(e.committers, strings.ToLower(who))
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// checkChanges applies the change rules to the requested values of the
// fields that differ from the last good descriptor.
func (e *Engine) checkChanges(ch *Change, v *Verdict) {
	rules := e.cfg.Changes
	add := func(rule, field, format string, args ...any) {
		v.Reasons = append(v.Reasons, Reason{Rule: rule, Field: field, Commit: attributed(ch, field)[0].SHA, Message: fmt.Sprintf(format, args...)})
	}
	if ch.Action == ActionRemove {
		if !rules.AllowDelete {
			v.Reasons = append(v.Reasons, Reason{Rule: RuleDelete, Commit: ch.Commit.SHA,
				Message: fmt.Sprintf("deleting %s from %s is not allowed (policy.changes.allow_delete is false)", ch.Service, ch.Environment)})
		}
		return
	}
	req := ch.Requested
	diff := v.Diff
	if e.ports != nil {
		if diff.Has(descriptors.FieldPort) && req.Port != 0 && !e.portAllowed(req.Port) {
			add(RulePorts, descriptors.FieldPort, "port %d is outside allowed_ports", req.Port)
		}
		if diff.Has(descriptors.FieldPorts) {
			for _, p := range req.Ports {
				if !e.portAllowed(p) {
					add(RulePorts, descriptors.FieldPorts, "port %d is outside allowed_ports", p)
				}
			}
		}
	}
	if max := rules.MaxCPU; !max.IsZero() && diff.Has(descriptors.FieldCPU) && req.Resources.CPU.Cmp(max) > 0 {
		add(RuleCPU, descriptors.FieldCPU, "cpu %s is over max_cpu %s", req.Resources.CPU, max)
	}
	if max := rules.MaxMemory; !max.IsZero() && diff.Has(descriptors.FieldMemory) && req.Resources.Memory.Cmp(max) > 0 {
		add(RuleMemory, descriptors.FieldMemory, "memory %s is over max_memory %s", req.Resources.Memory, max)
	}
	if !rules.AllowDowngrade && ch.LastGood != nil {
		for _, c := range diff {
			switch {
			case c.Field != descriptors.FieldVersion:
			case c.Kind == descriptors.VersionDown:
				add(RuleDowngrade, c.Field, "version %s is lower than the last good %s", c.New, c.Old)
			case c.Kind == descriptors.VersionIncomparable:
				add(RuleDowngrade, c.Field, "version %s cannot be compared with the last good %s, so it counts as a downgrade", c.New, c.Old)
			}
		}
	}
	if diff.Has(descriptors.FieldEndpoints) || diff.Has(descriptors.FieldDomain) || diff.Has(descriptors.FieldScheme) || diff.Has(descriptors.FieldPort) {
		for _, h := range HealthcheckHosts(req) {
			field := descriptors.FieldEndpoints
			if !diff.Has(field) {
				field = descriptors.FieldDomain
			}
			switch {
			case isLinkLocal(h):
				add(RuleHealthcheckHosts, field, "healthcheck host %s is link-local, which is never allowed", h)
			case e.hosts != nil && !matchAny(e.hosts, strings.ToLower(h)):
				add(RuleHealthcheckHosts, field, "healthcheck host %s is outside healthcheck_hosts", h)
			}
		}
	}
}

func (e *Engine) portAllowed(p int) bool {
	for _, r := range e.ports {
		if p >= r[0] && p <= r[1] {
			return true
		}
	}
	return false
}

// HealthcheckHosts returns the distinct hosts d's healthchecks reach:
// the domain for relative endpoints, the URL host for absolute ones.
func HealthcheckHosts(d *descriptors.Descriptor) []string {
	var out []string
	add := func(h string) {
		for _, o := range out {
			if strings.EqualFold(o, h) {
				return
			}
		}
		out = append(out, h)
	}
	for _, ep := range d.Healthcheck.Endpoints {
		if strings.HasPrefix(ep, "/") {
			if d.Domain != "" {
				add(d.Domain)
			}
			continue
		}
		if i := strings.Index(ep, "://"); i >= 0 {
			host := ep[i+3:]
			if j := strings.IndexAny(host, "/?#"); j >= 0 {
				host = host[:j]
			}
			if h, _, err := net.SplitHostPort(host); err == nil {
				host = h
			}
			add(strings.Trim(host, "[]"))
		}
	}
	return out
}

func isLinkLocal(host string) bool {
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	return ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast()
}

// String is for debugging.
func (r Reason) String() string {
	s := r.Rule + ": " + r.Message
	if r.Field != "" {
		s += " [" + r.Field + "]"
	}
	if r.Commit != "" {
		s += " @" + short(r.Commit)
	}
	return s
}
