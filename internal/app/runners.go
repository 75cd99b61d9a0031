package app

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/runners"
)

// RunDirName is the folder of the state folder where runners keep what
// stages need while they run (exec's descriptor files).
const RunDirName = "run"

// buildRunners builds the runner of every pipeline of cfg, in name order,
// from the runner catalog; opts.Runners replaces a pipeline's. The state
// folder must be locked already: opening its run folder removes what a
// gitmon that died mid-stage left there. On an error, the runners built
// so far are closed.
func buildRunners(cfg *config.Config, opts Options, secrets []string) (map[string]runners.Runner, error) {
	names := make([]string, 0, len(cfg.Pipelines))
	for name := range cfg.Pipelines {
		names = append(names, name)
	}
	sort.Strings(names)

	runDir := filepath.Join(cfg.State, RunDirName)
	rd, swept, err := runners.OpenRunDir(runDir)
	if err != nil {
		return nil, err
	}
	if swept > 0 {
		opts.Logger.Info("removed the stage files a previous gitmon left behind", "dir", runDir, "count", swept)
	}
	env := runners.Env{
		Secrets:                     secrets,
		LookupEnv:                   os.LookupEnv,
		HealthcheckHosts:            cfg.Policy.Changes.HealthcheckHosts,
		EnvironmentHealthcheckHosts: map[string]*[]string{},
		Now:                         opts.Now,
		Logger:                      opts.Logger,
		WorkDir:                     cfg.Dir, // commands run in the config's folder
		RunDir:                      rd,
		PluginDir:                   cfg.PluginDir,
		Jenkins:                     JenkinsOptions(cfg.Integrations.Jenkins),
	}
	for _, e := range cfg.Environments {
		env.EnvironmentHealthcheckHosts[e.Name] = e.Policy.Changes.HealthcheckHosts
	}

	built := make(map[string]runners.Runner, len(names))
	fail := func(err error) (map[string]runners.Runner, error) {
		for _, r := range built {
			if c, ok := r.(runners.Closer); ok {
				c.Close()
			}
		}
		return nil, err
	}
	for _, name := range names {
		if r, ok := opts.Runners[name]; ok {
			built[name] = r
			continue
		}
		p := cfg.Pipelines[name]
		f, ok := runners.Lookup(p.Runner)
		if !ok {
			return fail(fmt.Errorf("pipeline %s: runner %q is not available in this build", name, p.Runner))
		}
		r, err := f(RunnerPipeline(p), env)
		if err != nil {
			return fail(fmt.Errorf("pipeline %s: %w", name, err))
		}
		built[name] = r
	}
	return built, nil
}

// RunnerPipeline is a pipeline of the config as the runners package
// takes it.
func RunnerPipeline(p config.Pipeline) runners.Pipeline {
	return runners.Pipeline{
		Name:    p.Name,
		Kind:    p.Runner,
		Command: p.Command,
		Env:     p.Env,
		Job:     p.Job,
		Path:    p.Path,
		SHA256:  p.SHA256,
		Params:  p.Params,
	}
}

// JenkinsOptions is integrations.jenkins as the runners package takes it,
// with the secrets read; nil when it is not configured.
func JenkinsOptions(j *config.Jenkins) *runners.JenkinsOptions {
	if j == nil {
		return nil
	}
	return &runners.JenkinsOptions{URL: j.URL, User: j.User.Value(), Token: j.Token.Value()}
}

// runnerErrors returns, by pipeline, why each runner that reports its
// health (runners.HealthReporter) cannot run stages now, for /readyz.
func (a *App) runnerErrors() map[string]string {
	errs := map[string]string{}
	for name, r := range a.runners {
		h, ok := r.(runners.HealthReporter)
		if !ok {
			continue
		}
		if err := h.Health(); err != nil {
			errs[name] = runners.Redact(err.Error(), a.secrets)
		}
	}
	return errs
}
