package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/gitmon-dev/gitmon/internal/redact"
	"github.com/gitmon-dev/gitmon/policy"
)

// String renders a readable summary of the effective config, as
// `validate` may print it. Secrets show as "<secret>" with where they
// come from; URLs go through redact.URL.
func (c *Config) String() string {
	if c == nil {
		return "<nil>"
	}
	var b strings.Builder
	line := func(indent int, format string, args ...any) {
		b.WriteString(strings.Repeat("  ", indent))
		fmt.Fprintf(&b, format, args...)
		b.WriteByte('\n')
	}
	line(0, "config: %s", c.File)
	line(0, "listen: %s", c.Listen)
	line(0, "public_url: %s", c.PublicURL)
	line(0, "log: level %s, format %s", c.Log.Level, c.Log.Format)
	line(0, "state: %s", c.State)
	line(0, "poll_interval: %s", c.PollInterval)
	t := c.Tuning
	line(0, "tuning: concurrency %d, shutdown_grace %s, output_cap %s, git_timeout %s, backoff_max %s, object_cache %s",
		t.Concurrency, t.ShutdownGrace, t.OutputCap, t.GitTimeout, t.BackoffMax, t.ObjectCache)
	line(0, "repositories:")
	for _, r := range c.Repositories {
		line(1, "%s: %s", r.Name, redact.URL(r.URL))
		line(2, "descriptors: %s", r.Descriptors)
		if r.Insecure {
			line(2, "insecure: true")
		}
		if r.CAFile != "" {
			line(2, "ca_file: %s", r.CAFile)
		}
		a := r.Auth
		if s := secrets("username", a.Username, "password", a.Password, "ssh_key", a.SSHKey); s != "" {
			line(2, "auth: %s", s)
		}
		if a.KnownHostsFile != "" {
			line(2, "known_hosts_file: %s", a.KnownHostsFile)
		}
		if w := r.Webhook; w != nil {
			line(2, "webhook: provider %s, %s", w.Provider, secrets("secret", w.Secret))
		}
		if s := r.SCM; s != nil {
			line(2, "scm: project %s", s.Project)
		}
	}
	line(0, "environments:")
	for _, e := range c.Environments {
		line(1, "%s: branch %s, initial %s", e.Name, e.Branch, e.Initial)
		line(2, "release: %s", list(e.Release))
		if len(e.Remove) > 0 {
			line(2, "remove: %s", list(e.Remove))
		}
		if n := e.Notifications; len(n.Slack)+len(n.Emails) > 0 {
			line(2, "notifications: slack %s, emails %s", list(n.Slack), list(n.Emails))
		}
		noUpstream := ""
		if e.Name == c.Environments[0].Name {
			noUpstream = "none: listed first"
		}
		writePolicy(&b, 2, &e.Policy, noUpstream)
	}
	line(0, "pipelines:")
	names := make([]string, 0, len(c.Pipelines))
	for n := range c.Pipelines {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := c.Pipelines[n]
		var parts []string
		switch p.Runner {
		case RunnerExec:
			parts = append(parts, "command "+quoted(p.Command))
			if len(p.Env) > 0 {
				parts = append(parts, "env "+list(p.Env))
			}
		case RunnerJenkins:
			parts = append(parts, "job "+p.Job)
		case RunnerPlugin:
			if p.Path != "" {
				parts = append(parts, "path "+p.Path)
			} else {
				parts = append(parts, "looked up in plugin_dir")
			}
			if p.SHA256 != "" {
				parts = append(parts, "sha256 "+p.SHA256)
			}
		}
		parts = append(parts, "timeout "+p.Timeout.String())
		if len(p.Params) > 0 {
			parts = append(parts, fmt.Sprintf("%d params", len(p.Params)))
		}
		line(1, "%s: %s, %s", n, p.Runner, strings.Join(parts, ", "))
	}
	line(0, "plugin_dir: %s", c.PluginDir)
	writePolicy(&b, 0, &c.Policy, "the environment listed just before")
	line(0, "integrations:")
	in := c.Integrations
	if in.Jira == nil && in.Slack == nil && in.Jenkins == nil && in.SMTP == nil && in.SCM == nil {
		line(1, "none")
	}
	if j := in.Jira; j != nil {
		line(1, "jira: %s, %s", redact.URL(j.URL), secrets("user", j.User, "token", j.Token))
		if ft := j.FailureTickets; ft != nil {
			line(2, "failure_tickets: project %s, issue_type %s", ft.Project, ft.IssueType)
		}
	}
	if s := in.Slack; s != nil {
		line(1, "slack: %s, channel %q, %s", redact.URL(s.APIURL), s.Channel, secrets("token", s.Token))
	}
	if j := in.Jenkins; j != nil {
		line(1, "jenkins: %s, %s", redact.URL(j.URL), secrets("user", j.User, "token", j.Token))
	}
	if s := in.SMTP; s != nil {
		line(1, "smtp: %s:%d, from %s, %s", s.Host, s.Port, s.From, secrets("user", s.User, "password", s.Password))
	}
	if s := in.SCM; s != nil {
		line(1, "scm: %s %s, %s, pull_requests %t", s.Provider, redact.URL(s.URL), secrets("token", s.Token), s.PullRequests)
	}
	return b.String()
}

// writePolicy renders p; noFrom words an empty promotion.from.
func writePolicy(b *strings.Builder, indent int, p *policy.Config, noFrom string) {
	pad := strings.Repeat("  ", indent)
	allow := func(l *[]string) string {
		if l == nil {
			return "no limit"
		}
		if len(*l) == 0 {
			return "nothing allowed"
		}
		return list(*l)
	}
	fmt.Fprintf(b, "%spolicy: committers %s (%s), force_push %s, merges %s, skip_markers %s, email_domains %s\n",
		pad, allow(p.Committers), p.Identity, p.ForcePush, p.Merges, quoted(p.SkipMarkers), allow(p.EmailDomains))
	j := p.Jira
	fmt.Fprintf(b, "%s  jira: required %t, projects %s, statuses %s, unavailable_timeout %s\n",
		pad, j.Required, list(j.Projects), quoted(j.Statuses), j.UnavailableTimeout)
	ch := p.Changes
	quantity := func(s fmt.Stringer) string {
		if v := s.String(); v != "" {
			return v
		}
		return "no limit"
	}
	fmt.Fprintf(b, "%s  changes: allowed_ports %s, max_cpu %s, max_memory %s, allow_downgrade %t, allow_delete %t, healthcheck_hosts %s\n",
		pad, allow(ch.AllowedPorts), quantity(ch.MaxCPU), quantity(ch.MaxMemory), ch.AllowDowngrade, ch.AllowDelete, allow(ch.HealthcheckHosts))
	s := p.Signatures
	fmt.Fprintf(b, "%s  signatures: required %t, allowed_signers_file %s, gpg_keyring_file %s\n",
		pad, s.Required, orNone(s.AllowedSignersFile), orNone(s.GPGKeyringFile))
	pr := p.Promotion
	from := pr.From
	if from == "" {
		from = "(" + noFrom + ")"
	}
	fmt.Fprintf(b, "%s  promotion: required %t, from %s, fields %s, soak %s, wait %s\n",
		pad, pr.Required, from, list(pr.Fields), pr.Soak, pr.Wait)
	if len(p.Windows) == 0 {
		fmt.Fprintf(b, "%s  windows: none (always open)\n", pad)
	} else {
		fmt.Fprintf(b, "%s  windows:\n", pad)
		for _, w := range p.Windows {
			fmt.Fprintf(b, "%s    %s\n", pad, w)
		}
	}
	fmt.Fprintf(b, "%s  break_glass: jira_labels %s\n", pad, quoted(p.BreakGlass.JiraLabels))
}

// secrets renders name/secret pairs as "name <secret> (env X)".
func secrets(pairs ...any) string {
	var parts []string
	for i := 0; i+1 < len(pairs); i += 2 {
		name, s := pairs[i].(string), pairs[i+1].(Secret)
		switch {
		case s.Env != "":
			parts = append(parts, fmt.Sprintf("%s %s (env %s)", name, s, s.Env))
		case s.File != "":
			parts = append(parts, fmt.Sprintf("%s %s (file %s)", name, s, s.File))
		case !s.IsZero():
			parts = append(parts, fmt.Sprintf("%s %s", name, s))
		}
	}
	return strings.Join(parts, ", ")
}

func list(s []string) string { return "[" + strings.Join(s, ", ") + "]" }

func quoted(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = strconv.Quote(v)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
