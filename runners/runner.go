// Package runners executes an environment's release pipeline for a
// change, stage by stage, and holds the catalog where runners register:
// the built-in exec, http and jenkins runners and the go-plugin runner,
// all behind one Runner interface. It takes plain options (Pipeline, Env),
// not the config's types, and owns the one redactor (Redact, Output).
package runners

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Request is what every stage gets, whatever runs it (SPEC §4).
type Request struct {
	Repository      string
	Environment     string
	Service         string
	Version         string
	PreviousVersion string // the last attempted version; "" on a first deployment
	Commit          string
	Author          string
	Committer       string
	Tickets         []string
	Stage           string
	Action          string // "deploy" or "remove"
	RunID           string // unique per stage run: GITMON_RUN_ID
	// Descriptor is the whole descriptor as JSON (descriptors.Descriptor's
	// MarshalJSON): the requested one, or the last good one for a remove.
	Descriptor json.RawMessage
}

// Result is how a stage ended. A failed stage returns OK false with a
// Message saying why; an error return is for the runner itself breaking
// (it fails the stage too, with the error as the message).
type Result struct {
	OK      bool
	Message string
	URL     string // a link to the run, such as a Jenkins build
}

// Handle lets a runner save what it needs to find a stage again after a
// crash (an exec process group, a Jenkins build URL). Save returns once
// the handle is durable; a runner calls it before it starts waiting.
type Handle interface {
	Save(ctx context.Context, data json.RawMessage) error
}

// Runner runs one stage. Output goes to out, which keeps a capped,
// redacted tail. Run must return promptly once ctx is done, having
// stopped what it started (killed the process group, stopped the build).
//
// Lifecycle: a Factory builds the Runner once per pipeline when the
// daemon starts; Run is called for every stage of that pipeline, possibly
// concurrently for different services; Close, if implemented (Closer),
// runs at shutdown.
type Runner interface {
	Run(ctx context.Context, req *Request, out io.Writer, h Handle) (Result, error)
}

// Recoverer is implemented by runners whose stages leave something
// behind when gitmon dies mid-stage. Recover is called at startup with the
// saved handle of every stage that was running; exec kills the recorded
// process group if it is still the same one (same boot, same start time).
type Recoverer interface {
	Recover(ctx context.Context, handle json.RawMessage) error
}

// Reattacher is implemented by runners that can follow a stage started
// before a restart instead of failing it (a recorded Jenkins build).
type Reattacher interface {
	Reattach(ctx context.Context, req *Request, handle json.RawMessage, out io.Writer) (Result, error)
}

// Closer is implemented by runners holding resources (plugin processes).
type Closer interface {
	Close() error
}

// HealthReporter is implemented by runners that depend on a service which
// may be down, such as a Jenkins server. Health returns nil while the
// runner can run stages, and otherwise why its stages fail; the daemon
// lists failing runners on /readyz. It must be cheap (no network I/O) and
// safe to call concurrently with Run.
type HealthReporter interface {
	Health() error
}

// Runner kinds: the `runner:` values of a pipeline (SPEC §3).
const (
	KindExec    = "exec"
	KindHTTP    = "http"
	KindJenkins = "jenkins"
	KindPlugin  = "plugin"
)

// Pipeline is what a Factory builds a runner from: one pipeline of the
// config, as plain values.
type Pipeline struct {
	Name string
	Kind string // the runner: exec, http, jenkins, plugin, ...
	// Command is the exec runner's argv; a Command[0] containing a slash
	// is an absolute path.
	Command []string
	// Env are the daemon variables an exec command gets.
	Env []string
	// Job is the jenkins runner's job ("folder/job" inside a folder).
	Job string
	// Path is the plugin binary, absolute, or "" to look it up in
	// Env.PluginDir.
	Path string
	// SHA256 is the plugin binary's checksum in hex, or "".
	SHA256 string
	// Params are passed to a plugin as they are.
	Params map[string]any
}

// JenkinsOptions are integrations.jenkins, with the secrets already read.
type JenkinsOptions struct {
	URL         string
	User, Token string
}

// Env is what a Factory may use besides its pipeline.
type Env struct {
	// Secrets are every secret value gitmon read; output containing them
	// is redacted by the executor, and runners must not log them.
	Secrets []string
	// LookupEnv reads the daemon's environment, for the variables a
	// pipeline's env: passes through (default os.LookupEnv).
	LookupEnv func(string) (string, bool)
	// Policy is what healthchecks may reach: nil allows every host but
	// link-local ones.
	HealthcheckHosts *[]string
	// EnvironmentHealthcheckHosts overrides HealthcheckHosts for the
	// environments it names (Request.Environment), with each one's merged
	// policy.changes.healthcheck_hosts; a nil value there allows every
	// host but link-local ones. Environments it does not name use
	// HealthcheckHosts.
	EnvironmentHealthcheckHosts map[string]*[]string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives what runners report besides stages (a Jenkins that
	// cannot be reached, go-plugin's logs), with secrets redacted
	// (default: discarded).
	Logger *slog.Logger
	// WorkDir is the working directory of exec commands ("": the folder
	// of an absolute Command[0], else the daemon's own).
	WorkDir string
	// RunDir holds the files stages need while they run (exec's
	// descriptor files); the exec runner needs it.
	RunDir *RunDir
	// PluginDir is where a plugin pipeline without a path is looked up,
	// as PluginDir/<pipeline name>.
	PluginDir string
	// Jenkins is integrations.jenkins, for the jenkins runner (nil when
	// it is not configured).
	Jenkins *JenkinsOptions
}

func (e Env) logger() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Factory builds a runner for one pipeline. An error means the pipeline
// can never run as configured, and the daemon does not start; a service
// the runner needs that is merely down is not an error (HealthReporter).
type Factory func(p Pipeline, env Env) (Runner, error)

var (
	catalogMu sync.RWMutex
	catalog   = map[string]Factory{}
)

// Register adds a runner kind (the `runner:` value of a pipeline).
// Registering a name twice is a programming error and panics.
func Register(kind string, f Factory) {
	catalogMu.Lock()
	defer catalogMu.Unlock()
	if _, dup := catalog[kind]; dup {
		panic("runners: Register called twice for " + kind)
	}
	catalog[kind] = f
}

// Lookup returns the factory of a runner kind.
func Lookup(kind string) (Factory, bool) {
	catalogMu.RLock()
	defer catalogMu.RUnlock()
	f, ok := catalog[kind]
	return f, ok
}
