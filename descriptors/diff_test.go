package descriptors_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gitmon-dev/gitmon/descriptors"
)

// desc parses a descriptor from YAML lines, adding service and version
// when the lines do not set them.
func desc(t testing.TB, lines ...string) *descriptors.Descriptor {
	t.Helper()
	body := strings.Join(lines, "\n") + "\n"
	if !strings.Contains(body, "service:") {
		body = "service: app\n" + body
	}
	if !strings.Contains(body, "version:") {
		body = "version: 1.0.0\n" + body
	}
	d, err := descriptors.Parse("", []byte(body))
	if err != nil {
		t.Fatalf("Parse:\n%s\n%v", body, err)
	}
	return d
}

// change is the part of a descriptors.Change a case pins down.
type change struct {
	field string
	kind  descriptors.Kind
	// old and new, when set, are compared with Change.Old and Change.New;
	// added and removed with the set members.
	old, new       string
	added, removed []string
}

func (c change) String() string {
	return fmt.Sprintf("%s %s %q→%q +%v -%v", c.field, c.kind, c.old, c.new, c.added, c.removed)
}

func TestDiff(t *testing.T) {
	cases := []struct {
		name     string
		old, new []string
		want     []change // nil: no change
	}{
		// Version.
		{name: "version up", old: []string{"version: 1.4.2"}, new: []string{"version: 1.5.0"},
			want: []change{{field: "version", kind: descriptors.VersionUp, old: "1.4.2", new: "1.5.0"}}},
		{name: "version 1.9 to 1.10 is up", old: []string{"version: 1.9"}, new: []string{"version: 1.10"},
			want: []change{{field: "version", kind: descriptors.VersionUp, old: "1.9", new: "1.10"}}},
		{name: "version pre-release to release is up", old: []string{"version: 2.0.0-rc.1"}, new: []string{"version: 2.0.0"},
			want: []change{{field: "version", kind: descriptors.VersionUp}}},
		{name: "version down", old: []string{"version: 2.0.0"}, new: []string{"version: 1.9.9"},
			want: []change{{field: "version", kind: descriptors.VersionDown, old: "2.0.0", new: "1.9.9"}}},
		{name: "version incomparable", old: []string{"version: latest"}, new: []string{"version: 1.0.0"},
			want: []change{{field: "version", kind: descriptors.VersionIncomparable, old: "latest", new: "1.0.0"}}},
		{name: "version commit hashes are incomparable", old: []string{"version: 3f2a9c1"}, new: []string{"version: 9b8e7d6"},
			want: []change{{field: "version", kind: descriptors.VersionIncomparable}}},
		{name: "version equivalent spelling", old: []string{"version: 1.4"}, new: []string{"version: 1.4.0"},
			want: []change{{field: "version", kind: descriptors.VersionEquivalent, old: "1.4", new: "1.4.0"}}},
		{name: "version equivalent build metadata", old: []string{"version: 1.0.0+build.1"}, new: []string{"version: 1.0.0+build.2"},
			want: []change{{field: "version", kind: descriptors.VersionEquivalent}}},
		{name: "version same text", old: []string{"version: '1.10'"}, new: []string{"version: 1.10"}},

		// Image.
		{name: "image changed", old: []string{"image: r.example.com/app:1"}, new: []string{"image: r.example.com/app:2"},
			want: []change{{field: "image", kind: descriptors.ImageChanged, old: "r.example.com/app:1", new: "r.example.com/app:2"}}},
		{name: "image set", old: nil, new: []string{"image: r.example.com/app:1"},
			want: []change{{field: "image", kind: descriptors.ImageChanged, old: "", new: "r.example.com/app:1"}}},

		// Ports, as a set.
		{name: "ports added", old: []string{"ports: [8080]"}, new: []string{"ports: [8080, 9090]"},
			want: []change{{field: "ports", kind: descriptors.PortsAdded, old: "8080", new: "8080, 9090", added: []string{"9090"}}}},
		{name: "ports removed", old: []string{"ports: [8080, 9090]"}, new: []string{"ports: [9090]"},
			want: []change{{field: "ports", kind: descriptors.PortsRemoved, removed: []string{"8080"}}}},
		{name: "ports added and removed", old: []string{"ports: [80, 443]"}, new: []string{"ports: [443, 8443]"},
			want: []change{
				{field: "ports", kind: descriptors.PortsAdded, added: []string{"8443"}},
				{field: "ports", kind: descriptors.PortsRemoved, removed: []string{"80"}},
			}},
		{name: "ports reordered", old: []string{"ports: [8080, 9090]"}, new: []string{"ports: [9090, 8080]"}},
		{name: "ports duplicated", old: []string{"ports: [8080]"}, new: []string{"ports: [8080, 8080]"}},
		{name: "ports absent vs empty", old: nil, new: []string{"ports: []"}},
		{name: "ports from none", old: nil, new: []string{"ports: [8080]"},
			want: []change{{field: "ports", kind: descriptors.PortsAdded, added: []string{"8080"}}}},

		// Quantities.
		{name: "cpu up", old: []string{"resources: {cpu: 500m}"}, new: []string{"resources: {cpu: 1}"},
			want: []change{{field: "resources.cpu", kind: descriptors.CPUUp, old: "500m", new: "1"}}},
		{name: "cpu down", old: []string{"resources: {cpu: 2}"}, new: []string{"resources: {cpu: 1500m}"},
			want: []change{{field: "resources.cpu", kind: descriptors.CPUDown}}},
		{name: "cpu set", old: nil, new: []string{"resources: {cpu: 250m}"},
			want: []change{{field: "resources.cpu", kind: descriptors.Set, old: "", new: "250m"}}},
		{name: "cpu unset", old: []string{"resources: {cpu: 250m}"}, new: nil,
			want: []change{{field: "resources.cpu", kind: descriptors.Unset, old: "250m", new: ""}}},
		{name: "cpu same value other spelling", old: []string{"resources: {cpu: 500m}"}, new: []string{"resources: {cpu: 0.5}"}},
		{name: "memory up", old: []string{"resources: {memory: 512Mi}"}, new: []string{"resources: {memory: 1Gi}"},
			want: []change{{field: "resources.memory", kind: descriptors.MemoryUp, old: "512Mi", new: "1Gi"}}},
		{name: "memory down, binary vs decimal", old: []string{"resources: {memory: 1Gi}"}, new: []string{"resources: {memory: 1G}"},
			want: []change{{field: "resources.memory", kind: descriptors.MemoryDown}}},
		{name: "memory set", old: nil, new: []string{"resources: {memory: 1Gi}"},
			want: []change{{field: "resources.memory", kind: descriptors.Set}}},
		{name: "memory unset", old: []string{"resources: {memory: 1Gi}"}, new: []string{"resources: {memory: ~}"},
			want: []change{{field: "resources.memory", kind: descriptors.Unset}}},
		{name: "memory 512Mi equals 536870912", old: []string{"resources: {memory: 512Mi}"}, new: []string{"resources: {memory: 536870912}"}},
		{name: "memory 1e3 equals 1k", old: []string{"resources: {memory: 1e3}"}, new: []string{"resources: {memory: 1k}"}},

		// Domain and port.
		{name: "domain changed", old: []string{"domain: a.example.com"}, new: []string{"domain: b.example.com"},
			want: []change{{field: "domain", kind: descriptors.DomainChanged, old: "a.example.com", new: "b.example.com"}}},
		{name: "port changed", old: []string{"port: 8080"}, new: []string{"port: 8081"},
			want: []change{{field: "port", kind: descriptors.PortChanged, old: "8080", new: "8081"}}},
		{name: "port set", old: nil, new: []string{"port: 8080"},
			want: []change{{field: "port", kind: descriptors.PortChanged, old: "", new: "8080"}}},

		// Healthcheck, field by field.
		{name: "endpoints changed", old: []string{"domain: a.example.com", "healthcheck: {endpoints: [/healthz]}"}, new: []string{"domain: a.example.com", "healthcheck: {endpoints: [/ready]}"},
			want: []change{{field: "healthcheck.endpoints", kind: descriptors.HealthcheckChanged, old: "/healthz", new: "/ready"}}},
		{name: "endpoints order matters", old: []string{"domain: a.example.com", "healthcheck: {endpoints: [/a, /b]}"}, new: []string{"domain: a.example.com", "healthcheck: {endpoints: [/b, /a]}"},
			want: []change{{field: "healthcheck.endpoints", kind: descriptors.HealthcheckChanged, old: "/a, /b", new: "/b, /a"}}},
		{name: "scheme changed", old: nil, new: []string{"healthcheck: {scheme: http}"},
			want: []change{{field: "healthcheck.scheme", kind: descriptors.HealthcheckChanged, old: "https", new: "http"}}},
		{name: "retries changed", old: nil, new: []string{"healthcheck: {retries: 10}"},
			want: []change{{field: "healthcheck.retries", kind: descriptors.HealthcheckChanged, old: "3", new: "10"}}},
		{name: "interval changed", old: []string{"healthcheck: {interval: 10s}"}, new: []string{"healthcheck: {interval: 1m}"},
			want: []change{{field: "healthcheck.interval", kind: descriptors.HealthcheckChanged, old: "10s", new: "1m0s"}}},
		{name: "timeout changed", old: []string{"healthcheck: {timeout: 2s}"}, new: []string{"healthcheck: {timeout: 2500ms}"},
			want: []change{{field: "healthcheck.timeout", kind: descriptors.HealthcheckChanged, old: "2s", new: "2.5s"}}},
		{name: "initial_delay changed", old: nil, new: []string{"healthcheck: {initial_delay: 2m}"},
			want: []change{{field: "healthcheck.initial_delay", kind: descriptors.HealthcheckChanged, old: "0s", new: "2m0s"}}},
		{name: "defaults written out", old: nil, new: []string{"healthcheck: {scheme: https, retries: 3, interval: 5s, timeout: 5000ms, initial_delay: 0s}"}},
		{name: "duration spelling", old: []string{"healthcheck: {interval: 90s}"}, new: []string{"healthcheck: {interval: 1m30s}"}},

		// Notifications, as sets.
		{name: "email added", old: []string{"notifications: {emails: [a@example.com]}"}, new: []string{"notifications: {emails: [a@example.com, b@example.com]}"},
			want: []change{{field: "notifications.emails", kind: descriptors.NotificationsChange, added: []string{"b@example.com"}}}},
		{name: "email removed", old: []string{"notifications: {emails: [a@example.com, b@example.com]}"}, new: []string{"notifications: {emails: [b@example.com]}"},
			want: []change{{field: "notifications.emails", kind: descriptors.NotificationsChange, removed: []string{"a@example.com"}}}},
		{name: "email case is ignored", old: []string{"notifications: {emails: [Alice@Example.com]}"}, new: []string{"notifications: {emails: [alice@example.com]}"}},
		{name: "emails reordered", old: []string{"notifications: {emails: [a@example.com, b@example.com]}"}, new: []string{"notifications: {emails: [b@example.com, a@example.com]}"}},
		{name: "slack changed", old: []string{`notifications: {slack: ["#a", "#b"]}`}, new: []string{`notifications: {slack: ["#b", "#c"]}`},
			want: []change{{field: "notifications.slack", kind: descriptors.NotificationsChange, added: []string{"#c"}, removed: []string{"#a"}}}},
		{name: "slack case counts", old: []string{`notifications: {slack: ["#Ops"]}`}, new: []string{`notifications: {slack: ["#ops"]}`},
			want: []change{{field: "notifications.slack", kind: descriptors.NotificationsChange, added: []string{"#ops"}, removed: []string{"#Ops"}}}},
		{name: "slack reordered", old: []string{`notifications: {slack: ["#a", "#b"]}`}, new: []string{`notifications: {slack: ["#b", "#a"]}`}},

		// Maintainer and service.
		{name: "maintainer changed", old: []string{"maintainer: a@example.com"}, new: []string{"maintainer: b@example.com"},
			want: []change{{field: "maintainer", kind: descriptors.MaintainerChanged, old: "a@example.com", new: "b@example.com"}}},
		{name: "service changed", old: []string{"service: app"}, new: []string{"service: other"},
			want: []change{{field: "service", kind: descriptors.ServiceChanged, old: "app", new: "other"}}},

		// Params, by leaf path.
		{name: "params leaf changed", old: []string{"params: {db: {pool: 5, host: a}}"}, new: []string{"params: {db: {pool: 10, host: a}}"},
			want: []change{{field: "params.db.pool", kind: descriptors.ParamsChanged, old: "5", new: "10"}}},
		{name: "params leaves added and removed", old: []string{"params: {a: 1, b: 2}"}, new: []string{"params: {b: 2, c: {d: x}}"},
			want: []change{
				{field: "params.a", kind: descriptors.ParamsChanged, old: "1", new: ""},
				{field: "params.c.d", kind: descriptors.ParamsChanged, old: "", new: `"x"`},
			}},
		{name: "params 1 equals 1.0", old: []string{"params: {ratio: 1}"}, new: []string{"params: {ratio: 1.0}"}},
		{name: "params string 1 is not number 1", old: []string{"params: {n: 1}"}, new: []string{`params: {n: "1"}`},
			want: []change{{field: "params.n", kind: descriptors.ParamsChanged, old: "1", new: `"1"`}}},
		{name: "params list order counts", old: []string{"params: {l: [1, 2]}"}, new: []string{"params: {l: [2, 1]}"},
			want: []change{{field: "params.l", kind: descriptors.ParamsChanged, old: "[1,2]", new: "[2,1]"}}},
		{name: "params null vs absent key", old: []string{"params: {a: 1}"}, new: []string{"params: {a: 1, b: ~}"},
			want: []change{{field: "params.b", kind: descriptors.ParamsChanged, old: "", new: "null"}}},
		{name: "params empty vs absent", old: nil, new: []string{"params: {}"}},
		{name: "params dotted key is not a nested key", old: []string{"params: {a: {b: 1}}"}, new: []string{`params: {"a.b": 1}`},
			want: []change{
				{field: "params.a.b", kind: descriptors.ParamsChanged, old: "1", new: ""},
				{field: `params["a.b"]`, kind: descriptors.ParamsChanged, old: "", new: "1"},
			}},
		{name: "params key order", old: []string{"params: {a: 1, b: {c: 2, d: 3}}"}, new: []string{"params: {b: {d: 3, c: 2}, a: 1}"}},

		// x- keys.
		{name: "extension changed", old: []string{"x-team: a"}, new: []string{"x-team: b"},
			want: []change{{field: "x-team", kind: descriptors.ExtensionChanged, old: `"a"`, new: `"b"`}}},
		{name: "extension leaf", old: []string{"x-oncall: {primary: a@example.com, backup: c@example.com}"}, new: []string{"x-oncall: {primary: b@example.com, backup: c@example.com}"},
			want: []change{{field: "x-oncall.primary", kind: descriptors.ExtensionChanged}}},
		{name: "extension added", old: nil, new: []string{"x-cost-center: 4711"},
			want: []change{{field: "x-cost-center", kind: descriptors.ExtensionChanged, old: "", new: "4711"}}},

		// Several fields at once come out ordered by field.
		{name: "several", old: []string{"version: 1.0.0", "ports: [80]", "domain: a.example.com", "x-z: 1", "params: {b: 1, a: 1}"},
			new: []string{"version: 1.1.0", "ports: [80, 81]", "domain: b.example.com", "x-z: 2", "params: {b: 2, a: 2}"},
			want: []change{
				{field: "domain", kind: descriptors.DomainChanged},
				{field: "params.a", kind: descriptors.ParamsChanged},
				{field: "params.b", kind: descriptors.ParamsChanged},
				{field: "ports", kind: descriptors.PortsAdded},
				{field: "version", kind: descriptors.VersionUp},
				{field: "x-z", kind: descriptors.ExtensionChanged},
			}},
	}
	kinds := map[descriptors.Kind]bool{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := desc(t, tc.old...), desc(t, tc.new...)
			got := descriptors.Diff(a, b)
			checkChanges(t, got, tc.want)
			if eq := descriptors.Equal(a, b); eq != (len(got) == 0) {
				t.Errorf("Equal = %v but Diff has %d changes", eq, len(got))
			}
			if len(descriptors.Diff(a, a)) != 0 || len(descriptors.Diff(b, b)) != 0 {
				t.Error("a descriptor differs from itself")
			}
			// Reversed, the same fields change.
			if back := descriptors.Diff(b, a); !slices.Equal(back.Fields(), got.Fields()) {
				t.Errorf("Diff(new, old) fields = %v, want %v", back.Fields(), got.Fields())
			}
			for _, c := range got {
				kinds[c.Kind] = true
			}
		})
	}
	t.Run("every kind is covered", func(t *testing.T) {
		// Set and Unset are covered by TestDiffWhole too.
		for _, k := range []descriptors.Kind{
			descriptors.VersionUp, descriptors.VersionDown, descriptors.VersionIncomparable, descriptors.VersionEquivalent,
			descriptors.ImageChanged, descriptors.PortsAdded, descriptors.PortsRemoved,
			descriptors.CPUUp, descriptors.CPUDown, descriptors.MemoryUp, descriptors.MemoryDown,
			descriptors.DomainChanged, descriptors.PortChanged, descriptors.HealthcheckChanged,
			descriptors.NotificationsChange, descriptors.MaintainerChanged, descriptors.ParamsChanged,
			descriptors.ExtensionChanged, descriptors.ServiceChanged, descriptors.Set, descriptors.Unset,
		} {
			if !kinds[k] {
				t.Errorf("no case reports %s", k)
			}
		}
	})
}

func checkChanges(t *testing.T, got descriptors.Changes, want []change) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d changes, want %d:\n%s", len(got), len(want), dump(got))
	}
	for i, w := range want {
		g := got[i]
		ok := g.Field == w.field && g.Kind == w.kind &&
			(w.old == "" && w.new == "" || g.Old == w.old && g.New == w.new) &&
			(w.added == nil || slices.Equal(g.Added, w.added)) &&
			(w.removed == nil || slices.Equal(g.Removed, w.removed))
		if !ok {
			t.Errorf("change %d = %+v, want %v", i, g, w)
		}
	}
	if !slices.IsSortedFunc(got, func(a, b descriptors.Change) int { return strings.Compare(a.Field, b.Field) }) {
		t.Errorf("changes are not ordered by field:\n%s", dump(got))
	}
}

func dump(cs descriptors.Changes) string {
	b, _ := json.MarshalIndent(cs, "", "  ")
	return string(b)
}

// Against no descriptor every field is Set (a new service) or Unset (a
// deleted one), sets and free-form fields included.
func TestDiffWhole(t *testing.T) {
	d := mustParseFile(t, "testdata/good/payments.yaml")
	d.Extensions = map[string]any{"x-team": "payments"}
	d.Params = map[string]any{"pool": int64(5)}
	wantFields := []string{
		"domain", "healthcheck.endpoints", "healthcheck.initial_delay", "healthcheck.interval", "healthcheck.retries",
		"healthcheck.scheme", "healthcheck.timeout", "image", "maintainer", "notifications.emails", "notifications.slack",
		"params.pool", "port", "ports", "resources.cpu", "resources.memory", "service", "version", "x-team",
	}
	for _, tc := range []struct {
		name     string
		old, new *descriptors.Descriptor
		kind     descriptors.Kind
	}{
		{"new service", nil, d, descriptors.Set},
		{"deleted service", d, nil, descriptors.Unset},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := descriptors.Diff(tc.old, tc.new)
			if !slices.Equal(got.Fields(), wantFields) {
				t.Errorf("fields = %v\nwant %v", got.Fields(), wantFields)
			}
			for _, c := range got {
				if c.Kind != tc.kind {
					t.Errorf("%s: kind %s, want %s", c.Field, c.Kind, tc.kind)
				}
				if tc.kind == descriptors.Set && (c.Old != "" || c.New == "") || tc.kind == descriptors.Unset && (c.New != "" || c.Old == "") {
					t.Errorf("%s: old %q, new %q", c.Field, c.Old, c.New)
				}
			}
			if descriptors.Equal(tc.old, tc.new) {
				t.Error("Equal with nil")
			}
		})
	}
	if got := descriptors.Diff(nil, nil); got != nil {
		t.Errorf("Diff(nil, nil) = %v", got)
	}
	if !descriptors.Equal(nil, nil) {
		t.Error("Equal(nil, nil) = false")
	}
	// Defaults and unset values are not fields of a minimal descriptor.
	minimal := mustParseFile(t, "testdata/good/minimal.yaml")
	got := descriptors.Diff(nil, minimal).Fields()
	want := []string{"healthcheck.interval", "healthcheck.retries", "healthcheck.scheme", "healthcheck.timeout", "service", "version"}
	if !slices.Equal(got, want) {
		t.Errorf("Diff(nil, minimal) fields = %v, want %v", got, want)
	}
}

// SPEC §5: an edit with no semantic change yields no record.
func TestDiffIgnoresFormatting(t *testing.T) {
	orig := string(readFile(t, "testdata/good/payments.yaml"))
	base := mustParseFile(t, "testdata/good/payments.yaml")

	var noComments []string
	for _, line := range strings.Split(orig, "\n") {
		if i := strings.Index(line, "  #"); i >= 0 {
			line = strings.TrimRight(line[:i], " ")
		}
		noComments = append(noComments, line)
	}
	lines := strings.Split(strings.TrimSpace(orig), "\n")
	reordered := slices.Clone(lines)
	slices.Reverse(reordered[:3]) // image, version, service
	reordered = append(reordered[3:], reordered[:3]...)

	for name, text := range map[string]string{
		"comments only":     "# a new comment\n" + strings.Join(noComments, "\n") + "\n# trailing\n",
		"keys reordered":    strings.Join(reordered, "\n") + "\n",
		"reordered file":    strings.Replace(string(readFile(t, "testdata/good/reordered.yaml")), "service: reordered", "service: payments", 1),
		"blank lines":       strings.ReplaceAll(orig, "\n", "\n\n"),
		"quoted scalars":    strings.Replace(strings.Replace(orig, "port: 8080", `port: !!int "8080"`, 1), "version: 1.4.2", `version: "1.4.2"`, 1),
		"explicit defaults": orig + "x-unused: ~\n",
	} {
		t.Run(name, func(t *testing.T) {
			d, err := descriptors.Parse("payments.yaml", []byte(text))
			if err != nil {
				t.Fatalf("%v\n%s", err, text)
			}
			if name == "explicit defaults" {
				// x- keys count as fields, even null ones.
				if descriptors.Equal(base, d) {
					t.Error("an added x- key is a change")
				}
				return
			}
			if c := descriptors.Diff(base, d); len(c) != 0 || !descriptors.Equal(base, d) {
				t.Errorf("changes: %s", dump(c))
			}
		})
	}
}

func TestChangesHelpers(t *testing.T) {
	cs := descriptors.Diff(desc(t, "ports: [80]", "port: 1"), desc(t, "ports: [81]", "port: 2"))
	if got := cs.Fields(); !slices.Equal(got, []string{"port", "ports"}) {
		t.Errorf("Fields = %v", got)
	}
	if !cs.Has("ports") || cs.Has("version") {
		t.Errorf("Has is wrong for %v", cs.Fields())
	}
}

// Parsed descriptors are shared between goroutines: comparing them must
// not write to them (run with -race).
func TestDiffConcurrent(t *testing.T) {
	a, b := desc(t, "version: latest"), desc(t, "version: 1.2.3")
	c := descriptors.New() // built in code: no cached semver
	c.Service, c.Version = "app", "1.2.4"
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				descriptors.Diff(a, b)
				descriptors.Diff(b, c)
				descriptors.Equal(a, c)
				a.Semver()
				c.Semver()
			}
		}()
	}
	wg.Wait()
	if k := descriptors.Diff(b, c)[0].Kind; k != descriptors.VersionUp {
		t.Errorf("kind = %s", k)
	}
}

func TestSemverFollowsVersion(t *testing.T) {
	d := desc(t, "version: 1.2.3")
	if v := d.Semver(); v == nil || v.String() != "1.2.3" {
		t.Fatalf("Semver = %v", v)
	}
	d.Version = "2.0.0"
	if v := d.Semver(); v == nil || v.String() != "2.0.0" {
		t.Errorf("after changing Version, Semver = %v", v)
	}
	d.Version = "latest"
	if v := d.Semver(); v != nil {
		t.Errorf("Semver of latest = %v", v)
	}
	if cmp, ok := descriptors.CompareVersions("1.9", "1.10"); !ok || cmp != -1 {
		t.Errorf("CompareVersions(1.9, 1.10) = %d, %v", cmp, ok)
	}
	if _, ok := descriptors.CompareVersions("latest", "1.0"); ok {
		t.Error("latest compared")
	}
}

// MarshalJSON then UnmarshalJSON gives back an Equal descriptor, for
// every good file.
func TestJSONRoundTrip(t *testing.T) {
	for _, file := range yamlFiles(t, "good") {
		t.Run(caseName(file), func(t *testing.T) {
			d := mustParseFile(t, file)
			b, err := d.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			var back descriptors.Descriptor
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("UnmarshalJSON: %v\n%s", err, b)
			}
			if !descriptors.Equal(d, &back) {
				t.Errorf("round trip changed: %s", dump(descriptors.Diff(d, &back)))
			}
			if err := back.Validate(); err != nil {
				t.Errorf("the round trip does not validate: %v", err)
			}
			b2, err := back.MarshalJSON()
			if err != nil || string(b2) != string(b) {
				t.Errorf("second MarshalJSON differs:\n%s\n%s", b, b2)
			}
		})
	}
}

// json.Marshal of a Descriptor value (not a pointer) must still use
// MarshalJSON's form when embedded by pointer in other types.
func TestJSONEmbedded(t *testing.T) {
	d := desc(t, "x-team: a")
	b, err := json.Marshal(struct {
		D *descriptors.Descriptor `json:"d"`
	}{d})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"x-team":"a"`) || !strings.Contains(string(b), `"notifications":{"emails":[],"slack":[]}`) {
		t.Errorf("got %s", b)
	}
}
