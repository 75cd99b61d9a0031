// Package config loads and validates gitmon.yaml, the daemon's config file
// (SPEC §3). It owns the contract between the operator and every other
// package: defaults, strict decoding, per-environment policy merging,
// secret resolution and the checks that make `validate` and `serve` list
// every problem at once, each with its file, line, column and key path.
//
// Loading goes defaults → strict parse (yamlx) → decode → validate, and
// relative paths resolve against the config file's folder. Secrets are read
// from environment variables or files named by *_env/*_file keys, never
// written inline, and never print.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gitmon-dev/gitmon/internal/trust"
	"github.com/gitmon-dev/gitmon/internal/yamlx"
	"github.com/gitmon-dev/gitmon/policy"
)

// MaxSize is the largest config file, or secret file, that is read.
const MaxSize = 1 << 20

// Defaults of SPEC §3.
const (
	DefaultListen        = "127.0.0.1:8080"
	DefaultState         = "./gitmon-state"
	DefaultPollInterval  = 30 * time.Second
	DefaultConcurrency   = 8
	DefaultShutdownGrace = 30 * time.Second
	DefaultOutputCap     = 64 * KiB
	DefaultGitTimeout    = 60 * time.Second
	DefaultBackoffMax    = 5 * time.Minute
	DefaultObjectCache   = 64 * MiB
	DefaultDescriptors   = "services/*.yaml"
	DefaultPluginDir     = "./plugins"
	DefaultTimeout       = 30 * time.Minute
	DefaultSlackAPIURL   = "https://slack.com/api/"
	DefaultSMTPPort      = 587
)

// Runner names a pipeline may use.
const (
	RunnerExec    = "exec"
	RunnerHTTP    = "http"
	RunnerJenkins = "jenkins"
	RunnerPlugin  = "plugin"
)

// Values of Environment.Initial.
const (
	InitialBaseline = "baseline"
	InitialDeploy   = "deploy"
)

// Mode says how strict loading is about the machine it runs on.
type Mode int

const (
	// ModeValidate is `gitmon validate`: an unset *_env variable or an
	// unreadable file is a warning, since CI rarely holds production
	// secrets.
	ModeValidate Mode = iota
	// ModeServe is `gitmon serve`: they are errors.
	ModeServe
)

// Options tune Load and Parse. The zero value validates against the real
// environment and file system.
type Options struct {
	Mode Mode
	// LookupEnv reads *_env variables (default: os.LookupEnv).
	LookupEnv func(string) (string, bool)
	// ReadFile reads the config and the *_file secrets (default: reads at
	// most MaxSize bytes from the file system).
	ReadFile func(string) ([]byte, error)
}

func (o Options) withDefaults() Options {
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	if o.ReadFile == nil {
		o.ReadFile = readFileLimited
	}
	return o
}

// readFileLimited is os.ReadFile that refuses files over MaxSize, so a
// secret file pointing at /dev/zero cannot exhaust memory.
func readFileLimited(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return yamlx.ReadLimited(f, MaxSize)
}

// Warnings are problems that do not stop gitmon, placed like errors.
type Warnings []*yamlx.Error

// String renders one warning a line.
func (w Warnings) String() string {
	parts := make([]string, len(w))
	for i, e := range w {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Config is a loaded gitmon.yaml with defaults applied, relative paths
// made absolute, policies merged and secrets resolved.
type Config struct {
	File string // the config file, as given to Load
	Dir  string // its folder, absolute; relative paths resolve against it

	Listen string
	// PublicURL is how people reach the dashboard, without a trailing
	// slash: links in Slack, JIRA and SCM statuses start with it
	// (default: http://<listen>).
	PublicURL    string
	Log          Log
	State        string // an absolute folder
	PollInterval time.Duration
	Tuning       Tuning
	Repositories []Repository
	Environments []Environment // in file order: earlier ones feed later ones
	Pipelines    map[string]Pipeline
	PluginDir    string        // absolute
	Policy       policy.Config // the global policy
	Integrations Integrations
	Positions    yamlx.Positions // where each key path of File starts, to place what is found after loading
}

// Tuning holds the optional knobs of SPEC §3.
type Tuning struct {
	Concurrency   int           `yaml:"concurrency"`
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	OutputCap     ByteSize      `yaml:"output_cap"`
	GitTimeout    time.Duration `yaml:"git_timeout"`
	BackoffMax    time.Duration `yaml:"backoff_max"`
	ObjectCache   ByteSize      `yaml:"object_cache"`
}

// Repository is one Git repository holding descriptors.
type Repository struct {
	Name string
	// URL is the repository's address, with a local path made absolute.
	// It never holds credentials; log it through redact.URL anyway.
	URL         string
	Insecure    bool
	CAFile      string // absolute, or ""
	Auth        Auth
	Descriptors string // a glob relative to the repository root
	// Webhook is how the Git host tells gitmon of a push (nil: none;
	// polling alone).
	Webhook *Webhook
	// SCM is the repository's project on integrations.scm, for commit
	// statuses and pull-request checks (nil: none).
	SCM *RepositorySCM
}

// Webhook is a repository's webhook (SPEC §8): which host signs the
// deliveries, and the shared secret they are checked with.
type Webhook struct {
	Provider string // one of WebhookProviders
	Secret   Secret
}

// WebhookProviders are the webhook providers gitmon checks deliveries of.
var WebhookProviders = []string{"github", "gitlab", "gitea", "bitbucket", "generic"}

// Auth is how gitmon authenticates to a repository: a username and
// password (or token) for HTTPS, or an SSH key for ssh:// and scp-like
// URLs.
type Auth struct {
	Username Secret
	Password Secret
	// SSHKey is read from ssh_key_file; its File is the key's path.
	SSHKey         Secret
	KnownHostsFile string // absolute, or ""
}

// Environment is one environment branch and what runs on it.
type Environment struct {
	Name          string
	Branch        string
	Release       []string // pipeline names, in order
	Notifications Notifications
	Remove        []string // pipeline names run when a descriptor is deleted
	Initial       string   // InitialBaseline or InitialDeploy
	// Policy is the global policy with this environment's override
	// merged in.
	Policy policy.Config
	// Keys are the trusted keys of Policy.Signatures, parsed; nil when
	// no trust file is set.
	Keys *trust.Keys
}

// Notifications are an environment's default recipients.
type Notifications struct {
	Slack  []string
	Emails []string
}

// Pipeline is one generic, parametrised job.
type Pipeline struct {
	Name    string
	Runner  string // one of the Runner* constants
	Command []string
	Timeout time.Duration
	Env     []string // variables passed through to exec commands
	Job     string   // jenkins
	Path    string   // plugin binary, absolute, or "" to look it up in PluginDir
	SHA256  string   // plugin checksum, lower-case hex, or ""
	Params  map[string]any
}

// Integrations are the external services gitmon talks to. A nil field is
// not configured.
type Integrations struct {
	Jira    *Jira
	Slack   *Slack
	Jenkins *Jenkins
	SMTP    *SMTP
	SCM     *SCM
}

// Jira is integrations.jira.
type Jira struct {
	URL            string
	User           Secret
	Token          Secret
	FailureTickets *FailureTickets
}

// FailureTickets says where tickets for failed releases are opened.
type FailureTickets struct {
	Project   string
	IssueType string
}

// Slack is integrations.slack.
type Slack struct {
	Token   Secret
	Channel string
	APIURL  string
}

// Jenkins is integrations.jenkins.
type Jenkins struct {
	URL   string
	User  Secret
	Token Secret
}

// SMTP is integrations.smtp.
type SMTP struct {
	Host     string
	Port     int
	From     string
	User     Secret
	Password Secret
}

// Environment returns the environment called name, or nil.
func (c *Config) Environment(name string) *Environment {
	for i := range c.Environments {
		if c.Environments[i].Name == name {
			return &c.Environments[i]
		}
	}
	return nil
}

// Repository returns the repository called name, or nil.
func (c *Config) Repository(name string) *Repository {
	for i := range c.Repositories {
		if c.Repositories[i].Name == name {
			return &c.Repositories[i]
		}
	}
	return nil
}

// Secrets returns every resolved secret value, longest first, so that
// output can be redacted before it is stored or logged. The lines of a
// multi-line secret, such as an SSH key, are listed on their own too, so
// that part of one is redacted as well.
func (c *Config) Secrets() []string {
	var all []Secret
	for _, r := range c.Repositories {
		all = append(all, r.Auth.Username, r.Auth.Password, r.Auth.SSHKey)
		if r.Webhook != nil {
			all = append(all, r.Webhook.Secret)
		}
	}
	in := c.Integrations
	if in.Jira != nil {
		all = append(all, in.Jira.User, in.Jira.Token)
	}
	if in.Slack != nil {
		all = append(all, in.Slack.Token)
	}
	if in.Jenkins != nil {
		all = append(all, in.Jenkins.User, in.Jenkins.Token)
	}
	if in.SMTP != nil {
		all = append(all, in.SMTP.User, in.SMTP.Password)
	}
	if in.SCM != nil {
		all = append(all, in.SCM.Token)
	}
	seen := map[string]bool{}
	var out []string
	add := func(v string) {
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	for _, s := range all {
		v := s.Value()
		add(v)
		if strings.Contains(v, "\n") {
			for _, line := range strings.Split(v, "\n") {
				if line = strings.TrimSpace(line); len(line) >= minSecretLine {
					add(line)
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if len(out[i]) != len(out[j]) {
			return len(out[i]) > len(out[j])
		}
		return out[i] < out[j]
	})
	return out
}

// minSecretLine is the shortest line of a multi-line secret that
// Secrets lists on its own: shorter ones would redact ordinary text.
const minSecretLine = 8

// Load reads the config file at path, at most MaxSize bytes, and parses
// it with Parse.
func Load(path string, opts Options) (*Config, Warnings, error) {
	opts = opts.withDefaults()
	data, err := opts.ReadFile(path)
	if err == nil && len(data) > MaxSize {
		err = fmt.Errorf("%w: over %s", yamlx.ErrTooLarge, yamlx.FormatBytes(MaxSize))
	}
	if err != nil {
		msg := "cannot read the config file: " + describeReadError(err)
		return nil, nil, yamlx.Errors{{File: path, Msg: msg, Err: err}}
	}
	return Parse(path, data, opts)
}

// describeReadError words a file error without repeating the path.
func describeReadError(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no such file"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	case errors.Is(err, yamlx.ErrTooLarge):
		return fmt.Sprintf("larger than %s", yamlx.FormatBytes(MaxSize))
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Parse decodes and validates data, the content of the config file at
// path. path names the file in errors, and its folder is where relative
// paths resolve.
//
// The error, if any, is a yamlx.Errors list naming every problem found,
// each with the file, line, column and key path. Warnings are returned
// even when there are errors.
func Parse(path string, data []byte, opts Options) (*Config, Warnings, error) {
	opts = opts.withDefaults()
	root, err := yamlx.Parse(data, yamlx.Limits{MaxBytes: MaxSize, MaxDepth: 64, MaxAliasNodes: 10000, MaxTokens: 100000})
	if err != nil {
		return nil, nil, yamlx.WithFile(err, path)
	}
	dir := filepath.Dir(path)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	l := &loader{file: path, dir: dir, opts: opts, pos: yamlx.Positions{}, inline: map[yamlx.Pos]bool{}, inlineBlocks: map[string]bool{}}
	cfg := l.load(root)
	errs := dedupe(l.errs)
	warns := Warnings(sortErrors(dedupe(yamlx.Errors(l.warns))))
	for _, w := range warns {
		w.File = path
	}
	if len(errs) > 0 {
		return nil, warns, yamlx.WithFile(errs.Err(), path)
	}
	cfg.Positions = l.pos
	return cfg, warns, nil
}
