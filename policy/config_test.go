package policy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/policy"
)

// Check names every bad promotion, windows and break_glass setting by its
// path within the policy block.
func TestConfigCheckPromotionWindowsBreakGlass(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*policy.Config)
		path string
		msg  string
	}{
		{"no fields", func(c *policy.Config) { c.Promotion.Fields = []string{} }, "promotion.fields", "at least one field"},
		{"unknown field", func(c *policy.Config) { c.Promotion.Fields = []string{"version", "verison"} }, "promotion.fields[1]", `"verison" is not a descriptor field`},
		{"empty field", func(c *policy.Config) { c.Promotion.Fields = []string{""} }, "promotion.fields[0]", "must not be empty"},
		{"field with a space", func(c *policy.Config) { c.Promotion.Fields = []string{"params.a b"} }, "promotion.fields[0]", "no spaces"},
		{"empty key", func(c *policy.Config) { c.Promotion.Fields = []string{"params.chart."} }, "promotion.fields[0]", "empty key"},
		{"unknown leaf of a block", func(c *policy.Config) { c.Promotion.Fields = []string{"healthcheck.path"} }, "promotion.fields[0]", "not a descriptor field"},
		{"field twice", func(c *policy.Config) { c.Promotion.Fields = []string{"image", "image"} }, "promotion.fields[1]", "listed twice"},
		{"negative soak", func(c *policy.Config) { c.Promotion.Soak = -time.Second }, "promotion.soak", "negative"},
		{"no wait", func(c *policy.Config) { c.Promotion.Wait = 0 }, "promotion.wait", "more than zero"},
		{"bad window", func(c *policy.Config) {
			c.Windows = []policy.Window{allow(workdays, hour, ""), allow(workdays, hour, "Nowhere/Land")}
		}, "windows[1].timezone", "unknown time zone"},
		{"empty label", func(c *policy.Config) { c.BreakGlass.JiraLabels = []string{"emergency-change", " "} }, "break_glass.jira_labels[1]", "must not be empty"},
		{"label with a space", func(c *policy.Config) { c.BreakGlass.JiraLabels = []string{"emergency change"} }, "break_glass.jira_labels[0]", "no spaces"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := policy.DefaultConfig()
			c.mod(&cfg)
			ps := cfg.Check()
			if len(ps) != 1 || ps[0].Path != c.path || !strings.Contains(ps[0].Msg, c.msg) {
				t.Errorf("problems %v, want one at %s saying %q", ps, c.path, c.msg)
			}
			if _, err := policy.New(cfg, nil); err == nil || !strings.Contains(err.Error(), "policy."+c.path) {
				t.Errorf("New: %v, want an error naming policy.%s", err, c.path)
			}
		})
	}

	cfg := policy.DefaultConfig()
	cfg.Promotion = policy.Promotion{Required: true, From: "staging", Fields: []string{"version", "image", "resources", "params", "params.chart", `params["a.b"]`, "x-team", "x-build.id", "healthcheck.endpoints"}, Wait: time.Minute}
	cfg.Windows = []policy.Window{allow(workdays, 8*hour, rome), deny("0 0 20 12 *", 408*hour, "")}
	cfg.BreakGlass.JiraLabels = []string{"emergency-change"}
	if ps := cfg.Check(); ps != nil {
		t.Errorf("a good config: %v", ps)
	}
	e, err := policy.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.Windows() == nil || e.Windows().At(instant(t, "2026-12-25T10:00:00Z")).Open {
		t.Error("the engine's windows do not hold the winter freeze")
	}
	if e, _ := policy.New(policy.DefaultConfig(), nil); e.Windows() != nil {
		t.Error("no windows should compile to nil")
	}
}
