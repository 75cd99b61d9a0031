package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"

	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/internal/yamlx"
	"github.com/gitmon-dev/gitmon/runners"
)

// placed is a problem of cfg's file at a key path, with its line and
// column.
func placed(cfg *config.Config, path, format string, args ...any) *yamlx.Error {
	e := cfg.Positions.Errorf(path, format, args...)
	e.File = cfg.File
	return e
}

// pipelineNames returns the names of cfg's pipelines run by runner, sorted.
func pipelineNames(cfg *config.Config, runner string) []string {
	var names []string
	for name, p := range cfg.Pipelines {
		if p.Runner == runner {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// checkExecCommands reports every exec pipeline whose program serve could
// not start: resolved by runners.LookCommand, as the exec runner resolves
// it, after config made a relative path absolute against its folder.
func checkExecCommands(cfg *config.Config) yamlx.Errors {
	var out yamlx.Errors
	for _, name := range pipelineNames(cfg, config.RunnerExec) {
		cmd := cfg.Pipelines[name].Command
		if len(cmd) == 0 || cmd[0] == "" {
			continue // config reported it
		}
		if _, err := runners.LookCommand(cmd[0]); err != nil {
			out = append(out, placed(cfg, yamlx.Join(yamlx.Join("pipelines", name), "command"), "%s", commandProblem(cmd[0], err)))
		}
	}
	return out
}

// commandProblem says why the program cannot run.
func commandProblem(program string, err error) string {
	if !strings.Contains(program, "/") {
		if errors.Is(err, exec.ErrDot) {
			return fmt.Sprintf("%q is found only in the current folder through a relative PATH entry, which gitmon does not run; write its path", program)
		}
		return fmt.Sprintf("%q is not found in PATH; write its path, or install it", program)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("%s does not exist", program)
	case errors.Is(err, syscall.EISDIR):
		return fmt.Sprintf("%s is a folder, not a program", program)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Sprintf("%s is not executable (chmod +x it, and check the folders above it)", program)
	}
	return fmt.Sprintf("%s cannot be run: %v", program, unwrapPath(err))
}

// unwrapPath drops the path of a *fs.PathError, which the message names
// already.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// expansion finds what a shell would expand: a ~ at the start of a path
// segment, or $NAME, ${NAME} or $(...).
var expansion = regexp.MustCompile(`(^|[/=:])~|\$[A-Za-z_{(]`)

// checkExpansions warns about the paths of cfg, and the programs of its
// exec pipelines, that hold ~ or $: gitmon runs no shell, so they are
// taken literally.
func checkExpansions(cfg *config.Config) yamlx.Errors {
	type value struct{ path, v string }
	var vals []value
	add := func(path, v string) {
		if v != "" {
			vals = append(vals, value{path, v})
		}
	}
	// A relative path was joined to the config's folder; judge what the
	// file says.
	rel := func(p string) string {
		if r, err := filepath.Rel(cfg.Dir, p); err == nil && !strings.HasPrefix(r, "..") {
			return r
		}
		return p
	}
	add("state", rel(cfg.State))
	add("plugin_dir", rel(cfg.PluginDir))
	for i, r := range cfg.Repositories {
		p := yamlx.Index("repositories", i)
		add(yamlx.Join(p, "ca_file"), rel(r.CAFile))
		add(yamlx.Join(p, "auth.known_hosts_file"), rel(r.Auth.KnownHostsFile))
		add(yamlx.Join(p, "auth.ssh_key_file"), rel(r.Auth.SSHKey.File))
		add(yamlx.Join(p, "auth.username_file"), rel(r.Auth.Username.File))
		add(yamlx.Join(p, "auth.password_file"), rel(r.Auth.Password.File))
	}
	names := make([]string, 0, len(cfg.Pipelines))
	for name := range cfg.Pipelines {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := cfg.Pipelines[name]
		pp := yamlx.Join("pipelines", name)
		if len(p.Command) > 0 {
			// Only the program: an argument may be a script for a shell
			// the command runs itself, such as [sh, -c, "echo $X"].
			add(yamlx.Index(yamlx.Join(pp, "command"), 0), rel(p.Command[0]))
		}
		add(yamlx.Join(pp, "path"), rel(p.Path))
	}
	{
		in := cfg.Integrations
		if in.Jira != nil {
			add("integrations.jira.user_file", rel(in.Jira.User.File))
			add("integrations.jira.token_file", rel(in.Jira.Token.File))
		}
		if in.Slack != nil {
			add("integrations.slack.token_file", rel(in.Slack.Token.File))
		}
		if in.Jenkins != nil {
			add("integrations.jenkins.user_file", rel(in.Jenkins.User.File))
			add("integrations.jenkins.token_file", rel(in.Jenkins.Token.File))
		}
		if in.SMTP != nil {
			add("integrations.smtp.user_file", rel(in.SMTP.User.File))
			add("integrations.smtp.password_file", rel(in.SMTP.Password.File))
		}
	}
	var out yamlx.Errors
	for _, v := range vals {
		if !expansion.MatchString(v.v) {
			continue
		}
		out = append(out, placed(cfg, v.path, "%q holds ~ or $, but gitmon runs no shell: it is taken literally, not expanded; write the path or value out", v.v))
	}
	return out
}
