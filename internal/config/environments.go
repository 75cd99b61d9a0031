package config

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/gitmon-dev/gitmon/internal/yamlx"
	"github.com/gitmon-dev/gitmon/policy"
	yaml "go.yaml.in/yaml/v3"
)

// environments builds the environments and the effective policies: the
// global one, and each environment's, merged at the node level (see
// mergePolicy) and then decoded onto the defaults, so that every problem
// keeps the line of the node its value came from.
func (l *loader) environments(globalNode *yaml.Node, raws []rawEnvironment, pipes map[string]Pipeline) (policy.Config, []Environment) {
	g := resolve(globalNode)
	if g != nil && isNull(g) {
		g = nil
	}
	l.checkAllowlistNulls(g, "policy")
	global := policy.DefaultConfig()
	if g != nil {
		yamlx.DecodeInto(g, "policy", &global, l.pos, &l.errs)
	}
	l.policyPaths(&global)

	if len(raws) == 0 {
		if l.has("environments") {
			l.errorf("environments", "at least one environment is needed")
		} else {
			l.fileErrorf("environments: at least one environment is needed")
		}
	}
	names := map[string]int{}
	branches := map[string]int{}
	out := make([]Environment, 0, len(raws))
	for i, r := range raws {
		p := yamlx.Index("environments", i)
		env := Environment{
			Name:          r.Name,
			Branch:        r.Branch,
			Remove:        r.Remove,
			Initial:       r.Initial,
			Notifications: Notifications{Slack: r.Notifications.Slack, Emails: r.Notifications.Emails},
		}
		l.uniqueName(p, "environments", "an environment", r.Name, i, names)
		if env.Branch == "" {
			env.Branch = env.Name
		} else if msg := checkBranch(env.Branch); msg != "" {
			l.errorf(yamlx.Join(p, "branch"), "%s", msg)
		}
		if env.Branch != "" {
			if j, dup := branches[env.Branch]; dup {
				l.errorf(yamlx.Join(p, "branch"), "branch %q is already used by environments[%d]", env.Branch, j)
			} else {
				branches[env.Branch] = i
			}
		}
		if r.Release == nil {
			l.errorf(p, "an environment needs a release: the pipelines to run for a change (write release: [] to run none)")
		} else {
			env.Release = *r.Release
			l.pipelineRefs(yamlx.Join(p, "release"), env.Release, pipes)
		}
		l.pipelineRefs(yamlx.Join(p, "remove"), env.Remove, pipes)
		switch env.Initial {
		case "":
			env.Initial = InitialBaseline
		case InitialBaseline, InitialDeploy:
		default:
			l.errorf(yamlx.Join(p, "initial"), "%q must be baseline or deploy", env.Initial)
		}
		for j, e := range env.Notifications.Emails {
			if !validEmail(e) {
				l.errorf(yamlx.Index(yamlx.Join(p, "notifications.emails"), j), "%q is not a plain e-mail address", e)
			}
		}
		for j, c := range env.Notifications.Slack {
			if !validChannel(c) {
				l.errorf(yamlx.Index(yamlx.Join(p, "notifications.slack"), j), "%q is not a Slack channel (such as #deploys)", c)
			}
		}

		en := resolve(r.Policy)
		if en != nil && isNull(en) {
			en = nil
		}
		pp := yamlx.Join(p, "policy")
		l.checkAllowlistNulls(en, pp)
		env.Policy = policy.DefaultConfig()
		if merged := mergePolicy(g, en); merged != nil {
			yamlx.DecodeInto(merged, pp, &env.Policy, l.pos, &l.errs)
		}
		l.policyPaths(&env.Policy)
		out = append(out, env)
	}
	l.upstreams(out, names)
	return global, out
}

// upstreams settles each environment's promotion.from (SPEC §3): by
// default the environment listed just before; otherwise one listed
// before it, so that promotion only flows forward and never loops. names
// maps the valid environment names to their index.
func (l *loader) upstreams(envs []Environment, names map[string]int) {
	for i := range envs {
		pr := &envs[i].Policy.Promotion
		p := yamlx.Join(yamlx.Index("environments", i), "policy.promotion")
		if pr.From == "" {
			if i > 0 {
				pr.From = envs[i-1].Name
			} else if pr.Required {
				l.errorf(yamlx.Join(p, "required"), "%q is listed first, so it has no upstream to promote from: require promotion on later environments", envs[i].Name)
			}
			continue
		}
		j, ok := names[pr.From]
		switch {
		case !ok:
			l.errorf(yamlx.Join(p, "from"), "no environment is named %q", pr.From)
		case j == i:
			l.errorf(yamlx.Join(p, "from"), "%q cannot promote from itself", pr.From)
		case j > i:
			l.errorf(yamlx.Join(p, "from"), "%q is listed after %q: promotion goes from earlier environments to later ones", pr.From, envs[i].Name)
		}
	}
}

// policyPaths resolves the policy's file paths against the config's
// folder.
func (l *loader) policyPaths(pc *policy.Config) {
	pc.Signatures.AllowedSignersFile = l.abs(pc.Signatures.AllowedSignersFile)
	pc.Signatures.GPGKeyringFile = l.abs(pc.Signatures.GPGKeyringFile)
}

// pipelineRefs checks that every name in list is a defined pipeline,
// listed once.
func (l *loader) pipelineRefs(path string, list []string, pipes map[string]Pipeline) {
	seen := map[string]bool{}
	for i, name := range list {
		ip := yamlx.Index(path, i)
		if _, ok := pipes[name]; !ok {
			l.errorf(ip, "no pipeline is named %q", name)
		} else if seen[name] {
			l.errorf(ip, "pipeline %q is listed twice", name)
		}
		seen[name] = true
	}
}

// mergePolicy returns the policy node an environment sees: base with over
// merged in key by key (SPEC §3 "Policy merging"). Through mappings the
// merge recurses; an absent or null key inherits; a present scalar or list
// replaces, and lists never append. Aliases are resolved first. The result
// shares the input's key and value nodes, so their lines are kept; new
// mapping nodes take the position of the override. Neither input is
// changed.
func mergePolicy(base, over *yaml.Node) *yaml.Node {
	base, over = resolve(base), resolve(over)
	if over == nil || isNull(over) {
		return base
	}
	if base == nil || isNull(base) || base.Kind != yaml.MappingNode || over.Kind != yaml.MappingNode {
		return over
	}
	overValue := make(map[string]int, len(over.Content)/2)
	for i := 0; i+1 < len(over.Content); i += 2 {
		overValue[over.Content[i].Value] = i
	}
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: over.Line, Column: over.Column}
	used := make(map[int]bool, len(overValue))
	for i := 0; i+1 < len(base.Content); i += 2 {
		k, v := base.Content[i], base.Content[i+1]
		if j, ok := overValue[k.Value]; ok {
			used[j] = true
			ov := over.Content[j+1]
			if r := resolve(ov); r == nil || isNull(r) {
				out.Content = append(out.Content, k, v)
			} else {
				out.Content = append(out.Content, over.Content[j], mergePolicy(v, ov))
			}
			continue
		}
		out.Content = append(out.Content, k, v)
	}
	for i := 0; i+1 < len(over.Content); i += 2 {
		if !used[i] {
			out.Content = append(out.Content, over.Content[i], over.Content[i+1])
		}
	}
	return out
}

// allowlists are the policy keys where absent means "no limit" and []
// means "nothing allowed".
var allowlists = []string{"committers", "email_domains", "changes.allowed_ports", "changes.healthcheck_hosts"}

// checkAllowlistNulls rejects an allowlist written with no value, such
// as "committers:". YAML reads it as null, which would mean "no limit",
// while its writer most likely meant "nobody": it fails closed instead.
func (l *loader) checkAllowlistNulls(n *yaml.Node, path string) {
	for _, key := range allowlists {
		v := lookup(n, key)
		if v == nil || !isNull(v) {
			continue
		}
		l.errs = append(l.errs, &yamlx.Error{Line: v.Line, Column: v.Column, Path: yamlx.Join(path, key),
			Msg: "an empty value is ambiguous: write [] to allow nothing, or leave the key out for no limit"})
	}
}

// lookup returns the node at a dotted key path under n, or nil.
func lookup(n *yaml.Node, dotted string) *yaml.Node {
	for _, key := range strings.Split(dotted, ".") {
		n = resolve(n)
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
				break
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return resolve(n)
}

// policyRules checks each effective policy (the global one and every
// environment's) and the features it asks for.
func (l *loader) policyRules(cfg *Config) {
	check := func(prefix string, pc *policy.Config) {
		for _, pr := range pc.Check() {
			if p := yamlx.Join(prefix, pr.Path); !l.failed(p) {
				l.errorf(p, "%s", pr.Msg)
			}
		}
		if pc.Jira.Required && cfg.Integrations.Jira == nil {
			l.errorf(yamlx.Join(prefix, "jira.required"), "jira.required is true, which needs integrations.jira to check tickets")
		}
		if len(pc.BreakGlass.JiraLabels) > 0 && cfg.Integrations.Jira == nil {
			l.warnf(yamlx.Join(prefix, "break_glass.jira_labels"), "break-glass labels are set but integrations.jira is not: no ticket can be checked for them, so nothing breaks the glass")
		}
	}
	check("policy", &cfg.Policy)
	l.trustKeys("policy", &cfg.Policy)
	anyCommitters := cfg.Policy.Committers != nil
	for i := range cfg.Environments {
		env := &cfg.Environments[i]
		check(yamlx.Join(yamlx.Index("environments", i), "policy"), &env.Policy)
		env.Keys = l.trustKeys(yamlx.Join(yamlx.Index("environments", i), "policy"), &env.Policy)
		anyCommitters = anyCommitters || env.Policy.Committers != nil
	}
	if !anyCommitters {
		w := &yamlx.Error{Msg: "no committers allowlist: every committer is accepted"}
		if l.has("policy") {
			w = l.pos.Errorf("policy", "%s", w.Msg)
		}
		l.warns = append(l.warns, w)
	}
}

// usage warns about parts of the config that nothing uses.
func (l *loader) usage(cfg *Config) {
	used := map[string]bool{}
	for _, e := range cfg.Environments {
		for _, n := range e.Release {
			used[n] = true
		}
		for _, n := range e.Remove {
			used[n] = true
		}
	}
	for name := range cfg.Pipelines {
		if !used[name] {
			l.warnf(yamlx.Join("pipelines", name), "pipeline %q is not used by any environment", name)
		}
	}
	for i, e := range cfg.Environments {
		p := yamlx.Join(yamlx.Index("environments", i), "notifications")
		if len(e.Notifications.Slack) > 0 && cfg.Integrations.Slack == nil {
			l.warnf(yamlx.Join(p, "slack"), "Slack recipients are set but integrations.slack is not: nothing is sent to them")
		}
		if len(e.Notifications.Emails) > 0 && cfg.Integrations.SMTP == nil {
			l.warnf(yamlx.Join(p, "emails"), "e-mail recipients are set but integrations.smtp is not: nothing is sent to them")
		}
	}
}

// dedupe drops problems reported twice. The same policy node is decoded
// and checked once globally and once per environment that inherits it;
// those reports share a position and a message and differ only in the
// prefix of their path, and the first (global) one is kept.
func dedupe(es yamlx.Errors) yamlx.Errors {
	type key struct {
		line, col int
		path, msg string
	}
	seen := map[key]bool{}
	out := es[:0:0]
	for _, e := range es {
		k := key{e.Line, e.Column, policyPathRe.ReplaceAllString(e.Path, ""), e.Msg}
		if e.Line > 0 && seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, e)
	}
	return out
}

var policyPathRe = regexp.MustCompile(`^(environments\[\d+\]\.)?policy(\.|$)`)

// sortErrors orders problems by position, keeping file-level ones first.
func sortErrors(es yamlx.Errors) yamlx.Errors {
	if err := es.Err(); err != nil {
		return yamlx.List(err)
	}
	return es
}

// checkBranch checks a branch name against the rules of
// git check-ref-format that matter here.
func checkBranch(b string) string {
	bad := func(why string) string { return fmt.Sprintf("%q is not a valid branch name: %s", b, why) }
	switch {
	case len(b) > 255:
		return bad("longer than 255 characters")
	case strings.HasPrefix(b, "-") || strings.HasPrefix(b, "/"):
		return bad("it must not start with '-' or '/'")
	case strings.HasSuffix(b, "/") || strings.HasSuffix(b, ".") || strings.HasSuffix(b, ".lock"):
		return bad("it must not end with '/', '.' or '.lock'")
	case strings.Contains(b, "..") || strings.Contains(b, "//") || strings.Contains(b, "@{") || b == "@":
		return bad("it must not contain '..', '//' or '@{', nor be '@'")
	case strings.ContainsFunc(b, func(r rune) bool { return r <= ' ' || r == 0x7f || strings.ContainsRune(`~^:?*[\`, r) }):
		return bad(`it must not contain spaces, control characters or any of ~ ^ : ? * [ \`)
	}
	for _, part := range strings.Split(b, "/") {
		if strings.HasPrefix(part, ".") {
			return bad("no part may start with '.'")
		}
	}
	return ""
}
