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

// threeEnvs is a config with qa, staging and prod; policy blocks are
// inserted per environment and globally.
func threeEnvs(global string, envPolicies ...string) string {
	var b strings.Builder
	b.WriteString("repositories: [{name: r, url: https://git.example.com/r.git}]\nenvironments:\n")
	for i, name := range []string{"qa", "staging", "prod"} {
		fmt.Fprintf(&b, "  - name: %s\n    release: []\n", name)
		if i < len(envPolicies) && envPolicies[i] != "" {
			b.WriteString("    policy:\n" + indent(envPolicies[i], "      "))
		}
	}
	if global != "" {
		b.WriteString("policy:\n" + indent(global, "  "))
	}
	return b.String()
}

func TestPromotionFrom(t *testing.T) {
	cfg, _, err := Parse("gitmon.yaml", []byte(threeEnvs("promotion: {soak: 1d}", "", "promotion: {required: true}", "promotion: {required: true, from: qa, wait: 2d12h}")), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		from       string
		required   bool
		soak, wait time.Duration
	}{
		{"", false, 24 * time.Hour, time.Hour},
		{"qa", true, 24 * time.Hour, time.Hour},      // the environment listed just before
		{"qa", true, 24 * time.Hour, 60 * time.Hour}, // an earlier one, named
	}
	for i, w := range want {
		p := cfg.Environments[i].Policy.Promotion
		if p.From != w.from || p.Required != w.required || p.Soak != w.soak || p.Wait != w.wait || !slices.Equal(p.Fields, []string{"version", "image"}) {
			t.Errorf("%s: promotion %+v, want %+v", cfg.Environments[i].Name, p, w)
		}
	}
	if cfg.Policy.Promotion.From != "" {
		t.Errorf("the global policy has no upstream: from %q", cfg.Policy.Promotion.From)
	}
}

// Each promotion problem is placed at the key it comes from, as
// file:line:col with the key path, even when it is inherited.
func TestPromotionProblems(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want string // file:line:col: path: message, in part
	}{
		{"required on the first environment", threeEnvs("", "promotion: {required: true}"),
			`gitmon.yaml:6:29: environments[0].policy.promotion.required: "qa" is listed first, so it has no upstream`},
		{"required on every environment, globally", threeEnvs("promotion: {required: true}"),
			`gitmon.yaml:10:25: environments[0].policy.promotion.required: "qa" is listed first`},
		{"from a later environment", threeEnvs("", "", "promotion: {from: prod}"),
			`gitmon.yaml:8:25: environments[1].policy.promotion.from: "prod" is listed after "staging"`},
		{"from itself", threeEnvs("", "", "", "promotion: {from: prod}"),
			`gitmon.yaml:10:25: environments[2].policy.promotion.from: "prod" cannot promote from itself`},
		{"from nowhere", threeEnvs("", "", "", "promotion: {from: uat}"),
			`gitmon.yaml:10:25: environments[2].policy.promotion.from: no environment is named "uat"`},
		{"inherited from", threeEnvs("promotion: {from: staging}"),
			`gitmon.yaml:10:21: environments[0].policy.promotion.from: "staging" is listed after "qa"`},
		{"no fields", threeEnvs("", "", "promotion: {fields: []}"),
			`gitmon.yaml:8:27: environments[1].policy.promotion.fields: at least one field is needed`},
		{"a bad field", threeEnvs("promotion: {fields: [version, tag]}"),
			`gitmon.yaml:10:33: policy.promotion.fields[1]: "tag" is not a descriptor field`},
		{"no wait", threeEnvs("", "", "promotion: {wait: 0s}"),
			`gitmon.yaml:8:25: environments[1].policy.promotion.wait: must be more than zero`},
		{"a soak that is no duration", threeEnvs("", "", "promotion: {soak: a week}"),
			`gitmon.yaml:8:25: environments[1].policy.promotion.soak: expected a duration such as 30s, 5m or 7d, found "a week"`},
		{"an empty label", threeEnvs("break_glass: {jira_labels: [emergency, '']}"),
			`gitmon.yaml:10:42: policy.break_glass.jira_labels[1]: must not be empty`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := Parse("gitmon.yaml", []byte(c.src), Options{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v\nwant a problem %q in\n%s", err, c.want, c.src)
			}
			want := 1
			if c.name == "inherited from" {
				want = 2 // staging, too, cannot promote from itself
			}
			if n := len(yamlx.List(err)); n != want {
				t.Errorf("%d problems, want %d:\n%v", n, want, err)
			}
		})
	}
}

// Windows merge like every list (SPEC §3): an override replaces the
// global list, [] empties it, and null or absence inherits it.
func TestWindowsMerge(t *testing.T) {
	global := `windows: [{kind: deny, schedule: "0 0 20 12 *", duration: 17d}]`
	cfg, _, err := Parse("gitmon.yaml", []byte(threeEnvs(global,
		"windows: []",
		"windows: ~",
		`windows: [{kind: allow, schedule: "0 9 * * 1-5", duration: 8h, timezone: Europe/Rome}]`)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	freeze := policy.Window{Kind: "deny", Schedule: "0 0 20 12 *", Duration: 17 * 24 * time.Hour}
	work := policy.Window{Kind: "allow", Schedule: "0 9 * * 1-5", Duration: 8 * time.Hour, Timezone: "Europe/Rome"}
	want := [][]policy.Window{{}, {freeze}, {work}}
	for i, w := range want {
		if got := cfg.Environments[i].Policy.Windows; !slices.Equal(got, w) {
			t.Errorf("%s: windows %v, want %v", cfg.Environments[i].Name, got, w)
		}
	}
	if !slices.Equal(cfg.Policy.Windows, []policy.Window{freeze}) {
		t.Errorf("global windows changed: %v", cfg.Policy.Windows)
	}
}

// A window's problem names its environment, window and key, at the line
// and column of the value.
func TestWindowProblemPositions(t *testing.T) {
	src := threeEnvs(`windows: [{kind: deny, schedule: "0 0 * * *", duration: 1h}]`, "", "",
		"windows:\n  - {kind: deny, schedule: \"0 0 * * *\", duration: 1h, timezone: Europe/Roma}\n  - {kind: allow, schedule: \"0 0 9 * * *\", duration: 1d, size: 3}")
	_, _, err := Parse("gitmon.yaml", []byte(src), Options{})
	got := map[string]string{}
	for _, e := range yamlx.List(err) {
		got[e.Path] = fmt.Sprintf("%d:%d %s", e.Line, e.Column, e.Msg)
	}
	want := map[string]string{
		"environments[2].policy.windows[0].timezone": `11:71 unknown time zone "Europe/Roma"`,
		"environments[2].policy.windows[1].schedule": `12:35 "0 0 9 * * *" has 6 fields`,
		"environments[2].policy.windows[1].size":     `12:64 unknown key`,
	}
	for path, w := range want {
		if !strings.HasPrefix(got[path], w) {
			t.Errorf("%s: %q, want %q…", path, got[path], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("problems %v, want only %v", got, want)
	}
}

func TestBreakGlassWithoutJiraWarns(t *testing.T) {
	_, w, err := Parse("gitmon.yaml", []byte(threeEnvs("", "", "", "break_glass: {jira_labels: [emergency-change]}")), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(w.String(), "gitmon.yaml:10:34: environments[2].policy.break_glass.jira_labels: break-glass labels are set but integrations.jira is not") {
		t.Errorf("warnings:\n%s", w)
	}
	src := threeEnvs("break_glass: {jira_labels: [emergency-change]}") + "integrations: {jira: {url: https://jira.example.com, token_env: T}}\n"
	_, w, err = Parse("gitmon.yaml", []byte(src), Options{LookupEnv: lookupIn(map[string]string{"T": "x"})})
	if err != nil || strings.Contains(w.String(), "break-glass") {
		t.Errorf("with jira: %v\n%s", err, w)
	}
}
