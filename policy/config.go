package policy

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/gitmon-dev/gitmon/descriptors"
)

// Config is the `policy` block of gitmon.yaml (SPEC §3), as one
// environment sees it after the per-environment override is merged in.
//
// Allowlists are pointers: nil means the key is absent (no limit), and a
// pointer to an empty list means nothing is allowed.
type Config struct {
	SkipMarkers  []string    `yaml:"skip_markers"`
	Committers   *[]string   `yaml:"committers"`
	Identity     string      `yaml:"identity"`
	ForcePush    string      `yaml:"force_push"`
	Merges       string      `yaml:"merges"`
	EmailDomains *[]string   `yaml:"email_domains"`
	Jira         JiraConfig  `yaml:"jira"`
	Changes      ChangeRules `yaml:"changes"`
	Signatures   Signatures  `yaml:"signatures"`
	Promotion    Promotion   `yaml:"promotion"`
	Windows      []Window    `yaml:"windows"`
	BreakGlass   BreakGlass  `yaml:"break_glass"`
}

// Promotion is policy.promotion (SPEC §5 step 5): a change that touches
// an artifact field must have succeeded upstream first.
type Promotion struct {
	Required bool `yaml:"required"`
	// From is the upstream environment; the loader fills in the one
	// listed just before when it is empty.
	From string `yaml:"from"`
	// Fields are the artifact: the leaf paths promoted (default: version,
	// image). A field names itself and every leaf under it.
	Fields []string `yaml:"fields"`
	// Soak is how long the artifact must have run upstream since it
	// succeeded there.
	Soak time.Duration `yaml:"soak"`
	// Wait is how long a record may wait for upstream before it is
	// rejected (default: 1h).
	Wait time.Duration `yaml:"wait"`
}

// Window is one entry of policy.windows (SPEC §5 step 6), with Argo CD's
// sync-window semantics: a 5-field cron schedule says when the window
// opens, Duration how long it stays open, in Timezone (default UTC).
type Window struct {
	Kind     string        `yaml:"kind"` // WindowAllow or WindowDeny
	Schedule string        `yaml:"schedule"`
	Duration time.Duration `yaml:"duration"`
	Timezone string        `yaml:"timezone"`
}

// Kinds of a Window.
const (
	WindowAllow = "allow"
	WindowDeny  = "deny"
)

// BreakGlass is policy.break_glass: a record whose ticket passes the jira
// rule and carries one of JiraLabels is not held by windows or freezes.
type BreakGlass struct {
	JiraLabels []string `yaml:"jira_labels"`
}

// JiraConfig is policy.jira.
type JiraConfig struct {
	Required           bool          `yaml:"required"`
	Projects           []string      `yaml:"projects"`
	Statuses           []string      `yaml:"statuses"`
	UnavailableTimeout time.Duration `yaml:"unavailable_timeout"`
	// Approval requires each ticket to be approved (Jira Service
	// Management approvals).
	Approval JiraApproval `yaml:"approval"`
	// JQL, when set, must hold for each ticket: `key = T AND (jql)`.
	JQL string `yaml:"jql"`
}

// JiraApproval is policy.jira.approval.
type JiraApproval struct {
	Required bool `yaml:"required"`
	// FourEyes requires an approver who is neither the committer nor the
	// author of the commit (default true).
	FourEyes bool `yaml:"four_eyes"`
}

// ChangeRules is policy.changes: rules on the requested values of the
// fields a change touches.
type ChangeRules struct {
	AllowedPorts     *[]string            `yaml:"allowed_ports"`
	MaxCPU           descriptors.Quantity `yaml:"max_cpu"`
	MaxMemory        descriptors.Quantity `yaml:"max_memory"`
	AllowDowngrade   bool                 `yaml:"allow_downgrade"`
	AllowDelete      bool                 `yaml:"allow_delete"`
	HealthcheckHosts *[]string            `yaml:"healthcheck_hosts"`
}

// Signatures is policy.signatures (SPEC §5 Signatures): with Required,
// every commit of step 1 must carry a valid signature by a key of the
// files, and its identity must be one of that key's. The loader parses the
// files; the caller verifies each commit and hands Evaluate the outcome
// (Commit.Signature).
type Signatures struct {
	Required           bool   `yaml:"required"`
	AllowedSignersFile string `yaml:"allowed_signers_file"`
	GPGKeyringFile     string `yaml:"gpg_keyring_file"`
}

// Values of Identity and ForcePush.
const (
	IdentityCommitter = "committer"
	IdentityAuthor    = "author"
	ForcePushReject   = "reject"
	ForcePushAllow    = "allow"
	// MergesFirstParent judges a merge by its own message and identity;
	// MergesAll also judges every commit it brings in from its other
	// parents (Commit.MergedIn).
	MergesFirstParent = "first_parent"
	MergesAll         = "all"
)

// DefaultConfig returns the defaults of SPEC §3.
func DefaultConfig() Config {
	return Config{
		SkipMarkers: []string{"skip deployment", "[skip deploy]"},
		Identity:    IdentityCommitter,
		ForcePush:   ForcePushReject,
		Merges:      MergesFirstParent,
		Jira:        JiraConfig{UnavailableTimeout: 10 * time.Minute, Approval: JiraApproval{FourEyes: true}},
		Promotion:   Promotion{Fields: []string{"version", "image"}, Wait: time.Hour},
	}
}

// Problem is one invalid policy setting; Path is relative to the policy
// block, such as "jira.statuses".
type Problem struct {
	Path string
	Msg  string
}

// Check returns every invalid setting in c.
func (c *Config) Check() []Problem {
	var ps []Problem
	bad := func(p, format string, args ...any) {
		ps = append(ps, Problem{Path: p, Msg: fmt.Sprintf(format, args...)})
	}
	for i, m := range c.SkipMarkers {
		if strings.TrimSpace(m) == "" {
			bad(fmt.Sprintf("skip_markers[%d]", i), "must not be empty")
		}
	}
	if c.Identity != IdentityCommitter && c.Identity != IdentityAuthor {
		bad("identity", "%q must be committer or author", c.Identity)
	}
	if c.ForcePush != ForcePushReject && c.ForcePush != ForcePushAllow {
		bad("force_push", "%q must be reject or allow", c.ForcePush)
	}
	if c.Merges != MergesFirstParent && c.Merges != MergesAll {
		bad("merges", "%q must be first_parent or all", c.Merges)
	}
	globs := func(p string, list *[]string) {
		if list == nil {
			return
		}
		for i, g := range *list {
			if g == "" {
				bad(fmt.Sprintf("%s[%d]", p, i), "must not be empty")
			} else if _, err := path.Match(strings.ToLower(g), ""); err != nil {
				bad(fmt.Sprintf("%s[%d]", p, i), "%q is not a valid glob", g)
			}
		}
	}
	globs("committers", c.Committers)
	globs("email_domains", c.EmailDomains)
	globs("changes.healthcheck_hosts", c.Changes.HealthcheckHosts)
	if s := c.Signatures; s.Required && s.AllowedSignersFile == "" && s.GPGKeyringFile == "" {
		bad("signatures.required", "signatures.required is true, so allowed_signers_file or gpg_keyring_file must name the trusted keys")
	}
	if c.Jira.Required && len(c.Jira.Statuses) == 0 {
		bad("jira.statuses", "jira.required is true, so at least one allowed status is needed")
	}
	for i, p := range c.Jira.Projects {
		if !projectRe.MatchString(p) {
			bad(fmt.Sprintf("jira.projects[%d]", i), "%q is not a JIRA project key (such as OPS)", p)
		}
	}
	if c.Jira.UnavailableTimeout <= 0 {
		bad("jira.unavailable_timeout", "must be more than zero")
	}
	if c.Changes.AllowedPorts != nil {
		for i, r := range *c.Changes.AllowedPorts {
			if _, _, err := parsePortRange(r); err != nil {
				bad(fmt.Sprintf("changes.allowed_ports[%d]", i), "%v", err)
			}
		}
	}
	if !c.Changes.MaxCPU.IsZero() && c.Changes.MaxCPU.Sign() == 0 {
		bad("changes.max_cpu", "must be more than zero")
	}
	if !c.Changes.MaxMemory.IsZero() && c.Changes.MaxMemory.Sign() == 0 {
		bad("changes.max_memory", "must be more than zero")
	}
	pr := c.Promotion
	if len(pr.Fields) == 0 {
		bad("promotion.fields", "at least one field is needed: what is promoted (default: version, image)")
	}
	seen := map[string]bool{}
	for i, f := range pr.Fields {
		p := fmt.Sprintf("promotion.fields[%d]", i)
		if msg := checkFieldPath(f); msg != "" {
			bad(p, "%s", msg)
		} else if seen[f] {
			bad(p, "%q is listed twice", f)
		}
		seen[f] = true
	}
	if pr.Soak < 0 {
		bad("promotion.soak", "must not be negative")
	}
	if pr.Wait <= 0 {
		bad("promotion.wait", "must be more than zero")
	}
	_, wps := CompileWindows(c.Windows)
	ps = append(ps, wps...)
	for i, l := range c.BreakGlass.JiraLabels {
		p := fmt.Sprintf("break_glass.jira_labels[%d]", i)
		switch {
		case strings.TrimSpace(l) == "":
			bad(p, "must not be empty")
		case strings.ContainsFunc(l, unicode.IsSpace) || strings.ContainsFunc(l, unicode.IsControl):
			bad(p, "%q: JIRA labels hold no spaces", l)
		}
	}
	return ps
}

// Descriptor fields a promotion field may name: the leaves, and the
// blocks that hold them. params and x- keys take any path below them.
var (
	leafFields = []string{
		descriptors.FieldService, descriptors.FieldVersion, descriptors.FieldImage,
		descriptors.FieldEndpoints, descriptors.FieldScheme, descriptors.FieldRetries, descriptors.FieldInterval,
		descriptors.FieldTimeout, descriptors.FieldInitialDelay, descriptors.FieldDomain, descriptors.FieldPort,
		descriptors.FieldCPU, descriptors.FieldMemory, descriptors.FieldPorts, descriptors.FieldEmails,
		descriptors.FieldSlack, descriptors.FieldMaintainer,
	}
	blockFields = []string{"healthcheck", "resources", "notifications", "params"}
)

// checkFieldPath says what is wrong with f as a field path, or "".
func checkFieldPath(f string) string {
	const examples = "such as version, image, resources.memory, params.chart or x-team"
	switch {
	case f == "":
		return "must not be empty"
	case len(f) > 256:
		return "a field path is at most 256 characters"
	case strings.ContainsFunc(f, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return fmt.Sprintf("%q: a field path holds no spaces", f)
	case slices.Contains(leafFields, f), slices.Contains(blockFields, f):
		return ""
	}
	free := strings.HasPrefix(f, "x-") || strings.HasPrefix(f, "params.") || strings.HasPrefix(f, "params[")
	if !free {
		return fmt.Sprintf("%q is not a descriptor field (%s)", f, examples)
	}
	if strings.HasSuffix(f, ".") || strings.Contains(f, "..") || f == "x-" {
		return fmt.Sprintf("%q has an empty key (%s)", f, examples)
	}
	return ""
}

// parsePortRange reads "443" or "8000-8999".
func parsePortRange(s string) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(strings.TrimSpace(s), "-")
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := lo, error(nil)
	if isRange {
		hi, err2 = strconv.Atoi(strings.TrimSpace(b))
	}
	if err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("%q is not a port or port range (such as 443 or 8000-8999, within 1-65535)", s)
	}
	return lo, hi, nil
}
