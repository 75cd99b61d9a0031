package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// StageCommand is the hidden subcommand the demo's exec pipelines run: the
// gitmon binary itself stands in for deployment scripts, so the demo
// needs no shell.
const StageCommand = "demo-stage"

// BrokenVersion is the version whose healthcheck the demo's service fails
// until its database migration is fixed.
const BrokenVersion = "1.6.0"

// cluster is the demo's stand-in for where services run: the deploy stage
// writes each service's version into a folder (one per environment), and
// an HTTP service in this process answers the healthchecks of what is
// deployed there.
type cluster struct {
	dir string

	mu     sync.Mutex
	healed bool             // BrokenVersion's migration is fixed
	holds  map[string]*hold // env/service/version → a healthcheck held
}

// hold keeps the healthcheck of one deployed version waiting, so that the
// release that runs it is still running while the demo shows what waits
// for it.
type hold struct {
	once    sync.Once
	arrived chan struct{} // closed when the healthcheck asks
	release chan struct{} // closed to answer it
}

func newCluster(dir string) (*cluster, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &cluster{dir: dir, holds: map[string]*hold{}}, nil
}

// serve answers healthchecks on a loopback port until ctx is done.
func (c *cluster) serve(ctx context.Context) (port int, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, nil, err
	}
	srv := &http.Server{Handler: c, ReadHeaderTimeout: 5 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	go srv.Serve(ln)
	return ln.Addr().(*net.TCPAddr).Port, func() { srv.Close() }, nil
}

// hold makes the next healthchecks of service version in env wait until
// the returned hold is released.
func (c *cluster) hold(env, service, version string) *hold {
	h := &hold{arrived: make(chan struct{}), release: make(chan struct{})}
	c.mu.Lock()
	c.holds[env+"/"+service+"/"+version] = h
	c.mu.Unlock()
	return h
}

// unhold answers the held healthcheck and lets later ones through.
func (c *cluster) unhold(env, service, version string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := env + "/" + service + "/" + version
	if h := c.holds[key]; h != nil {
		close(h.release)
		delete(c.holds, key)
	}
}

// heal fixes BrokenVersion: its healthchecks pass from now on.
func (c *cluster) heal() {
	c.mu.Lock()
	c.healed = true
	c.mu.Unlock()
}

// ServeHTTP answers /<env>/<service>/healthz for what the deploy stage
// wrote.
func (c *cluster) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/") // env/service/healthz
	if len(parts) != 3 {
		http.NotFound(w, r)
		return
	}
	env, svc := filepath.Base(parts[0]), filepath.Base(parts[1])
	v, err := os.ReadFile(filepath.Join(c.dir, env, svc))
	if err != nil {
		http.Error(w, "not deployed", http.StatusServiceUnavailable)
		return
	}
	version := string(v)
	c.mu.Lock()
	h, healed := c.holds[env+"/"+svc+"/"+version], c.healed
	c.mu.Unlock()
	if h != nil {
		h.once.Do(func() { close(h.arrived) })
		select {
		case <-h.release:
		case <-r.Context().Done():
			return
		}
	}
	if version == BrokenVersion && !healed {
		http.Error(w, "database migration failed", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintf(w, "ok %s\n", version)
}

// errStageUsage is Stage's answer to arguments it does not know.
var errStageUsage = errors.New("usage: gitmon " + StageCommand + " deploy CLUSTER | regression | smoke")

// Stage is the demo's stage command: deploy writes the version into the
// cluster folder; regression and smoke pretend to test it. It returns the
// exit code.
func Stage(args []string, w io.Writer) int {
	if err := stage(args, w); err != nil {
		fmt.Fprintln(w, err)
		if errors.Is(err, errStageUsage) {
			return 2
		}
		return 1
	}
	return 0
}

func stage(args []string, w io.Writer) error {
	env, svc, version := os.Getenv("GITMON_ENV"), os.Getenv("GITMON_SERVICE"), os.Getenv("GITMON_VERSION")
	switch {
	case len(args) == 2 && args[0] == "deploy":
		// The cluster folder is an argument, relative to the config's
		// folder where exec stages run, so a kept demo folder can move.
		dir := filepath.Join(args[1], filepath.Base(env))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(svc)), []byte(version), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(w, "deployed %s %s to %s (was %q)\n", svc, version, env, os.Getenv("GITMON_PREVIOUS_VERSION"))
	case len(args) == 1 && (args[0] == "regression" || args[0] == "smoke"):
		fmt.Fprintf(w, "%s suite for %s %s in %s: 12 checks passed\n", args[0], svc, version, env)
	default:
		return errStageUsage
	}
	return nil
}
