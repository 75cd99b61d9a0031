// Package demo is `gitmon demo`: the whole flow on an embedded default. It
// builds a throwaway GitOps repository with qa, staging and prod branches
// (with go-git, so no git binary is needed), starts the real daemon on it
// with local exec runners and a local HTTP service for healthchecks, makes
// a series of commits and prints what gitmon did with each.
package demo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	"github.com/go-git/go-git/v5/plumbing/transport/server"

	"github.com/gitmon-dev/gitmon/internal/app"
	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/internal/notify"
	"github.com/gitmon-dev/gitmon/internal/store"
)

// StageCommand is the hidden subcommand the demo's exec pipelines run: the
// gitmon binary itself stands in for deployment scripts, so the demo
// needs no shell.
const StageCommand = "demo-stage"

// BrokenVersion is the version whose healthcheck the demo's service fails.
const BrokenVersion = "1.5.0"

const configTmpl = `listen: 127.0.0.1:0
state: ./state
poll_interval: 1s
tuning: {shutdown_grace: 5s}
repositories:
  - name: deployments
    url: file://%s
environments:
  - name: qa
    branch: qa
    release: [deploy, healthcheck]
  - name: staging
    branch: staging
    release: [deploy, healthcheck, regression]
  - name: prod
    branch: prod
    release: [deploy, healthcheck, smoke]
pipelines:
  deploy:      {runner: exec, command: [%q, %q, deploy], timeout: 1m, env: [DEMO_CLUSTER]}
  healthcheck: {runner: http, timeout: 1m}
  regression:  {runner: exec, command: [%q, %q, regression], timeout: 1m}
  smoke:       %s
integrations:
  slack: {token_env: DEMO_SLACK_TOKEN, api_url: %q}
  smtp:  {host: 127.0.0.1, port: %d, from: gitmon@example.com}
policy:
  committers: ["alice@example.com", "*@platform.example.com"]
  changes:
    allowed_ports: ["80", "443", "1024-65535"]
    max_cpu: "4"
`

func descriptor(service, env, version, ports string, port int) string {
	return fmt.Sprintf(`service: %s
version: %s
image: registry.example.com/%s:%s
domain: 127.0.0.1
port: %d
healthcheck: {scheme: http, endpoints: [/%s/%s/healthz], retries: 2, interval: 100ms, timeout: 1s}
resources: {cpu: 500m, memory: 512Mi}
ports: [%s]
notifications: {emails: [%s-team@example.com], slack: ["#%s"]}
maintainer: alice@example.com
params: {environment: %s}
`, service, version, service, version, port, env, service, ports, service, service, env)
}

// Run runs the demo, printing its timeline to w. exe is the gitmon binary.
func Run(ctx context.Context, w io.Writer, exe string) error {
	dir, err := os.MkdirTemp("", "gitmon-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cluster := filepath.Join(dir, "cluster")
	if err := os.MkdirAll(cluster, 0o755); err != nil {
		return err
	}
	os.Setenv("DEMO_CLUSTER", cluster)

	// The "cluster": a local HTTP service answering healthchecks for what
	// the deploy stage wrote, and failing for the broken version.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	srv := &http.Server{Handler: healthHandler(cluster), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	// file:// served by go-git itself: no git binary needed.
	client.InstallProtocol("file", server.DefaultServer)
	repo, err := newRepo(filepath.Join(dir, "work"))
	if err != nil {
		return err
	}
	p := &printer{w: w, start: time.Now()}
	p.say("building a GitOps repository with branches qa, staging and prod (services payments and search)")
	var parents []plumbing.Hash
	for _, env := range []string{"qa", "staging", "prod"} {
		sha, err := repo.commit(env, map[string]string{
			"services/payments.yaml": descriptor("payments", env, "1.4.1", "8080", port),
			"services/search.yaml":   descriptor("search", env, "2.0.0", "8080", port),
		}, "Set up "+env, bob, parents...)
		if err != nil {
			return err
		}
		parents = []plumbing.Hash{plumbing.NewHash(sha)}
	}
	pay := func(version, ports string) map[string]string {
		return map[string]string{"services/payments.yaml": descriptor("payments", "qa", version, ports, port)}
	}

	// Notifications go to local fakes: a Slack API (slacktest) and an
	// SMTP server, both in this process.
	in := &inbox{}
	p.in = in
	slackSrv := in.startSlack()
	defer slackSrv.Stop()
	smtpSrv, smtpPort, err := in.startSMTP()
	if err != nil {
		return err
	}
	defer smtpSrv.Close()
	os.Setenv("DEMO_SLACK_TOKEN", "xoxb-gitmon-demo-not-a-real-token")
	p.say("notifications go to a fake Slack API at %s and an SMTP server at 127.0.0.1:%d, both local", slackSrv.GetAPIURL(), smtpPort)

	// Prod's smoke test is the example plugin next to the gitmon binary
	// (make build builds it), or the exec stand-in when it is missing.
	smoke := fmt.Sprintf("{runner: exec, command: [%q, %q, smoke], timeout: 1m}", exe, StageCommand)
	if path, sum, err := smokePlugin(exe); err == nil {
		smoke = fmt.Sprintf("{runner: plugin, path: %q, sha256: %s, timeout: 1m}", path, sum)
		p.say("prod's smoke stage is the plugin %s (sha256 %s…), checking the healthcheck endpoints", path, sum[:12])
	} else {
		p.say("no gitmon-smoke plugin next to %s (make build builds it): prod's smoke stage runs as an exec stage instead", filepath.Base(exe))
	}

	cfgText := fmt.Sprintf(configTmpl, filepath.Join(dir, "work", ".git"), exe, StageCommand, exe, StageCommand,
		smoke, slackSrv.GetAPIURL(), smtpPort)
	cfgPath := filepath.Join(dir, "gitmon.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		return err
	}
	cfg, _, err := config.Load(cfgPath, config.Options{Mode: config.ModeServe})
	if err != nil {
		return fmt.Errorf("demo config: %w", err)
	}
	st, err := store.Open(ctx, cfg.State, store.Options{Lock: true})
	if err != nil {
		return err
	}
	a, err := app.New(ctx, cfg, app.Options{Store: st, NoJitter: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	defer func() {
		stop()
		<-done
	}()
	p.say("gitmon is watching %s (polling every %s)", "file://…/work/.git", cfg.PollInterval)

	if err := p.follow(ctx, a, st, "", 0); err != nil { // baselines
		return err
	}
	p.events(ctx, st)

	steps := []struct {
		title, env string
		do         func() (string, error)
		records    int
	}{
		{"a normal release: alice bumps payments to 1.4.2 in qa", "qa", func() (string, error) {
			return repo.commit("qa", pay("1.4.2", "8080"), "Release payments 1.4.2", alice)
		}, 1},
		{"a skip: alice bumps search but says \"skip deployment\"", "qa", func() (string, error) {
			return repo.commit("qa", map[string]string{"services/search.yaml": descriptor("search", "qa", "2.1.0", "8080", port)},
				"Bump search to 2.1.0 (skip deployment: docs only)", alice)
		}, 1},
		{"a rejected committer: mallory opens port 22 on payments", "qa", func() (string, error) {
			return repo.commit("qa", pay("1.4.2", "8080, 22"), "Open a debug port", mallory)
		}, 1},
		{"the ride-along attempt: alice releases payments 1.5.0 while mallory's port 22 is still in the file", "qa", func() (string, error) {
			return repo.commit("qa", pay("1.5.0", "8080, 22"), "Release payments 1.5.0", alice)
		}, 1},
		{"bob (platform team) closes port 22: 1.5.0 deploys, and its healthcheck fails", "qa", func() (string, error) {
			return repo.commit("qa", pay("1.5.0", "8080"), "Close the debug port", bob)
		}, 1},
		{"alice reverts to 1.4.2: a revert after a failure runs", "qa", func() (string, error) {
			return repo.commit("qa", pay("1.4.2", "8080"), "Revert payments to 1.4.2", alice)
		}, 1},
		{"promotion: bob merges qa into staging (staging keeps its own healthcheck path)", "staging", func() (string, error) {
			return repo.promote("qa", "staging", bob, port)
		}, 2},
		{"promotion: bob merges staging into prod", "prod", func() (string, error) {
			return repo.promote("staging", "prod", bob, port)
		}, 2},
	}
	for i, s := range steps {
		p.title(i+1, s.title)
		sha, err := s.do()
		if err != nil {
			return err
		}
		p.say("commit %s pushed to %s", sha[:7], s.env)
		a.Trigger("")
		if err := p.follow(ctx, a, st, sha, s.records); err != nil {
			return err
		}
	}
	p.summary(ctx, st)
	return nil
}

// Stage is the demo's stage command: deploy writes the version into the
// local "cluster"; regression and smoke pretend to test it.
func Stage(args []string, w io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(w, "usage: gitmon demo-stage deploy|regression|smoke")
		return 2
	}
	env, svc, version := os.Getenv("GITMON_ENV"), os.Getenv("GITMON_SERVICE"), os.Getenv("GITMON_VERSION")
	switch args[0] {
	case "deploy":
		cluster := os.Getenv("DEMO_CLUSTER")
		if cluster == "" {
			fmt.Fprintln(w, "DEMO_CLUSTER is not set")
			return 1
		}
		if err := os.MkdirAll(filepath.Join(cluster, env), 0o755); err != nil {
			fmt.Fprintln(w, err)
			return 1
		}
		if err := os.WriteFile(filepath.Join(cluster, env, svc), []byte(version), 0o644); err != nil {
			fmt.Fprintln(w, err)
			return 1
		}
		fmt.Fprintf(w, "deployed %s %s to %s (was %q)\n", svc, version, env, os.Getenv("GITMON_PREVIOUS_VERSION"))
	default:
		fmt.Fprintf(w, "%s suite for %s %s in %s: 12 checks passed\n", args[0], svc, version, env)
	}
	return 0
}

func healthHandler(cluster string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/") // env/service/healthz
		if len(parts) != 3 {
			http.NotFound(w, r)
			return
		}
		v, err := os.ReadFile(filepath.Join(cluster, filepath.Base(parts[0]), filepath.Base(parts[1])))
		switch {
		case err != nil:
			http.Error(w, "not deployed", http.StatusServiceUnavailable)
		case string(v) == BrokenVersion:
			http.Error(w, "database migration failed", http.StatusServiceUnavailable)
		default:
			fmt.Fprintf(w, "ok %s\n", v)
		}
	})
}

var (
	alice   = object.Signature{Name: "Alice", Email: "alice@example.com"}
	bob     = object.Signature{Name: "Bob", Email: "bob@platform.example.com"}
	mallory = object.Signature{Name: "Mallory", Email: "mallory@contractor.example.net"}
)

// gitRepo builds the demo's history with go-git.
type gitRepo struct {
	dir  string
	r    *git.Repository
	wt   *git.Worktree
	tick time.Time
}

func newRepo(dir string) (*gitRepo, error) {
	r, err := git.PlainInit(dir, false)
	if err != nil {
		return nil, err
	}
	wt, err := r.Worktree()
	if err != nil {
		return nil, err
	}
	return &gitRepo{dir: dir, r: r, wt: wt, tick: time.Now().Add(-time.Hour)}, nil
}

func (g *gitRepo) sign(who object.Signature) *object.Signature {
	g.tick = g.tick.Add(time.Minute)
	who.When = g.tick
	return &who
}

// commit writes files on branch and commits them. A new branch starts
// from parents[0] (or empty); extra parents make a merge commit.
func (g *gitRepo) commit(branch string, files map[string]string, msg string, who object.Signature, parents ...plumbing.Hash) (string, error) {
	ref := plumbing.NewBranchReferenceName(branch)
	if cur, err := g.r.Reference(ref, true); err == nil {
		if err := g.wt.Checkout(&git.CheckoutOptions{Branch: ref, Force: true}); err != nil {
			return "", err
		}
		if len(parents) > 0 && parents[0] != cur.Hash() {
			return "", fmt.Errorf("first parent of %s must be its tip", branch)
		}
	} else if len(parents) > 0 {
		// A new branch starting at its first parent.
		if err := g.r.Storer.SetReference(plumbing.NewHashReference(ref, parents[0])); err != nil {
			return "", err
		}
		if err := g.wt.Checkout(&git.CheckoutOptions{Branch: ref, Force: true}); err != nil {
			return "", err
		}
	} else if err := g.r.Storer.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, ref)); err != nil {
		return "", err
	}
	for path, content := range files {
		full := filepath.Join(g.dir, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			return "", err
		}
		if _, err := g.wt.Add(path); err != nil {
			return "", err
		}
	}
	h, err := g.wt.Commit(msg, &git.CommitOptions{Author: g.sign(who), Committer: g.sign(who), Parents: parents, AllowEmptyCommits: true})
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

func (g *gitRepo) tip(branch string) plumbing.Hash {
	ref, err := g.r.Reference(plumbing.NewBranchReferenceName(branch), true)
	if err != nil {
		return plumbing.ZeroHash
	}
	return ref.Hash()
}

// promote merges from into into: the versions of from, the rest of into,
// as Git's three-way merge does for these files; the merge commit has
// into's tip as first parent.
func (g *gitRepo) promote(from, into string, who object.Signature, port int) (string, error) {
	fromCommit, err := g.r.CommitObject(g.tip(from))
	if err != nil {
		return "", err
	}
	files := map[string]string{}
	for _, svc := range []string{"payments", "search"} {
		f, err := fromCommit.File("services/" + svc + ".yaml")
		if err != nil {
			return "", err
		}
		text, _ := f.Contents()
		version := ""
		for _, l := range strings.Split(text, "\n") {
			if v, ok := strings.CutPrefix(l, "version: "); ok {
				version = v
			}
		}
		// A skipped change (search 2.1.0) is promoted like any other.
		files["services/"+svc+".yaml"] = descriptor(svc, into, version, "8080", port)
	}
	return g.commit(into, files, fmt.Sprintf("Merge branch '%s' into %s", from, into), who, g.tip(into), g.tip(from))
}

// smokePlugin returns the path and sha256 of the gitmon-smoke plugin
// next to exe (make build puts bin/gitmon-smoke beside bin/gitmon).
func smokePlugin(exe string) (path, sum string, err error) {
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	path = filepath.Join(filepath.Dir(exe), "gitmon-smoke")
	f, err := os.Open(path)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return "", "", fmt.Errorf("%s is not an executable file", path)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", "", err
	}
	return path, hex.EncodeToString(h.Sum(nil)), nil
}

// printer writes the timeline.
type printer struct {
	w     io.Writer
	start time.Time
	mu    sync.Mutex
	shown map[string]bool
	in    *inbox // the fake Slack's and SMTP server's deliveries
}

func (p *printer) say(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "  %6.2fs  %s\n", time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}

// notes prints the notifications delivered since the last call.
func (p *printer) notes() {
	if p.in == nil {
		return
	}
	for _, l := range p.in.take() {
		p.say("          %s", l)
	}
}

// lastKey is the outbox key of a record's last Slack message (its
// outcome, to its service's first channel), or "" when it has none: a
// skipped record is not announced.
func lastKey(r *store.Record) string {
	if len(r.Slack) == 0 || r.Status == store.StatusSkipped {
		return ""
	}
	ev := notify.EventFinished
	if r.Status == store.StatusRejected {
		ev = notify.EventRejected
	}
	return notify.SlackKey(r.ID, ev, r.Slack[0])
}

// settle waits (a few seconds at most) until the notifications of the
// records just shown are delivered, printing them as they arrive.
func (p *printer) settle(ctx context.Context, st store.Store, keys []string) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		done := true
		for _, k := range keys {
			if it, ok, err := st.OutboxItem(ctx, k); err != nil || !ok || !it.Sent() {
				done = false
				break
			}
		}
		if done {
			if due, err := st.DueOutbox(ctx, time.Now().Add(time.Hour), 1); err == nil && len(due) == 0 {
				break
			}
		}
		p.notes()
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	p.notes()
}

func (p *printer) title(n int, t string) {
	fmt.Fprintf(p.w, "\n%d. %s\n", n, t)
}

func (p *printer) events(ctx context.Context, st store.Store) {
	evs, _ := st.Events(ctx, store.Filter{})
	for i := len(evs) - 1; i >= 0; i-- {
		p.say("event %s: %s", evs[i].Kind, evs[i].Message)
	}
}

// follow waits until n records of commit reached a terminal status,
// printing every record as it ends.
func (p *printer) follow(ctx context.Context, a *app.App, st store.Store, commit string, n int) error {
	if p.shown == nil {
		p.shown = map[string]bool{}
	}
	deadline := time.Now().Add(60 * time.Second)
	var keys []string
	for got := 0; got < n || (n == 0 && !ready(a)); {
		if time.Now().After(deadline) {
			return errors.New("demo: timed out waiting for gitmon")
		}
		recs, err := st.Records(ctx, store.Filter{})
		if err != nil {
			return err
		}
		for i := len(recs) - 1; i >= 0; i-- {
			r := recs[i]
			if p.shown[r.ID] || r.FinishedAt == nil {
				continue
			}
			p.shown[r.ID] = true
			if r.Commit == commit {
				got++
			}
			p.record(r)
			if k := lastKey(r); k != "" {
				keys = append(keys, k)
			}
		}
		p.notes()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	if len(keys) > 0 {
		p.settle(ctx, st, keys)
	}
	return nil
}

func ready(a *app.App) bool {
	ok, _ := a.Ready()
	return ok
}

func (p *printer) record(r *store.Record) {
	step := r.Version
	if r.PreviousVersion != "" && r.PreviousVersion != r.Version {
		step = r.PreviousVersion + " → " + r.Version
	}
	p.say("%s/%s %s: %s (commit %s by %s)", r.Environment, r.Service, step, strings.ToUpper(r.Status), r.Commit[:7], r.Committer)
	for _, rs := range r.Reasons {
		where := ""
		if rs.Field != "" {
			where = fmt.Sprintf(" [field %s, commit %s]", rs.Field, rs.Commit[:7])
		}
		p.say("          reason %s: %s%s", rs.Rule, rs.Message, where)
	}
	for _, s := range r.Stages {
		line := fmt.Sprintf("          stage %-11s %-9s", s.Name, s.Status)
		if s.Message != "" {
			line += " " + s.Message
		} else if out := lastLine(s.Output); out != "" {
			line += " " + out
		}
		p.say("%s", line)
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return s
}

func (p *printer) summary(ctx context.Context, st store.Store) {
	fmt.Fprintln(p.w, "\nwhat runs where (last good):")
	for _, env := range []string{"qa", "staging", "prod"} {
		svcs, _ := st.Services(ctx, "deployments", env)
		var parts []string
		for _, s := range svcs {
			if s.LastGood != nil {
				parts = append(parts, s.Service+" "+s.LastGood.Version)
			}
		}
		fmt.Fprintf(p.w, "  %-8s %s\n", env, strings.Join(parts, ", "))
	}
	recs, _ := st.Records(ctx, store.Filter{})
	count := map[string]int{}
	for _, r := range recs {
		count[r.Status]++
	}
	b, _ := json.Marshal(count)
	fmt.Fprintf(p.w, "\n%d records %s. Every one is in the store: `gitmon history --json` prints them.\n", len(recs), b)
	if p.in != nil {
		posts, mails := p.in.counts()
		fmt.Fprintf(p.w, "%d Slack posts delivered to the fake Slack API and %d e-mails to the local SMTP server.\n", posts, mails)
	}
}
