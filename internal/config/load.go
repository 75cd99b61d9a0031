package config

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gitmon-dev/gitmon/internal/yamlx"
	"github.com/gitmon-dev/gitmon/policy"
	yaml "go.yaml.in/yaml/v3"
)

// The raw* types are the file's shape, decoded strictly by yamlx. They
// are turned into the public types once defaults, paths and secrets are
// settled. Pointers tell an absent key from a zero value.
type rawConfig struct {
	Listen       string                 `yaml:"listen"`
	PublicURL    string                 `yaml:"public_url"`
	Log          rawLog                 `yaml:"log"`
	State        string                 `yaml:"state"`
	PollInterval *time.Duration         `yaml:"poll_interval"`
	Tuning       Tuning                 `yaml:"tuning"`
	Repositories []rawRepository        `yaml:"repositories"`
	Environments []rawEnvironment       `yaml:"environments"`
	Pipelines    map[string]rawPipeline `yaml:"pipelines"`
	PluginDir    string                 `yaml:"plugin_dir"`
	Policy       *yaml.Node             `yaml:"policy"`
	Integrations rawIntegrations        `yaml:"integrations"`
}

type rawRepository struct {
	Name        string      `yaml:"name"`
	URL         string      `yaml:"url"`
	Insecure    bool        `yaml:"insecure"`
	CAFile      string      `yaml:"ca_file"`
	Auth        rawAuth     `yaml:"auth"`
	Descriptors string      `yaml:"descriptors"`
	Webhook     *rawWebhook `yaml:"webhook"`
	SCM         *rawRepoSCM `yaml:"scm"`
}

type rawWebhook struct {
	Provider   string `yaml:"provider"`
	SecretEnv  string `yaml:"secret_env"`
	SecretFile string `yaml:"secret_file"`
}

type rawAuth struct {
	UsernameEnv    string `yaml:"username_env"`
	UsernameFile   string `yaml:"username_file"`
	PasswordEnv    string `yaml:"password_env"`
	PasswordFile   string `yaml:"password_file"`
	SSHKeyFile     string `yaml:"ssh_key_file"`
	KnownHostsFile string `yaml:"known_hosts_file"`
}

type rawEnvironment struct {
	Name          string           `yaml:"name"`
	Branch        string           `yaml:"branch"`
	Release       *[]string        `yaml:"release"`
	Notifications rawNotifications `yaml:"notifications"`
	Remove        []string         `yaml:"remove"`
	Initial       string           `yaml:"initial"`
	Policy        *yaml.Node       `yaml:"policy"`
}

type rawNotifications struct {
	Slack  []string `yaml:"slack"`
	Emails []string `yaml:"emails"`
}

type rawPipeline struct {
	Runner  string         `yaml:"runner"`
	Command []string       `yaml:"command"`
	Timeout *time.Duration `yaml:"timeout"`
	Env     []string       `yaml:"env"`
	Job     string         `yaml:"job"`
	Path    string         `yaml:"path"`
	SHA256  string         `yaml:"sha256"`
	Params  map[string]any `yaml:"params"`
}

type rawIntegrations struct {
	Jira    *rawJira    `yaml:"jira"`
	Slack   *rawSlack   `yaml:"slack"`
	Jenkins *rawJenkins `yaml:"jenkins"`
	SMTP    *rawSMTP    `yaml:"smtp"`
	SCM     *rawSCM     `yaml:"scm"`
}

type rawJira struct {
	URL            string             `yaml:"url"`
	UserEnv        string             `yaml:"user_env"`
	UserFile       string             `yaml:"user_file"`
	TokenEnv       string             `yaml:"token_env"`
	TokenFile      string             `yaml:"token_file"`
	FailureTickets *rawFailureTickets `yaml:"failure_tickets"`
}

type rawFailureTickets struct {
	Project   string `yaml:"project"`
	IssueType string `yaml:"issue_type"`
}

type rawSlack struct {
	TokenEnv  string `yaml:"token_env"`
	TokenFile string `yaml:"token_file"`
	Channel   string `yaml:"channel"`
	APIURL    string `yaml:"api_url"`
}

type rawJenkins struct {
	URL       string `yaml:"url"`
	UserEnv   string `yaml:"user_env"`
	UserFile  string `yaml:"user_file"`
	TokenEnv  string `yaml:"token_env"`
	TokenFile string `yaml:"token_file"`
}

type rawSMTP struct {
	Host         string `yaml:"host"`
	Port         *int   `yaml:"port"`
	From         string `yaml:"from"`
	UserEnv      string `yaml:"user_env"`
	UserFile     string `yaml:"user_file"`
	PasswordEnv  string `yaml:"password_env"`
	PasswordFile string `yaml:"password_file"`
}

// loader holds the state of one Parse: where things are, and every
// problem found so far.
type loader struct {
	file   string
	dir    string
	opts   Options
	pos    yamlx.Positions
	errs   yamlx.Errors
	warns  Warnings
	inline map[yamlx.Pos]bool // keys already reported as inline secrets
	// inlineBlocks holds the paths of blocks with an inline secret, whose
	// "needs a token" problems would only repeat it.
	inlineBlocks map[string]bool
	// trust are the trust files read so far, by path.
	trust map[string]*trustFile
}

func (l *loader) errorf(path, format string, args ...any) {
	l.errs = append(l.errs, l.pos.Errorf(path, format, args...))
}

func (l *loader) warnf(path, format string, args ...any) {
	l.warns = append(l.warns, l.pos.Errorf(path, format, args...))
}

// machinef reports a problem with the machine rather than the file, such
// as an unset variable: a warning when validating, an error when serving.
func (l *loader) machinef(path, format string, args ...any) {
	if l.opts.Mode == ModeServe {
		l.errorf(path, format, args...)
	} else {
		l.warnf(path, format, args...)
	}
}

// fileErrorf reports a problem that no key path locates.
func (l *loader) fileErrorf(format string, args ...any) {
	l.errs = append(l.errs, &yamlx.Error{Msg: fmt.Sprintf(format, args...)})
}

// failed reports whether a problem is already reported at path, such as
// a value the decoder could not read, so that checks of the value that
// follow do not pile up.
func (l *loader) failed(path string) bool {
	for _, e := range l.errs {
		if e.Path == path {
			return true
		}
	}
	return false
}

// has reports whether the file holds path (possibly as null).
func (l *loader) has(path string) bool {
	_, ok := l.pos[path]
	return ok
}

func (l *loader) load(root *yaml.Node) *Config {
	if n := resolve(root); root != nil && (n == nil || n.Kind != yaml.MappingNode) {
		if n == nil {
			n = root
		}
		l.errs = append(l.errs, &yamlx.Error{Line: n.Line, Column: n.Column, Msg: "the config must be a mapping of keys to values"})
		return nil
	}
	raw := rawConfig{Tuning: Tuning{
		Concurrency:   DefaultConcurrency,
		ShutdownGrace: DefaultShutdownGrace,
		OutputCap:     DefaultOutputCap,
		GitTimeout:    DefaultGitTimeout,
		BackoffMax:    DefaultBackoffMax,
		ObjectCache:   DefaultObjectCache,
	}}
	if root != nil {
		l.findInlineSecrets(root)
	}
	pos, err := yamlx.Decode(root, &raw)
	for k, v := range pos {
		l.pos[k] = v
	}
	for _, e := range yamlx.List(err) {
		if !l.inline[yamlx.Pos{Line: e.Line, Column: e.Column}] {
			l.errs = append(l.errs, e)
		}
	}

	cfg := &Config{File: l.file, Dir: l.dir}
	l.top(raw, cfg)
	cfg.PublicURL = l.publicURL(raw.PublicURL, cfg.Listen)
	cfg.Log = l.log(raw.Log)
	cfg.Pipelines = l.pipelines(raw.Pipelines, raw.Integrations.Jenkins != nil)
	cfg.Integrations = l.integrations(raw.Integrations)
	cfg.Repositories = l.repositories(raw.Repositories)
	l.repositorySCM(raw.Repositories, cfg)
	cfg.Policy, cfg.Environments = l.environments(raw.Policy, raw.Environments, cfg.Pipelines)
	l.policyRules(cfg)
	l.usage(cfg)
	return cfg
}

// top settles the scalar top-level keys and tuning.
func (l *loader) top(raw rawConfig, cfg *Config) {
	cfg.Listen = raw.Listen
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	} else if msg := checkListen(cfg.Listen); msg != "" {
		l.errorf("listen", "%s", msg)
	}

	state := raw.State
	if state == "" {
		state = DefaultState
	}
	if i := strings.Index(state, "://"); i >= 0 {
		switch scheme := strings.ToLower(state[:i]); scheme {
		case "postgres", "postgresql":
			// Never echo the URL: it usually holds a password.
			l.errorf("state", "postgres state is not available yet; use a folder (serve refuses to start with a postgres:// state)")
		default:
			l.errorf("state", "must be a folder (a %s:// URL is not supported)", sanitizeScheme(scheme))
		}
	} else {
		cfg.State = l.abs(state)
	}

	cfg.PollInterval = DefaultPollInterval
	if raw.PollInterval != nil {
		cfg.PollInterval = *raw.PollInterval
		if cfg.PollInterval < 100*time.Millisecond && !l.failed("poll_interval") {
			l.errorf("poll_interval", "%s is too short: at least 100ms", cfg.PollInterval)
		}
	}

	t := raw.Tuning
	if t.Concurrency < 1 || t.Concurrency > 1024 {
		l.errorf("tuning.concurrency", "%d is out of range (1 to 1024)", t.Concurrency)
	}
	if t.OutputCap <= 0 {
		l.errorf("tuning.output_cap", "must be more than zero")
	}
	if t.ObjectCache <= 0 {
		l.errorf("tuning.object_cache", "must be more than zero")
	}
	if t.GitTimeout <= 0 {
		l.errorf("tuning.git_timeout", "must be more than zero")
	}
	if t.BackoffMax <= 0 {
		l.errorf("tuning.backoff_max", "must be more than zero")
	}
	cfg.Tuning = t

	pd := raw.PluginDir
	if pd == "" {
		pd = DefaultPluginDir
	}
	cfg.PluginDir = l.abs(pd)
}

// sanitizeScheme keeps a scheme printable: it is user text.
func sanitizeScheme(s string) string {
	if !schemeRe.MatchString(s) || len(s) > 20 {
		return "non-standard"
	}
	return s
}

var (
	nameRe   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	envVarRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	schemeRe = regexp.MustCompile(`^[a-z][a-z0-9+.-]*$`)
	hexRe    = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
)

const maxNameLen = 100

func validName(s string) bool { return len(s) <= maxNameLen && nameRe.MatchString(s) }

const nameRule = "letters, digits, '.', '_' and '-', starting with a letter or digit, at most 100 characters"

func (l *loader) repositories(raws []rawRepository) []Repository {
	if len(raws) == 0 {
		if l.has("repositories") {
			l.errorf("repositories", "at least one repository is needed")
		} else {
			l.fileErrorf("repositories: at least one repository is needed")
		}
	}
	seen := map[string]int{}
	out := make([]Repository, 0, len(raws))
	for i, r := range raws {
		p := yamlx.Index("repositories", i)
		repo := Repository{Name: r.Name, Insecure: r.Insecure, Descriptors: r.Descriptors}
		l.uniqueName(p, "repositories", "a repository", r.Name, i, seen)
		kind := kindUnknown
		if r.URL == "" {
			l.errorf(yamlx.Join(p, "url"), "a repository needs a url")
		} else {
			var msg string
			repo.URL, kind, msg = checkRepoURL(r.URL, r.Insecure, l.dir)
			if msg != "" {
				l.errorf(yamlx.Join(p, "url"), "%s", msg)
			}
		}
		if r.Insecure && (kind == kindHTTPS || kind == kindSSH || kind == kindFile) {
			l.warnf(yamlx.Join(p, "insecure"), "insecure: true only allows plain http:// and git:// URLs; it never turns off certificate or host key checks")
		}
		if repo.Descriptors == "" {
			repo.Descriptors = DefaultDescriptors
		} else if msg := checkDescriptorsGlob(repo.Descriptors); msg != "" {
			l.errorf(yamlx.Join(p, "descriptors"), "%s", msg)
		}
		if r.CAFile != "" {
			repo.CAFile = l.abs(r.CAFile)
			if kind != kindHTTPS && kind != kindUnknown {
				l.warnf(yamlx.Join(p, "ca_file"), "ca_file is only used for https:// URLs")
			}
			l.checkReadable(yamlx.Join(p, "ca_file"), r.CAFile, repo.CAFile)
		}
		repo.Auth = l.auth(yamlx.Join(p, "auth"), r.Auth, kind)
		if r.Webhook != nil {
			repo.Webhook = l.webhook(yamlx.Join(p, "webhook"), *r.Webhook)
		}
		out = append(out, repo)
	}
	return out
}

func (l *loader) auth(p string, a rawAuth, kind urlKind) Auth {
	var out Auth
	out.Username = l.secret(p, "username", a.UsernameEnv, a.UsernameFile)
	out.Password = l.secret(p, "password", a.PasswordEnv, a.PasswordFile)
	if a.SSHKeyFile != "" {
		out.SSHKey = l.secret(p, "ssh_key", "", a.SSHKeyFile)
	}
	if a.KnownHostsFile != "" {
		out.KnownHostsFile = l.abs(a.KnownHostsFile)
		l.checkReadable(yamlx.Join(p, "known_hosts_file"), a.KnownHostsFile, out.KnownHostsFile)
	}
	basic := !out.Username.IsZero() || !out.Password.IsZero()
	sshKey := a.SSHKeyFile != ""
	switch {
	case basic && sshKey:
		l.errorf(yamlx.Join(p, "ssh_key_file"), "use either a username and password or an SSH key, not both")
	case basic && kind == kindSSH:
		l.errorf(p, "a username and password are for https:// URLs; ssh URLs use ssh_key_file and known_hosts_file")
	case basic && kind == kindHTTP:
		l.errorf(p, "credentials would be sent unencrypted over http://; use https://")
	case basic && (kind == kindGit || kind == kindFile):
		l.errorf(p, "this URL takes no username or password")
	case sshKey && kind != kindSSH && kind != kindUnknown:
		l.errorf(yamlx.Join(p, "ssh_key_file"), "ssh_key_file is only used for ssh:// and scp-like (git@host:path) URLs")
	}
	if !out.Username.IsZero() && out.Password.IsZero() && !l.inlineBlocks[p] {
		l.errorf(yamlx.Join(p, "username_"+out.Username.source()), "a username needs a password or token (password_env or password_file)")
	}
	if sshKey && a.KnownHostsFile == "" {
		l.errorf(yamlx.Join(p, "ssh_key_file"), "an SSH key needs known_hosts_file, so that the server's host key is checked")
	}
	if a.KnownHostsFile != "" && kind != kindSSH && kind != kindUnknown {
		l.errorf(yamlx.Join(p, "known_hosts_file"), "known_hosts_file is only used for ssh:// and scp-like (git@host:path) URLs")
	}
	return out
}

// webhook settles a repository's webhook: a known provider and the
// secret its deliveries are checked with.
func (l *loader) webhook(p string, w rawWebhook) *Webhook {
	out := &Webhook{Provider: w.Provider}
	switch {
	case w.Provider == "":
		l.errorf(p, "a webhook needs a provider (%s)", strings.Join(WebhookProviders, ", "))
	case !slices.Contains(WebhookProviders, w.Provider):
		shown := "this"
		if validName(w.Provider) && len(w.Provider) <= 20 {
			shown = fmt.Sprintf("%q", w.Provider) // user text: echoed only when plain
		}
		l.errorf(yamlx.Join(p, "provider"), "%s is not a webhook provider (%s)", shown, strings.Join(WebhookProviders, ", "))
	}
	out.Secret = l.secret(p, "secret", w.SecretEnv, w.SecretFile)
	if out.Secret.IsZero() && !l.inlineBlocks[p] {
		l.errorf(p, "a webhook needs a secret (secret_env or secret_file): deliveries are checked with it")
	}
	return out
}

// checkDescriptorsGlob checks a repository's descriptors glob.
func checkDescriptorsGlob(g string) string {
	if !validGlob(g) {
		return fmt.Sprintf("%q is not a valid glob", g)
	}
	if strings.HasPrefix(g, "/") || strings.Contains(g, `\`) {
		return fmt.Sprintf("%q must be a path relative to the repository root, with / separators", g)
	}
	for _, part := range strings.Split(g, "/") {
		if part == ".." || part == "" || part == "." {
			return fmt.Sprintf("%q must be a clean path inside the repository (no empty, . or .. parts)", g)
		}
	}
	return ""
}

func (l *loader) pipelines(raws map[string]rawPipeline, haveJenkins bool) map[string]Pipeline {
	out := make(map[string]Pipeline, len(raws))
	names := make([]string, 0, len(raws))
	for name := range raws {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		r := raws[name]
		p := yamlx.Join("pipelines", name)
		if !validName(name) {
			l.errorf(p, "%q is not a valid pipeline name (%s)", name, nameRule)
		}
		pl := Pipeline{Name: name, Runner: r.Runner, Command: r.Command, Env: r.Env, Job: r.Job, SHA256: strings.ToLower(r.SHA256), Params: r.Params, Timeout: DefaultTimeout}
		if r.Timeout != nil {
			pl.Timeout = *r.Timeout
			if pl.Timeout <= 0 && !l.failed(yamlx.Join(p, "timeout")) {
				l.errorf(yamlx.Join(p, "timeout"), "must be more than zero")
			}
		}
		only := func(key, runner string, set bool) {
			if set && r.Runner != runner {
				l.errorf(yamlx.Join(p, key), "only the %s runner uses %s", runner, key)
			}
		}
		switch r.Runner {
		case "":
			l.errorf(yamlx.Join(p, "runner"), "a pipeline needs a runner (exec, http, jenkins or plugin)")
		case RunnerExec, RunnerHTTP, RunnerJenkins, RunnerPlugin:
			only("command", RunnerExec, len(r.Command) > 0)
			only("env", RunnerExec, len(r.Env) > 0)
			only("job", RunnerJenkins, r.Job != "")
			only("path", RunnerPlugin, r.Path != "")
			only("sha256", RunnerPlugin, r.SHA256 != "")
		default:
			l.errorf(yamlx.Join(p, "runner"), "unknown runner %q (want exec, http, jenkins or plugin)", r.Runner)
		}
		switch r.Runner {
		case RunnerExec:
			if len(r.Command) == 0 {
				l.errorf(yamlx.Join(p, "command"), "the exec runner needs a command, as a list such as [\"./deploy.sh\"]")
			} else if r.Command[0] == "" {
				l.errorf(yamlx.Join(p, "command[0]"), "the program must not be empty")
			} else if strings.Contains(r.Command[0], "/") {
				pl.Command = append([]string{l.abs(r.Command[0])}, r.Command[1:]...)
			}
			for i, v := range r.Env {
				switch {
				case !envVarRe.MatchString(v):
					l.errorf(yamlx.Index(yamlx.Join(p, "env"), i), "%q is not a variable name", v)
				case strings.HasPrefix(v, "GITMON_"):
					l.errorf(yamlx.Index(yamlx.Join(p, "env"), i), "%s: GITMON_ variables are set by gitmon", v)
				}
			}
		case RunnerJenkins:
			if r.Job == "" {
				l.errorf(yamlx.Join(p, "job"), "the jenkins runner needs a job")
			}
			if !haveJenkins {
				l.errorf(yamlx.Join(p, "runner"), "the jenkins runner needs integrations.jenkins")
			}
		case RunnerPlugin:
			if r.Path != "" {
				pl.Path = l.abs(r.Path)
			}
			if r.SHA256 != "" && !hexRe.MatchString(r.SHA256) {
				l.errorf(yamlx.Join(p, "sha256"), "must be 64 hexadecimal digits")
			}
			if r.SHA256 == "" {
				l.warnf(yamlx.Join(p, "runner"), "no sha256: the plugin binary is run without a checksum check")
			}
		}
		out[name] = pl
	}
	return out
}

func (l *loader) integrations(r rawIntegrations) Integrations {
	var out Integrations
	if j := r.Jira; j != nil {
		p := "integrations.jira"
		out.Jira = &Jira{URL: j.URL}
		l.serviceURL(yamlx.Join(p, "url"), j.URL, true)
		out.Jira.User = l.secret(p, "user", j.UserEnv, j.UserFile)
		out.Jira.Token = l.secret(p, "token", j.TokenEnv, j.TokenFile)
		if out.Jira.Token.IsZero() && !l.inlineBlocks[p] {
			l.errorf(p, "jira needs a token (token_env or token_file)")
		}
		if ft := j.FailureTickets; ft != nil {
			fp := yamlx.Join(p, "failure_tickets")
			out.Jira.FailureTickets = &FailureTickets{Project: ft.Project, IssueType: ft.IssueType}
			if !policy.ValidProjectKey(ft.Project) {
				if ft.Project == "" {
					l.errorf(yamlx.Join(fp, "project"), "failure tickets need a project key (such as OPS)")
				} else {
					l.errorf(yamlx.Join(fp, "project"), "%q is not a JIRA project key (such as OPS)", ft.Project)
				}
			}
			if strings.TrimSpace(ft.IssueType) == "" {
				l.errorf(yamlx.Join(fp, "issue_type"), "failure tickets need an issue type (such as Bug)")
			}
		}
	}
	if s := r.Slack; s != nil {
		p := "integrations.slack"
		out.Slack = &Slack{Channel: s.Channel, APIURL: s.APIURL}
		if out.Slack.APIURL == "" {
			out.Slack.APIURL = DefaultSlackAPIURL
		} else {
			l.serviceURL(yamlx.Join(p, "api_url"), s.APIURL, false)
		}
		out.Slack.Token = l.secret(p, "token", s.TokenEnv, s.TokenFile)
		if out.Slack.Token.IsZero() && !l.inlineBlocks[p] {
			l.errorf(p, "slack needs a token (token_env or token_file)")
		}
		if s.Channel != "" && !validChannel(s.Channel) {
			l.errorf(yamlx.Join(p, "channel"), "%q is not a Slack channel (such as #deployments)", s.Channel)
		}
	}
	if j := r.Jenkins; j != nil {
		p := "integrations.jenkins"
		out.Jenkins = &Jenkins{URL: j.URL}
		l.serviceURL(yamlx.Join(p, "url"), j.URL, true)
		out.Jenkins.User = l.secret(p, "user", j.UserEnv, j.UserFile)
		out.Jenkins.Token = l.secret(p, "token", j.TokenEnv, j.TokenFile)
		if out.Jenkins.User.IsZero() != out.Jenkins.Token.IsZero() && !l.inlineBlocks[p] {
			l.errorf(p, "jenkins needs both a user and a token, or neither")
		}
	}
	if s := r.SMTP; s != nil {
		p := "integrations.smtp"
		out.SMTP = &SMTP{Host: s.Host, Port: DefaultSMTPPort, From: s.From}
		if s.Host == "" {
			l.errorf(p, "smtp needs a host")
		} else if !validHost(s.Host) {
			l.errorf(yamlx.Join(p, "host"), "%q is not a host name or IP address", s.Host)
		}
		if s.Port != nil {
			out.SMTP.Port = *s.Port
			if *s.Port < 1 || *s.Port > 65535 {
				l.errorf(yamlx.Join(p, "port"), "%d is not a port number (1 to 65535)", *s.Port)
			}
		}
		if s.From == "" {
			l.errorf(p, "smtp needs a from address")
		} else if !validEmail(s.From) {
			l.errorf(yamlx.Join(p, "from"), "%q is not a plain e-mail address", s.From)
		}
		out.SMTP.User = l.secret(p, "user", s.UserEnv, s.UserFile)
		out.SMTP.Password = l.secret(p, "password", s.PasswordEnv, s.PasswordFile)
		if out.SMTP.User.IsZero() != out.SMTP.Password.IsZero() && !l.inlineBlocks[p] {
			l.errorf(p, "smtp needs both a user and a password, or neither")
		}
	}
	if s := r.SCM; s != nil {
		out.SCM = l.scm(*s)
	}
	return out
}

// serviceURL checks the base URL of an HTTP service gitmon sends a token
// to. required says whether it must be set.
func (l *loader) serviceURL(path, raw string, required bool) {
	if raw == "" {
		if required {
			l.errorf(path, "a url is needed, such as https://service.example.com")
		}
		return
	}
	if msg := checkServiceURL(raw); msg != "" {
		l.errorf(path, "%s", msg)
	}
}

// uniqueName checks the name of list[i] (repositories or environments):
// present, well formed, and not taken by an earlier entry of seen.
func (l *loader) uniqueName(path, list, what, name string, i int, seen map[string]int) {
	p := yamlx.Join(path, "name")
	switch {
	case name == "":
		l.errorf(p, "%s needs a name", what)
	case !validName(name):
		l.errorf(p, "%q is not a valid name (%s)", name, nameRule)
	default:
		if j, dup := seen[name]; dup {
			l.errorf(p, "%q is already the name of %s[%d]", name, list, j)
		} else {
			seen[name] = i
		}
	}
}
