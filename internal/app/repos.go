package app

import (
	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/monitor"
)

// remote is what monitor needs of a configured repository: plain values,
// its secrets already read. branches are the ones the caller watches
// (nil: all).
func remote(rc *config.Repository, branches []string) monitor.Remote {
	return monitor.Remote{
		URL:            rc.URL,
		Insecure:       rc.Insecure,
		CAFile:         rc.CAFile,
		Username:       rc.Auth.Username.Value(),
		Password:       rc.Auth.Password.Value(),
		SSHKey:         rc.Auth.SSHKey.Value(),
		SSHKeyFile:     rc.Auth.SSHKey.File,
		KnownHostsFile: rc.Auth.KnownHostsFile,
		Descriptors:    rc.Descriptors,
		Branches:       branches,
	}
}

// newRepoState is a watched repository, ready for its poll loop.
func (a *App) newRepoState(rc *config.Repository, g gitRepo) *repoState {
	return &repoState{cfg: rc, git: g, trigger: make(chan struct{}, 1), absent: map[string]bool{},
		poll: pollState{
			index:      -1,
			phase:      phase(rc.Name, a.cfg.PollInterval),
			settled:    map[string]listed{},
			polls:      a.metrics.polls.WithLabelValues(rc.Name),
			pollErrors: a.metrics.pollErrors.WithLabelValues(rc.Name),
		}}
}

// envBranches are the branches of every environment: all that serve
// polls.
func envBranches(cfg *config.Config) []string {
	out := make([]string, 0, len(cfg.Environments))
	for _, env := range cfg.Environments {
		out = append(out, env.Branch)
	}
	return out
}
