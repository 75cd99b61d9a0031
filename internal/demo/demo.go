// Package demo is `gitmon demo`: the whole flow on an embedded default. It
// builds a GitOps repository with qa, staging and prod branches (with
// go-git, so no git binary is needed), starts the real daemon on it with
// local exec runners and a local HTTP service for healthchecks, makes a
// series of commits and operator commands, and prints what gitmon did
// with each: policy in qa, a promotion that cannot skip a step, one that
// waits for upstream, a freeze, and a retry.
//
// The files: demo.go sets the demo up and runs it, story.go is its
// timeline, watch.go follows the records, printer.go prints them, repo.go
// writes the Git history, cluster.go stands in for where services run,
// setup.go holds the config and the folder, fakes.go the fake Slack and
// SMTP servers.
package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	"github.com/go-git/go-git/v5/plumbing/transport/server"

	"github.com/gitmon-dev/gitmon/internal/app"
	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/internal/store"
)

// Options say how the demo runs.
type Options struct {
	// Exe is the gitmon binary: the exec stages run its hidden demo-stage
	// command, and prod's smoke stage is the gitmon-smoke plugin beside
	// it when there is one.
	Exe string
	// Keep is the folder to leave the repository, the config and the
	// state in, for the other commands to be tried on; it must be empty
	// or not exist (ErrKeep). "" works in a temporary folder,
	// removed at the end.
	Keep string
}

// Run runs the demo, printing its timeline to w.
func Run(ctx context.Context, w io.Writer, o Options) error {
	dir, cleanup, err := workDir(o.Keep)
	if err != nil {
		return err
	}
	defer cleanup()
	p := &printer{w: w, start: time.Now()}

	smoke, smokeNote, err := installBinaries(dir, o.Exe)
	if err != nil {
		return err
	}
	// The "cluster": a local HTTP service answering healthchecks for what
	// the deploy stage wrote.
	cl, err := newCluster(filepath.Join(dir, clusterDir))
	if err != nil {
		return err
	}
	port, stopCluster, err := cl.serve(ctx)
	if err != nil {
		return err
	}
	defer stopCluster()

	// file:// served by go-git itself: no git binary needed.
	client.InstallProtocol("file", server.DefaultServer)
	repo, err := newRepo(filepath.Join(dir, repoDir))
	if err != nil {
		return err
	}
	p.say("building a GitOps repository with branches qa, staging and prod (services payments and search)")
	var parents []plumbing.Hash
	for _, env := range []string{"qa", "staging", "prod"} {
		files := map[string]string{}
		for _, svc := range services {
			files["services/"+svc+".yaml"] = descriptor(svc, env, map[string]string{"payments": "1.4.1", "search": "2.0.0"}[svc], "8080", port)
		}
		sha, err := repo.commit(env, files, "Set up "+env, bob, parents...)
		if err != nil {
			return err
		}
		parents = []plumbing.Hash{plumbing.NewHash(sha)}
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
	if err := os.WriteFile(filepath.Join(dir, slackToken), []byte("xoxb-gitmon-demo-not-a-real-token\n"), 0o600); err != nil {
		return err
	}
	p.say("notifications go to a fake Slack API at %s and an SMTP server at 127.0.0.1:%d, both local", slackSrv.GetAPIURL(), smtpPort)
	p.say("%s", smokeNote)

	cfgPath := filepath.Join(dir, configFile)
	cfgText := fmt.Sprintf(configTmpl, "file://"+repo.gitDir(), StageCommand, StageCommand, smoke, slackSrv.GetAPIURL(), smtpPort)
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
	reads := newFreezeReads(st)
	a, err := app.New(ctx, cfg, app.Options{Store: reads, NoJitter: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		st.Close()
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	serving := true
	stopServe := func() error {
		if !serving {
			return nil
		}
		serving = false
		stop()
		return <-done // Run closes the store
	}
	defer stopServe()
	p.say("gitmon is watching file://…/%s/.git (polling every %s); staging and prod take only what succeeded before them", repoDir, cfg.PollInterval)

	s := &story{p: p, w: newWatcher(p, st), a: a, cfg: cfg, st: st, reads: reads, repo: repo, cl: cl, port: port}
	if err := s.tell(ctx); err != nil {
		return err
	}
	if err := p.summary(ctx, st); err != nil {
		return err
	}
	if err := stopServe(); err != nil {
		return fmt.Errorf("gitmon serve: %w", err)
	}
	if o.Keep != "" {
		kept(w, dir)
	}
	return nil
}

// kept says what the kept folder holds and what to try on it.
func kept(w io.Writer, dir string) {
	cfg := filepath.Join(dir, configFile)
	fmt.Fprintf(w, "\nKept in %s: the repository (%s/, a Git repository with branches qa, staging and prod), %s and the state (%s/).\n",
		dir, repoDir, configFile, stateDir)
	fmt.Fprintf(w, "Try:\n")
	fmt.Fprintf(w, "  gitmon status --config %s\n", cfg)
	fmt.Fprintf(w, "  gitmon history --config %s\n", cfg)
	fmt.Fprintf(w, "  gitmon plan --config %s --env prod\n", cfg)
	fmt.Fprintf(w, "(%s is a copy of this gitmon binary, if it is not on your PATH.)\n", filepath.Join(dir, binDir, "gitmon"))
}
