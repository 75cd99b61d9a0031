package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gitmon-dev/gitmon/descriptors"
	"github.com/gitmon-dev/gitmon/internal/app"
	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/internal/yamlx"
	"github.com/gitmon-dev/gitmon/runners"
	"github.com/spf13/cobra"
)

// DefaultDescriptors is the descriptors glob of a checkout when no config
// names one.
const DefaultDescriptors = "services/*.yaml"

func validateCommand(s Streams) *cobra.Command {
	var cf configFlag
	c := &cobra.Command{
		Use:   "validate [--config F] [PATH...]",
		Short: "check the config and descriptors",
		Long: `Checks the config and descriptors, printing every problem as
file:line:col: message (file: message where no line applies).

A PATH that is a folder is a checkout, where the descriptors glob of the
config applies; a PATH that is a file is a descriptor (.yaml or .yml). The
config is --config, else $GITMON_CONFIG, else ./gitmon.yaml when it exists.
The command of every exec pipeline must exist and be executable, found as
serve finds it; the Jenkins job of every jenkins pipeline is asked for.

Exit 0 valid, 1 invalid, 2 a usage error or a missing path.`,
		Example: `  gitmon validate --config gitmon.yaml
  gitmon validate checkout/ services/payments.yaml --config /etc/gitmon/gitmon.yaml`,
		RunE: runs(func(ctx context.Context, paths []string) int { return runValidate(ctx, s, &cf, paths) }),
	}
	cf.register(c)
	return c
}

func runValidate(ctx context.Context, s Streams, cf *configFlag, paths []string) int {
	cfgPath, named := cf.resolve()
	if !named {
		if _, err := os.Stat(cfgPath); err != nil {
			cfgPath = ""
		}
	}
	if cfgPath == "" && len(paths) == 0 {
		fmt.Fprintf(s.Err, "gitmon validate: nothing to check: no --config, no $%s, no ./%s and no PATH\n", ConfigEnv, DefaultConfig)
		fmt.Fprintln(s.Err, "Run 'gitmon validate --help' for usage.")
		return ExitUsage
	}

	// Every PATH must exist and be a folder or a YAML file before anything
	// is checked: a typo is a usage error, not an invalid descriptor.
	for _, p := range paths {
		fi, err := os.Stat(p)
		switch {
		case err != nil:
			fmt.Fprintf(s.Err, "gitmon validate: %s: no such file or folder\n", p)
			return ExitUsage
		case !fi.IsDir() && !isYAML(p):
			fmt.Fprintf(s.Err, "gitmon validate: %s: not a descriptor (.yaml or .yml) nor a folder\n", p)
			return ExitUsage
		}
	}

	var problems, warnings int
	report := func(es yamlx.Errors, warning bool) {
		for _, e := range es {
			line := e.Error()
			if warning {
				c := *e
				c.Msg = "warning: " + c.Msg
				line = c.Error()
				warnings++
			} else {
				problems++
			}
			fmt.Fprintln(s.Out, line)
		}
	}

	globs := []string{DefaultDescriptors}
	checkedConfig := 0
	if cfgPath != "" {
		if _, err := os.Stat(cfgPath); err != nil {
			fmt.Fprintf(s.Err, "gitmon validate: %s: no such file\n", cfgPath)
			return ExitUsage
		}
		checkedConfig = 1
		cfg, warns, err := config.Load(cfgPath, config.Options{Mode: config.ModeValidate})
		report(yamlx.Errors(warns), true)
		report(yamlx.WithFile(err, cfgPath), false)
		if cfg != nil {
			globs = descriptorGlobs(cfg)
			report(checkExecCommands(cfg), false)
			report(checkExpansions(cfg), true)
			problems, warns := checkJenkinsJobs(ctx, cfg)
			report(problems, false)
			report(warns, true)
		}
	}

	files := 0
	for _, p := range paths {
		fi, _ := os.Stat(p)
		if !fi.IsDir() {
			files++
			report(checkDescriptor(p), false)
			continue
		}
		found, err := expand(p, globs)
		if err != nil {
			fmt.Fprintf(s.Err, "gitmon validate: %s: %v\n", p, err)
			return ExitUsage
		}
		if len(found) == 0 {
			report(yamlx.Errors{{File: p, Msg: fmt.Sprintf("no descriptors match %s", strings.Join(globs, ", "))}}, true)
		}
		for _, f := range found {
			files++
			report(checkDescriptor(f), false)
		}
	}
	fmt.Fprintf(s.Err, "gitmon validate: %d config, %d descriptors: %d problems, %d warnings\n", checkedConfig, files, problems, warnings)
	if problems > 0 {
		return ExitInvalid
	}
	return ExitOK
}

func isYAML(p string) bool {
	ext := strings.ToLower(filepath.Ext(p))
	return ext == ".yaml" || ext == ".yml"
}

// descriptorGlobs returns the distinct descriptor globs of cfg's
// repositories, in order.
func descriptorGlobs(cfg *config.Config) []string {
	var out []string
	for _, r := range cfg.Repositories {
		g := r.Descriptors
		if g == "" {
			g = DefaultDescriptors
		}
		if !contains(out, g) {
			out = append(out, g)
		}
	}
	if len(out) == 0 {
		out = []string{DefaultDescriptors}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// expand returns the regular files below dir that match any glob, sorted.
func expand(dir string, globs []string) ([]string, error) {
	var out []string
	for _, g := range globs {
		matches, err := filepath.Glob(filepath.Join(dir, filepath.FromSlash(g)))
		if err != nil {
			return nil, fmt.Errorf("bad descriptors glob %q: %w", g, err)
		}
		for _, m := range matches {
			fi, err := os.Lstat(m)
			if err != nil || !fi.Mode().IsRegular() || contains(out, m) {
				continue
			}
			out = append(out, m)
		}
	}
	sort.Strings(out)
	return out, nil
}

// checkDescriptor parses one descriptor file and returns its problems.
func checkDescriptor(path string) yamlx.Errors {
	f, err := os.Open(path)
	if err != nil {
		msg := "cannot read: " + err.Error()
		var pe *fs.PathError
		if errors.As(err, &pe) {
			msg = "cannot read: " + pe.Err.Error()
		}
		return yamlx.Errors{{File: path, Msg: msg}}
	}
	defer f.Close()
	_, err = descriptors.Read(path, f)
	return yamlx.List(err)
}

// checkJenkinsJobs asks Jenkins about the job of every jenkins pipeline,
// as serve does at start (SPEC §4): a job that serve would refuse (not
// found, no GITMON_RUN_ID, credentials refused) is a problem; a Jenkins
// that cannot be reached, and each GITMON_ parameter a job does not
// define, are warnings.
func checkJenkinsJobs(ctx context.Context, cfg *config.Config) (problems, warnings yamlx.Errors) {
	jc := cfg.Integrations.Jenkins
	if jc == nil {
		return nil, nil
	}
	env := runners.Env{Secrets: cfg.Secrets(), Jenkins: app.JenkinsOptions(jc)}
	for _, name := range pipelineNames(cfg, config.RunnerJenkins) {
		path := yamlx.Join(yamlx.Join("pipelines", name), "job")
		job := cfg.Pipelines[name].Job
		if job == "" {
			continue
		}
		if unread := (!jc.User.IsZero() && jc.User.Value() == "") || (!jc.Token.IsZero() && jc.Token.Value() == ""); unread {
			warnings = append(warnings, placed(cfg, path, "the Jenkins job %q was not checked: the integrations.jenkins credentials could not be read", job))
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, runners.DefaultJenkinsStartupTimeout)
		missing, err := runners.CheckJenkinsJob(cctx, job, env)
		cancel()
		var ue *runners.UnreachableError
		switch {
		case errors.As(err, &ue):
			warnings = append(warnings, placed(cfg, path, "the Jenkins job %q was not checked: %v", job, err))
			continue
		case err != nil:
			problems = append(problems, placed(cfg, path, "%v", err))
		}
		for _, param := range missing {
			if param == runners.JenkinsRunIDParameter {
				continue // the problem above
			}
			warnings = append(warnings, placed(cfg, path, "the Jenkins job %q does not define the %s parameter: Jenkins drops it, so its builds do not get it", job, param))
		}
	}
	return problems, warnings
}
