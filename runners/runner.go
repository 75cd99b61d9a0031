// Package runners executes an environment's release pipeline for a
// change, stage by stage, and holds the catalog where runners register:
// the built-in exec and http runners now, Jenkins and go-plugin runners
// later, all behind one Runner interface.
package runners

import (
	"context"
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/gitmon-dev/gitmon/internal/config"
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

// Env is what a Factory may use besides its pipeline's config.
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
	// PluginDir is where a plugin pipeline without a path is looked up,
	// as PluginDir/<pipeline name> (config.Config.PluginDir).
	PluginDir string
	// Jenkins is integrations.jenkins, for the jenkins runner (nil when
	// it is not configured).
	Jenkins *config.Jenkins
}

// Factory builds a runner for one pipeline.
type Factory func(p config.Pipeline, env Env) (Runner, error)

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
