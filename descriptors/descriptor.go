// Package descriptors is gitmon's public descriptor schema: the YAML file
// that describes one service in one environment (SPEC §2). It owns strict
// parsing with positions, validation, the semantic Diff that decides
// whether a commit changed a service, and the JSON Schema for editors.
//
// Descriptors are untrusted input: Parse rejects oversized, binary,
// non-UTF-8, alias-bomb, over-nested and duplicate-key files before it
// decodes anything, and every error names the file, line and key.
package descriptors

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
)

// MaxSize is the largest descriptor file accepted.
const MaxSize = 256 << 10

// MaxFields is the most leaf fields (params.* and x-* leaves included) a
// descriptor may have.
const MaxFields = 1000

// Defaults of SPEC §2.
const (
	DefaultScheme   = "https"
	DefaultRetries  = 3
	DefaultInterval = 5 * time.Second
	DefaultTimeout  = 5 * time.Second
)

// Limits of SPEC §2.
const (
	MaxRetries      = 100
	MaxInterval     = 10 * time.Minute
	MaxTimeout      = time.Minute
	MaxInitialDelay = 30 * time.Minute
)

// Descriptor is one service's deployment request, with defaults applied.
type Descriptor struct {
	Service       string         `yaml:"service,required"`
	Version       string         `yaml:"version,required"`
	Image         string         `yaml:"image"`
	Healthcheck   Healthcheck    `yaml:"healthcheck"`
	Domain        string         `yaml:"domain"`
	Port          int            `yaml:"port"`
	Resources     Resources      `yaml:"resources"`
	Ports         []int          `yaml:"ports"`
	Notifications Notifications  `yaml:"notifications"`
	Maintainer    string         `yaml:"maintainer"`
	Params        map[string]any `yaml:"params"`
	// Extensions holds the top-level keys that start with "x-".
	Extensions map[string]any `yaml:",extensions"`

	semver *semver.Version // parsed Version, when it is semver-like
}

// Healthcheck says how the http runner checks a deployed service.
type Healthcheck struct {
	Endpoints    []string `yaml:"endpoints"`
	Scheme       string   `yaml:"scheme"`
	Retries      int      `yaml:"retries"`
	Interval     Duration `yaml:"interval"`
	Timeout      Duration `yaml:"timeout"`
	InitialDelay Duration `yaml:"initial_delay"`
}

// Resources is the service's CPU and memory quota.
type Resources struct {
	CPU    Quantity `yaml:"cpu"`
	Memory Quantity `yaml:"memory"`
}

// Notifications are the service's own recipients.
type Notifications struct {
	Emails []string `yaml:"emails" json:"emails"`
	Slack  []string `yaml:"slack" json:"slack"`
}

// New returns a descriptor holding only the defaults.
func New() *Descriptor {
	return &Descriptor{Healthcheck: Healthcheck{
		Scheme:   DefaultScheme,
		Retries:  DefaultRetries,
		Interval: Duration(DefaultInterval),
		Timeout:  Duration(DefaultTimeout),
	}}
}

// Stem returns the service name a descriptor file must declare: its base
// name without the extension.
func Stem(file string) string {
	base := filepath.Base(file)
	return strings.TrimSuffix(base, filepath.Ext(base))
}

// Semver returns the version parsed as semantic version, or nil when it
// is not one (such as "latest" or a commit hash). It never modifies d, so
// goroutines may share a descriptor: Parse and UnmarshalJSON parse the
// version once, and a Version changed since is parsed again on each call.
func (d *Descriptor) Semver() *semver.Version {
	if v := d.semver; v != nil && v.Original() == d.Version {
		return v
	}
	v, err := semver.NewVersion(d.Version)
	if err != nil {
		return nil
	}
	return v
}

// CompareVersions compares two version strings by semantic-version
// precedence. ok is false when either is not a semantic version.
func CompareVersions(a, b string) (cmp int, ok bool) {
	va, err1 := semver.NewVersion(a)
	vb, err2 := semver.NewVersion(b)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return va.Compare(vb), true
}

// Duration is a time.Duration written as "10s" or "5m" in YAML and JSON.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAMLScalar reads d from YAML.
func (d *Duration) UnmarshalYAMLScalar(value, tag string) error {
	v, err := time.ParseDuration(value)
	if err != nil {
		return fmt.Errorf("expected a duration such as 10s or 5m, found %q", value)
	}
	if v < 0 {
		return fmt.Errorf("duration %q must not be negative", value)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON renders d as "10s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads d from "10s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	return d.UnmarshalYAMLScalar(s, "!!str")
}

// jsonDescriptor is the wire form: every key present, lists never null.
type jsonDescriptor struct {
	Service       string          `json:"service"`
	Version       string          `json:"version"`
	Image         string          `json:"image"`
	Healthcheck   jsonHealthcheck `json:"healthcheck"`
	Domain        string          `json:"domain"`
	Port          int             `json:"port"`
	Resources     jsonResources   `json:"resources"`
	Ports         []int           `json:"ports"`
	Notifications Notifications   `json:"notifications"`
	Maintainer    string          `json:"maintainer"`
	Params        map[string]any  `json:"params"`
}

type jsonHealthcheck struct {
	Endpoints    []string `json:"endpoints"`
	Scheme       string   `json:"scheme"`
	Retries      int      `json:"retries"`
	Interval     Duration `json:"interval"`
	Timeout      Duration `json:"timeout"`
	InitialDelay Duration `json:"initial_delay"`
}

type jsonResources struct {
	CPU    Quantity `json:"cpu"`
	Memory Quantity `json:"memory"`
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// MarshalJSON renders the descriptor as runners receive it (SPEC §4): the
// SPEC §2 keys with defaults applied, lists as [] rather than null, and
// the x- keys at the top level.
func (d *Descriptor) MarshalJSON() ([]byte, error) {
	params := d.Params
	if params == nil {
		params = map[string]any{}
	}
	j := jsonDescriptor{
		Service: d.Service, Version: d.Version, Image: d.Image,
		Healthcheck: jsonHealthcheck{
			Endpoints: orEmpty(d.Healthcheck.Endpoints), Scheme: d.Healthcheck.Scheme, Retries: d.Healthcheck.Retries,
			Interval: d.Healthcheck.Interval, Timeout: d.Healthcheck.Timeout, InitialDelay: d.Healthcheck.InitialDelay,
		},
		Domain: d.Domain, Port: d.Port,
		Resources:     jsonResources(d.Resources),
		Ports:         orEmpty(d.Ports),
		Notifications: Notifications{Emails: orEmpty(d.Notifications.Emails), Slack: orEmpty(d.Notifications.Slack)},
		Maintainer:    d.Maintainer, Params: params,
	}
	b, err := json.Marshal(j)
	if err != nil || len(d.Extensions) == 0 {
		return b, err
	}
	keys := make([]string, 0, len(d.Extensions))
	for k := range d.Extensions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var buf bytes.Buffer
	buf.Write(b[:len(b)-1])
	for _, k := range keys {
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(d.Extensions[k])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		buf.WriteByte(',')
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(vb)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// UnmarshalJSON reads the form MarshalJSON writes, so stored descriptors
// can be read back. It is not a second input format: it trusts its input.
func (d *Descriptor) UnmarshalJSON(b []byte) error {
	var j jsonDescriptor
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	params, err := decodeFree(all["params"])
	if err != nil {
		return fmt.Errorf("params: %w", err)
	}
	j.Params, _ = params.(map[string]any)
	*d = Descriptor{
		Service: j.Service, Version: j.Version, Image: j.Image,
		Healthcheck: Healthcheck{
			Endpoints: j.Healthcheck.Endpoints, Scheme: j.Healthcheck.Scheme, Retries: j.Healthcheck.Retries,
			Interval: j.Healthcheck.Interval, Timeout: j.Healthcheck.Timeout, InitialDelay: j.Healthcheck.InitialDelay,
		},
		Domain: j.Domain, Port: j.Port, Resources: Resources(j.Resources), Ports: j.Ports,
		Notifications: j.Notifications, Maintainer: j.Maintainer, Params: j.Params,
	}
	for k, raw := range all {
		if strings.HasPrefix(k, "x-") {
			v, err := decodeFree(raw)
			if err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			if d.Extensions == nil {
				d.Extensions = map[string]any{}
			}
			d.Extensions[k] = v
		}
	}
	d.semver, _ = semver.NewVersion(d.Version)
	return nil
}

// decodeFree reads free-form JSON into the types Parse gives free-form
// YAML: integers as int64 and other numbers as float64, so that a large
// integer survives the round trip exactly.
func decodeFree(raw json.RawMessage) (any, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return numbers(v), nil
}

func numbers(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = numbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = numbers(e)
		}
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		if f, err := v.Float64(); err == nil {
			return f
		}
		return v.String()
	}
	return v
}
