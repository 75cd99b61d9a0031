package runners

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	retry "github.com/gitmon-dev/gitmon/internal/backoff"
	"github.com/gitmon-dev/gitmon/plugins"
)

func init() {
	Register(KindPlugin, func(p Pipeline, env Env) (Runner, error) { return NewPlugin(p, env) })
}

// Defaults of the plugin runner's crash handling.
const (
	DefaultPluginBackoff      = 250 * time.Millisecond
	DefaultPluginBackoffMax   = 30 * time.Second
	DefaultPluginMaxCrashes   = 5
	DefaultPluginCircuitOpen  = time.Minute
	DefaultPluginStartTimeout = 10 * time.Second
)

// Plugin is the plugin runner (SPEC §4): it runs stages in a go-plugin
// process speaking the protocol of package plugins, over gRPC only, with
// AutoMTLS, without the daemon's environment, and, when the pipeline has
// a sha256, only if the binary has that checksum.
//
// Nothing is launched until the first Run; the process then serves every
// later stage of the pipeline, concurrently if need be. A plugin that
// dies (crashes) fails the stages it was running with "plugin NAME
// crashed: …"; the next Run launches it again, after a backoff that
// doubles with each consecutive crash or failed launch, from Backoff up
// to BackoffMax. After MaxCrashes consecutive ones the circuit opens:
// stages fail at once with "circuit open until …" for CircuitOpen, after
// which one launch is tried again. A stage that completes resets the
// count. Close kills the process.
//
// Everything the runner says carries no secret: the values in Secrets
// are redacted from its results, errors and crash messages (the tail of
// the plugin's stderr included), and from every line go-plugin logs
// through Logger.
type Plugin struct {
	Name   string // for messages: the binary's base name
	Path   string // absolute path of the binary
	SHA256 []byte // the binary's checksum, or nil not to check
	Params map[string]any

	// Secrets are redacted from everything the runner returns or logs.
	Secrets []string
	// Logger receives go-plugin's logs and the plugin's stderr (default:
	// discarded).
	Logger              *slog.Logger
	Backoff, BackoffMax time.Duration
	MaxCrashes          int
	CircuitOpen         time.Duration
	StartTimeout        time.Duration
	Now                 func() time.Time

	mu        sync.Mutex
	cur       *pluginLaunch // the running (or launching) process
	crashes   int           // consecutive crashes and failed launches
	notBefore time.Time     // backoff: no launch before
	openUntil time.Time     // circuit breaker: no launch before
	lastErr   string
	closed    bool
	kills     sync.WaitGroup
	// RunDir, if set, holds the folder of the plugin's sockets, so that
	// a crashed gitmon's are removed at the next start (OpenRunDir).
	RunDir *RunDir
	// sockets is where the plugin process creates its Unix socket.
	// go-plugin leaves a killed plugin's socket behind; a folder of the
	// runner's own is removed whole on Close.
	sockets string
}

var (
	_ Runner = (*Plugin)(nil)
	_ Closer = (*Plugin)(nil)
)

// pluginLaunch is one plugin process; done closes once it has started
// (client, rn set) or failed to (err set).
type pluginLaunch struct {
	done   chan struct{}
	client *plugin.Client
	rn     plugins.Runner
	err    error
	stderr *Output // the tail of the plugin's stderr, where a Go panic lands
}

// pluginStderrTail is how much of a crashed plugin's stderr its stages'
// message shows.
const pluginStderrTail = 512

// NewPlugin returns the plugin runner of pipeline p: its binary is p.Path,
// or env.PluginDir/<p.Name> when p has no path. It starts nothing.
func NewPlugin(p Pipeline, env Env) (*Plugin, error) {
	path := p.Path
	if path == "" {
		if env.PluginDir == "" {
			return nil, fmt.Errorf("plugin: pipeline %s has no path and there is no plugin_dir", p.Name)
		}
		path = filepath.Join(env.PluginDir, p.Name)
	}
	if !filepath.IsAbs(path) {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, fmt.Errorf("plugin: %w", err)
		}
		path = abs
	}
	r := &Plugin{
		Name:    filepath.Base(path),
		Path:    path,
		Params:  p.Params,
		Now:     env.Now,
		Secrets: env.Secrets,
		Logger:  env.Logger,
		RunDir:  env.RunDir,
	}
	if p.SHA256 != "" {
		sum, err := hex.DecodeString(p.SHA256)
		if err != nil || len(sum) != sha256.Size {
			return nil, fmt.Errorf("plugin: pipeline %s: sha256 %q is not 64 hex digits", p.Name, p.SHA256)
		}
		r.SHA256 = sum
	}
	return r, nil
}

// Run runs one stage in the plugin. The plugin's log lines go to out.
func (p *Plugin) Run(ctx context.Context, req *Request, out io.Writer, _ Handle) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{Message: "cancelled: " + err.Error()}, nil
	}
	if out == nil {
		out = io.Discard
	}
	l, res, err := p.acquire(ctx)
	if l == nil {
		return res, err
	}
	sreq := &plugins.StageRequest{
		Repository:      req.Repository,
		Environment:     req.Environment,
		Service:         req.Service,
		Version:         req.Version,
		PreviousVersion: req.PreviousVersion,
		Commit:          req.Commit,
		Author:          req.Author,
		Committer:       req.Committer,
		Tickets:         req.Tickets,
		Stage:           req.Stage,
		Action:          req.Action,
		RunID:           req.RunID,
		Descriptor:      req.Descriptor,
		Params:          p.Params,
	}
	pres, err := l.rn.Run(ctx, sreq, func(line string) { fmt.Fprintln(out, line) })
	switch {
	case ctx.Err() != nil:
		return Result{Message: "cancelled: " + ctx.Err().Error()}, nil
	case err != nil && (grpcstatus.Code(err) == codes.Canceled || grpcstatus.Code(err) == codes.DeadlineExceeded):
		// The call's deadline travels to the plugin, whose side can end
		// the stream a moment before ctx is done here.
		why := grpcstatus.Convert(err).Message()
		if _, ok := ctx.Deadline(); ok {
			why = context.DeadlineExceeded.Error()
		}
		return Result{Message: "cancelled: " + p.redact(why)}, nil
	case err != nil && (grpcstatus.Code(err) == codes.Unavailable || l.client.Exited()):
		msg := fmt.Sprintf("plugin %s crashed: the process ended during the stage (%s)", p.Name, p.redact(grpcstatus.Convert(err).Message()))
		// Kill returns once go-plugin has read all of stderr, whose last
		// lines (a panic) the connection often outran.
		l.client.Kill()
		// The Output redacts the tail, a secret cut at its edge included.
		if tail := strings.TrimSpace(l.stderr.String()); tail != "" {
			msg += "; its last output: " + tail
		}
		p.failed(l, msg)
		return Result{Message: msg}, nil
	case err != nil:
		return Result{}, errors.New(p.redact(fmt.Sprintf("plugin %s: %s", p.Name, grpcstatus.Convert(err).Message())))
	}
	p.mu.Lock()
	if p.cur == l {
		p.crashes = 0
	}
	p.mu.Unlock()
	return Result{OK: pres.OK, Message: p.redact(pres.Message), URL: p.redact(pres.URL)}, nil
}

// redact removes every secret from s.
func (p *Plugin) redact(s string) string { return Redact(s, p.Secrets) }

// acquire returns the running plugin, launching it if need be; with a nil
// launch, it returns what Run returns.
func (p *Plugin) acquire(ctx context.Context) (*pluginLaunch, Result, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, Result{}, fmt.Errorf("plugin %s: the runner is closed", p.Name)
		}
		if l := p.cur; l != nil {
			p.mu.Unlock()
			select {
			case <-l.done:
			case <-ctx.Done():
				return nil, Result{Message: "cancelled: " + ctx.Err().Error()}, nil
			}
			if l.err != nil {
				// go-plugin's launch errors quote what the plugin printed.
				msg := p.redact(fmt.Sprintf("plugin %s: launching %s: %v", p.Name, p.Path, l.err))
				p.failed(l, msg)
				return nil, Result{}, errors.New(msg)
			}
			if l.client.Exited() { // died between stages: launch again
				p.failed(l, fmt.Sprintf("plugin %s crashed between stages", p.Name))
				continue
			}
			return l, Result{}, nil
		}
		now := p.now()
		if now.Before(p.openUntil) {
			msg := fmt.Sprintf("plugin %s: circuit open until %s after %d consecutive crashes; last: %s",
				p.Name, p.openUntil.Format(time.RFC3339), p.crashes, p.lastErr)
			p.mu.Unlock()
			return nil, Result{Message: msg}, nil
		}
		if wait := p.notBefore.Sub(now); wait > 0 {
			p.mu.Unlock()
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, Result{Message: "cancelled: " + ctx.Err().Error()}, nil
			}
			continue
		}
		l := &pluginLaunch{done: make(chan struct{}), stderr: NewOutput(pluginStderrTail, p.Secrets)}
		p.cur = l
		p.mu.Unlock()
		go p.launch(l)
	}
}

// launch starts the plugin process of l.
func (p *Plugin) launch(l *pluginLaunch) {
	defer close(l.done)
	cmd := exec.Command(p.Path)
	if dir := p.socketDir(); dir != "" {
		cmd.Env = []string{plugin.EnvUnixSocketDir + "=" + dir}
	}
	cfg := &plugin.ClientConfig{
		HandshakeConfig:  plugins.Handshake,
		VersionedPlugins: plugins.VersionedPlugins(nil),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		SkipHostEnv:      true,
		Cmd:              cmd,
		Logger:           newHCLogger(p.Logger, p.Name, p.Secrets),
		Stderr:           l.stderr,
		StartTimeout:     p.StartTimeout,
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultPluginStartTimeout
	}
	if p.SHA256 != nil {
		cfg.SecureConfig = &plugin.SecureConfig{Checksum: p.SHA256, Hash: sha256.New()}
	}
	l.client = plugin.NewClient(cfg)
	rpc, err := l.client.Client()
	if err == nil {
		var raw any
		if raw, err = rpc.Dispense(plugins.PluginName); err == nil {
			var ok bool
			if l.rn, ok = raw.(plugins.Runner); !ok {
				err = fmt.Errorf("dispensed %T, not a plugins.Runner", raw)
			}
		}
	}
	if err != nil {
		l.client.Kill()
		l.err = err
	}
}

// failed records that l crashed or failed to launch, and kills it.
func (p *Plugin) failed(l *pluginLaunch, msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != l {
		return // already recorded, by a concurrent stage
	}
	p.cur = nil
	p.kills.Go(l.client.Kill)
	p.crashes++
	p.lastErr = msg
	now := p.now()
	backoff := p.Backoff
	if backoff <= 0 {
		backoff = DefaultPluginBackoff
	}
	bmax := p.BackoffMax
	if bmax <= 0 {
		bmax = DefaultPluginBackoffMax
	}
	p.notBefore = now.Add(retry.Exponential(backoff, bmax, p.crashes))
	maxCrashes := p.MaxCrashes
	if maxCrashes <= 0 {
		maxCrashes = DefaultPluginMaxCrashes
	}
	if p.crashes >= maxCrashes {
		open := p.CircuitOpen
		if open <= 0 {
			open = DefaultPluginCircuitOpen
		}
		p.openUntil = now.Add(open)
	}
}

// Close kills the plugin process, waiting for it to end. Later Runs fail.
func (p *Plugin) Close() error {
	p.mu.Lock()
	p.closed = true
	l := p.cur
	p.cur = nil
	p.mu.Unlock()
	if l != nil {
		<-l.done
		l.client.Kill()
	}
	p.kills.Wait()
	p.mu.Lock()
	dir := p.sockets
	p.sockets = ""
	p.mu.Unlock()
	if dir != "" {
		return os.RemoveAll(dir)
	}
	return nil
}

// socketDir returns the runner's folder for plugin sockets, creating it
// on first use; "" (the system's temp folder) if it cannot.
func (p *Plugin) socketDir() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sockets == "" {
		parent := ""
		// go-plugin names the socket plugin<10 digits> inside the folder,
		// and a socket's path has at most 107 bytes.
		if p.RunDir != nil && len(p.RunDir.Path())+len("/"+pluginSocketPattern+"/plugin0123456789") <= 107 {
			parent = p.RunDir.Path()
		}
		if dir, err := os.MkdirTemp(parent, pluginSocketPattern); err == nil {
			p.sockets = dir
		}
	}
	return p.sockets
}

func (p *Plugin) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}
