package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/internal/yamlx"
	"github.com/gitmon-dev/gitmon/policy"
)

// mergeConfig wraps a global policy and one environment's override in an
// otherwise valid config.
func mergeConfig(global, override string) string {
	s := "repositories: [{name: r, url: https://git.example.com/r.git}]\n" +
		"integrations: {jira: {url: https://jira.example.com, token_file: /dev/null}}\n" +
		"environments:\n  - name: qa\n    release: []\n"
	if override != "" {
		s += "    policy:\n" + indent(override, "      ")
	}
	if global != "" {
		s += "policy:\n" + indent(global, "  ")
	}
	return s
}

func indent(s, pad string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = pad + l
	}
	return strings.Join(lines, "\n") + "\n"
}

func deref(p *[]string) []string {
	if p == nil {
		return nil
	}
	return *p
}

func TestPolicyMerge(t *testing.T) {
	tests := []struct {
		name             string
		global, override string
		check            func(t *testing.T, g, e *policy.Config)
	}{{
		name:     "absent key inherits",
		global:   "identity: author\nforce_push: allow\nskip_markers: [nope]",
		override: "force_push: reject",
		check: func(t *testing.T, g, e *policy.Config) {
			if e.Identity != "author" || !slices.Equal(e.SkipMarkers, []string{"nope"}) {
				t.Errorf("not inherited: identity %q, skip_markers %q", e.Identity, e.SkipMarkers)
			}
			if e.ForcePush != "reject" || g.ForcePush != "allow" {
				t.Errorf("force_push: env %q, global %q", e.ForcePush, g.ForcePush)
			}
		},
	}, {
		name:     "null inherits",
		global:   "identity: author",
		override: "identity: ~",
		check: func(t *testing.T, g, e *policy.Config) {
			if e.Identity != "author" {
				t.Errorf("identity %q, want author", e.Identity)
			}
		},
	}, {
		name:     "list replaces, never appends",
		global:   `committers: [a@example.com, b@example.com]` + "\nskip_markers: [x, y]",
		override: `committers: [c@example.com]` + "\nskip_markers: []",
		check: func(t *testing.T, g, e *policy.Config) {
			if got := deref(e.Committers); !slices.Equal(got, []string{"c@example.com"}) {
				t.Errorf("committers %q", got)
			}
			if len(e.SkipMarkers) != 0 {
				t.Errorf("skip_markers %q, want none", e.SkipMarkers)
			}
			if got := deref(g.Committers); len(got) != 2 {
				t.Errorf("global changed: %q", got)
			}
		},
	}, {
		name: "nested maps recurse",
		global: `
jira: {required: false, projects: [OPS], statuses: [Done], unavailable_timeout: 5m}
changes: {max_cpu: "2", max_memory: 1Gi, allowed_ports: ["443"], allow_delete: true}`,
		override: `
jira: {required: true, statuses: [Approved]}
changes: {max_memory: 8Gi}`,
		check: func(t *testing.T, g, e *policy.Config) {
			j := e.Jira
			if !j.Required || !slices.Equal(j.Statuses, []string{"Approved"}) || !slices.Equal(j.Projects, []string{"OPS"}) || j.UnavailableTimeout != 5*time.Minute {
				t.Errorf("jira: %+v", j)
			}
			c := e.Changes
			if c.MaxCPU.String() != "2" || c.MaxMemory.String() != "8Gi" || !slices.Equal(deref(c.AllowedPorts), []string{"443"}) || !c.AllowDelete {
				t.Errorf("changes: %+v", c)
			}
			if g.Jira.Required || g.Changes.MaxMemory.String() != "1Gi" {
				t.Errorf("global changed: %+v %+v", g.Jira, g.Changes)
			}
		},
	}, {
		name:     "empty list means nothing allowed",
		global:   `committers: ["*"]`,
		override: `committers: []`,
		check: func(t *testing.T, g, e *policy.Config) {
			if e.Committers == nil || len(*e.Committers) != 0 {
				t.Errorf("committers %v, want an empty, non-nil list", e.Committers)
			}
		},
	}, {
		name:     "absent list means no limit",
		global:   `identity: committer`,
		override: `email_domains: [example.com]`,
		check: func(t *testing.T, g, e *policy.Config) {
			if e.Committers != nil || g.Committers != nil {
				t.Errorf("committers %v / %v, want nil (no limit)", e.Committers, g.Committers)
			}
			if e.Changes.AllowedPorts != nil || e.Changes.HealthcheckHosts != nil {
				t.Error("changes allowlists should be nil")
			}
		},
	}, {
		name:   "no override at all",
		global: `committers: [a@example.com]` + "\njira: {projects: [OPS]}",
		check: func(t *testing.T, g, e *policy.Config) {
			if !slices.Equal(deref(e.Committers), []string{"a@example.com"}) || !slices.Equal(e.Jira.Projects, []string{"OPS"}) {
				t.Errorf("env policy %+v", e)
			}
		},
	}, {
		name:     "no global at all",
		override: `committers: [a@example.com]`,
		check: func(t *testing.T, g, e *policy.Config) {
			def := policy.DefaultConfig()
			if g.Committers != nil || g.Identity != def.Identity || !slices.Equal(g.SkipMarkers, def.SkipMarkers) {
				t.Errorf("global %+v, want the defaults", g)
			}
			if !slices.Equal(deref(e.Committers), []string{"a@example.com"}) || e.Jira.UnavailableTimeout != def.Jira.UnavailableTimeout {
				t.Errorf("env policy %+v", e)
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := mergeConfig(tt.global, tt.override)
			cfg, _, err := Parse("gitmon.yaml", []byte(src), Options{})
			if err != nil {
				t.Fatalf("%v\n%s", err, src)
			}
			tt.check(t, &cfg.Policy, &cfg.Environments[0].Policy)
		})
	}
}

// Aliases are resolved before merging, and the merge changes neither
// input: two environments sharing one override see the same result.
func TestPolicyMergeAliases(t *testing.T) {
	// An alias must follow its anchor, so the global policy comes first.
	src := `
policy:
  jira: {required: true, projects: [OPS], statuses: [Done]}
  changes: &c {max_cpu: "1"}
repositories: [{name: r, url: https://git.example.com/r.git}]
environments:
  - name: a
    release: []
    policy: &p {jira: {statuses: [Approved]}, changes: *c}
  - name: b
    release: []
    policy: *p
integrations: {jira: {url: https://jira.example.com, token_env: T}}
`
	cfg, _, err := Parse("gitmon.yaml", []byte(src), Options{LookupEnv: lookupIn(map[string]string{"T": "x"})})
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	for _, e := range cfg.Environments {
		j := e.Policy.Jira
		if !j.Required || !slices.Equal(j.Statuses, []string{"Approved"}) || !slices.Equal(j.Projects, []string{"OPS"}) || e.Policy.Changes.MaxCPU.String() != "1" {
			t.Errorf("%s: %+v %+v", e.Name, j, e.Policy.Changes)
		}
	}
	if !slices.Equal(cfg.Policy.Jira.Statuses, []string{"Done"}) {
		t.Errorf("global statuses changed: %q", cfg.Policy.Jira.Statuses)
	}
}

// A problem keeps the line of the node its value came from: an inherited
// bad value is reported once, at the global key; an override's own
// problem is reported at the override.
func TestPolicyMergePositions(t *testing.T) {
	src := `repositories: [{name: r, url: https://git.example.com/r.git}]
environments:
  - name: qa
    release: []
  - name: prod
    release: []
    policy:
      force_push: never
      jira: {required: true}
policy:
  identity: nobody
  committers: ["[x"]
`
	_, _, err := Parse("gitmon.yaml", []byte(src), Options{})
	got := map[string]string{}
	for _, e := range yamlx.List(err) {
		got[e.Path] = fmt.Sprintf("%d:%d", e.Line, e.Column)
	}
	want := map[string]string{
		"environments[1].policy.force_push":    "8:19",
		"environments[1].policy.jira.statuses": "9:13",
		"environments[1].policy.jira.required": "9:24",
		"policy.identity":                      "11:13",
		"policy.committers[0]":                 "12:16",
	}
	for path, pos := range want {
		if got[path] != pos {
			t.Errorf("%s at %q, want %q", path, got[path], pos)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got problems %v, want only %v\n%v", got, want, err)
	}
}

func TestAllowlistNullIsAnError(t *testing.T) {
	for _, src := range []string{
		mergeConfig("committers:", ""),
		mergeConfig("", "committers:"),
		mergeConfig("changes: {allowed_ports: }", ""),
		mergeConfig("email_domains: ~", ""),
		mergeConfig("", "changes:\n  healthcheck_hosts: null"),
	} {
		_, _, err := Parse("gitmon.yaml", []byte(src), Options{})
		if err == nil || !strings.Contains(err.Error(), "an empty value is ambiguous") {
			t.Errorf("want an ambiguity error for\n%s\ngot %v", src, err)
		}
	}
}

func TestCommittersWarning(t *testing.T) {
	has := func(w Warnings) bool { return strings.Contains(w.String(), "no committers allowlist") }
	_, w, err := Parse("gitmon.yaml", []byte(mergeConfig("identity: author", "")), Options{})
	if err != nil || !has(w) {
		t.Errorf("none anywhere: want the warning, got %v / %v", w, err)
	}
	_, w, err = Parse("gitmon.yaml", []byte(mergeConfig("", "committers: []")), Options{})
	if err != nil || has(w) {
		t.Errorf("set in an environment: want no warning, got %v / %v", w, err)
	}
	_, w, err = Parse("gitmon.yaml", []byte(mergeConfig(`committers: ["*"]`, "")), Options{})
	if err != nil || has(w) {
		t.Errorf("set globally: want no warning, got %v / %v", w, err)
	}
}
