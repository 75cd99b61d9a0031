package descriptors

import (
	"encoding/json"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Field names: the leaf paths of a descriptor that Diff reports and that
// policy attributes to commits. Params and x- keys add their own leaf
// paths below "params." and "x-…"; a key that is empty or holds one of
// . [ ] " is quoted, as in params["a.b"].
const (
	FieldService       = "service"
	FieldVersion       = "version"
	FieldImage         = "image"
	FieldEndpoints     = "healthcheck.endpoints"
	FieldScheme        = "healthcheck.scheme"
	FieldRetries       = "healthcheck.retries"
	FieldInterval      = "healthcheck.interval"
	FieldTimeout       = "healthcheck.timeout"
	FieldInitialDelay  = "healthcheck.initial_delay"
	FieldDomain        = "domain"
	FieldPort          = "port"
	FieldCPU           = "resources.cpu"
	FieldMemory        = "resources.memory"
	FieldPorts         = "ports"
	FieldEmails        = "notifications.emails"
	FieldSlack         = "notifications.slack"
	FieldMaintainer    = "maintainer"
	paramsPrefix       = "params."
	extensionKeyPrefix = "x-"
)

// Kind says what sort of change a Change is.
type Kind string

// The kinds of change Diff reports.
const (
	VersionUp           Kind = "version-up"
	VersionDown         Kind = "version-down"
	VersionIncomparable Kind = "version-incomparable" // either side is not a semantic version
	VersionEquivalent   Kind = "version-equivalent"   // other text, same precedence (1.4 → 1.4.0, build metadata)
	ImageChanged        Kind = "image-changed"
	PortsAdded          Kind = "ports-added"
	PortsRemoved        Kind = "ports-removed"
	CPUUp               Kind = "cpu-up"
	CPUDown             Kind = "cpu-down"
	MemoryUp            Kind = "memory-up"
	MemoryDown          Kind = "memory-down"
	DomainChanged       Kind = "domain-changed"
	PortChanged         Kind = "port-changed"
	HealthcheckChanged  Kind = "healthcheck-changed"
	NotificationsChange Kind = "notifications-changed"
	MaintainerChanged   Kind = "maintainer-changed"
	ParamsChanged       Kind = "params-changed"
	ExtensionChanged    Kind = "extension-changed"
	ServiceChanged      Kind = "service-changed"
	// Set and Unset are quotas or versions that appear or disappear, and
	// every field of a descriptor diffed against none.
	Set   Kind = "set"
	Unset Kind = "unset"
)

// Change is one field that differs between two descriptors.
type Change struct {
	Field string `json:"field"`
	Kind  Kind   `json:"kind"`
	// Old and New are display values; "" is absent. Lists are joined with ", ".
	Old string `json:"old"`
	New string `json:"new"`
	// Added and Removed list the members of a set field (ports, e-mails,
	// Slack channels) that changed.
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
}

// Changes is the result of Diff, ordered by field.
type Changes []Change

// Fields returns the distinct fields that changed, in order.
func (cs Changes) Fields() []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		if len(out) == 0 || out[len(out)-1] != c.Field {
			out = append(out, c.Field)
		}
	}
	return out
}

// Has reports whether field changed.
func (cs Changes) Has(field string) bool {
	for _, c := range cs {
		if c.Field == field {
			return true
		}
	}
	return false
}

// Equal reports whether a and b are the same deployment request: defaults
// applied, quantities compared by value, sets as sets. It agrees with
// len(Diff(a, b)) == 0 and stops at the first difference.
func Equal(a, b *Descriptor) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Service != b.Service || a.Version != b.Version || a.Image != b.Image || a.Domain != b.Domain ||
		a.Port != b.Port || a.Maintainer != b.Maintainer {
		return false
	}
	ha, hb := &a.Healthcheck, &b.Healthcheck
	if !slices.Equal(ha.Endpoints, hb.Endpoints) || ha.Scheme != hb.Scheme || ha.Retries != hb.Retries ||
		ha.Interval != hb.Interval || ha.Timeout != hb.Timeout || ha.InitialDelay != hb.InitialDelay {
		return false
	}
	if a.Resources.CPU.Cmp(b.Resources.CPU) != 0 || a.Resources.Memory.Cmp(b.Resources.Memory) != 0 {
		return false
	}
	if !samePorts(a.Ports, b.Ports) {
		return false
	}
	if add, rem := setDiff(a.Notifications.Emails, b.Notifications.Emails, true); len(add)+len(rem) > 0 {
		return false
	}
	if add, rem := setDiff(a.Notifications.Slack, b.Notifications.Slack, false); len(add)+len(rem) > 0 {
		return false
	}
	if (len(a.Params) > 0 || len(b.Params) > 0) && len(free(nil, "params", ParamsChanged, a.Params, b.Params)) > 0 {
		return false
	}
	if (len(a.Extensions) > 0 || len(b.Extensions) > 0) && len(free(nil, "", ExtensionChanged, a.Extensions, b.Extensions)) > 0 {
		return false
	}
	return true
}

func samePorts(a, b []int) bool {
	for _, p := range a {
		if !slices.Contains(b, p) {
			return false
		}
	}
	for _, p := range b {
		if !slices.Contains(a, p) {
			return false
		}
	}
	return true
}

// Diff compares old with new field by field. A nil old (a new service)
// reports every field new sets as Set; a nil new (a deletion) reports
// every field old had as Unset. Comments, key order, formatting, the order
// of set fields and the spelling of equal quantities never count.
func Diff(old, new *Descriptor) Changes {
	if old == nil && new == nil {
		return nil
	}
	cs := make(Changes, 0, 8)
	whole, wholeKind := old == nil || new == nil, Set
	if old == nil {
		old = &Descriptor{}
	}
	if new == nil {
		new, wholeKind = &Descriptor{}, Unset
	}
	str := func(field string, kind Kind, a, b string) {
		if a == b {
			return
		}
		switch {
		case whole && a == "":
			kind = Set
		case whole && b == "":
			kind = Unset
		}
		cs = append(cs, Change{Field: field, Kind: kind, Old: a, New: b})
	}
	// Fields are emitted in sorted order, so no sort is needed.
	str(FieldDomain, DomainChanged, old.Domain, new.Domain)
	oh, nh := &old.Healthcheck, &new.Healthcheck
	if !slices.Equal(oh.Endpoints, nh.Endpoints) {
		str(FieldEndpoints, HealthcheckChanged, strings.Join(oh.Endpoints, ", "), strings.Join(nh.Endpoints, ", "))
	}
	if oh.InitialDelay != nh.InitialDelay {
		str(FieldInitialDelay, HealthcheckChanged, durStr(oh.InitialDelay, whole), durStr(nh.InitialDelay, whole))
	}
	if oh.Interval != nh.Interval {
		str(FieldInterval, HealthcheckChanged, durStr(oh.Interval, whole), durStr(nh.Interval, whole))
	}
	if oh.Retries != nh.Retries {
		str(FieldRetries, HealthcheckChanged, itoa(oh.Retries), itoa(nh.Retries))
	}
	str(FieldScheme, HealthcheckChanged, oh.Scheme, nh.Scheme)
	if oh.Timeout != nh.Timeout {
		str(FieldTimeout, HealthcheckChanged, durStr(oh.Timeout, whole), durStr(nh.Timeout, whole))
	}
	str(FieldImage, ImageChanged, old.Image, new.Image)
	str(FieldMaintainer, MaintainerChanged, old.Maintainer, new.Maintainer)
	cs = set(cs, FieldEmails, NotificationsChange, old.Notifications.Emails, new.Notifications.Emails, true)
	cs = set(cs, FieldSlack, NotificationsChange, old.Notifications.Slack, new.Notifications.Slack, false)
	if len(old.Params) > 0 || len(new.Params) > 0 {
		cs = free(cs, "params", ParamsChanged, old.Params, new.Params)
	}
	if old.Port != new.Port {
		str(FieldPort, PortChanged, itoa(old.Port), itoa(new.Port))
	}
	cs = portSet(cs, old.Ports, new.Ports)
	cs = quantity(cs, FieldCPU, CPUUp, CPUDown, old.Resources.CPU, new.Resources.CPU)
	cs = quantity(cs, FieldMemory, MemoryUp, MemoryDown, old.Resources.Memory, new.Resources.Memory)
	str(FieldService, ServiceChanged, old.Service, new.Service)
	if old.Version != new.Version {
		cs = append(cs, Change{Field: FieldVersion, Kind: versionKind(old, new), Old: old.Version, New: new.Version})
	}
	if len(old.Extensions) > 0 || len(new.Extensions) > 0 {
		cs = free(cs, "", ExtensionChanged, old.Extensions, new.Extensions)
	}
	if whole {
		// Sets, params and x- keys too: against no descriptor, every
		// field is set or unset.
		for i := range cs {
			cs[i].Kind = wholeKind
		}
	}
	return cs
}

func itoa(i int) string {
	if i == 0 {
		return ""
	}
	return strconv.Itoa(i)
}

func durStr(d Duration, whole bool) string {
	if d == 0 && whole {
		return ""
	}
	return d.String()
}

func versionKind(old, new *Descriptor) Kind {
	switch {
	case old.Version == "":
		return Set
	case new.Version == "":
		return Unset
	}
	a, b := old.Semver(), new.Semver()
	if a == nil || b == nil {
		return VersionIncomparable
	}
	switch a.Compare(b) {
	case -1:
		return VersionUp
	case 1:
		return VersionDown
	}
	return VersionEquivalent
}

func quantity(cs Changes, field string, up, down Kind, a, b Quantity) Changes {
	c := Change{Field: field, Old: a.String(), New: b.String()}
	switch {
	case a.IsZero() && b.IsZero():
		return cs
	case a.IsZero():
		c.Kind = Set
	case b.IsZero():
		c.Kind = Unset
	default:
		switch a.Cmp(b) {
		case 0:
			return cs
		case -1:
			c.Kind = up
		default:
			c.Kind = down
		}
	}
	return append(cs, c)
}

func portSet(cs Changes, a, b []int) Changes {
	if len(a) == 0 && len(b) == 0 {
		return cs
	}
	as, bs := make([]string, len(a)), make([]string, len(b))
	for i, p := range a {
		as[i] = strconv.Itoa(p)
	}
	for i, p := range b {
		bs[i] = strconv.Itoa(p)
	}
	added, removed := setDiff(as, bs, false)
	if len(added) > 0 {
		cs = append(cs, Change{Field: FieldPorts, Kind: PortsAdded, Old: strings.Join(as, ", "), New: strings.Join(bs, ", "), Added: added})
	}
	if len(removed) > 0 {
		cs = append(cs, Change{Field: FieldPorts, Kind: PortsRemoved, Old: strings.Join(as, ", "), New: strings.Join(bs, ", "), Removed: removed})
	}
	return cs
}

func set(cs Changes, field string, kind Kind, a, b []string, fold bool) Changes {
	if len(a) == 0 && len(b) == 0 {
		return cs
	}
	added, removed := setDiff(a, b, fold)
	if len(added) == 0 && len(removed) == 0 {
		return cs
	}
	return append(cs, Change{Field: field, Kind: kind, Old: strings.Join(a, ", "), New: strings.Join(b, ", "), Added: added, Removed: removed})
}

// setDiff returns the members of b missing from a, and of a missing from b.
func setDiff(a, b []string, fold bool) (added, removed []string) {
	has := func(s []string, v string) bool {
		for _, x := range s {
			if x == v || fold && strings.EqualFold(x, v) {
				return true
			}
		}
		return false
	}
	for _, v := range b {
		if !has(a, v) && !has(added, v) {
			added = append(added, v)
		}
	}
	for _, v := range a {
		if !has(b, v) && !has(removed, v) {
			removed = append(removed, v)
		}
	}
	return added, removed
}

// free diffs free-form maps by leaf path: maps recurse, lists and scalars
// are leaves compared by their JSON form, so 1 and 1.0 are equal.
func free(cs Changes, prefix string, kind Kind, a, b map[string]any) Changes {
	start := len(cs)
	fa, fb := map[string]string{}, map[string]string{}
	flatten(prefix, a, fa)
	flatten(prefix, b, fb)
	for k, va := range fa {
		if vb, ok := fb[k]; !ok || va != vb {
			cs = append(cs, Change{Field: k, Kind: kind, Old: va, New: fb[k]})
		}
	}
	for k, vb := range fb {
		if _, ok := fa[k]; !ok {
			cs = append(cs, Change{Field: k, Kind: kind, New: vb})
		}
	}
	added := cs[start:]
	sort.Slice(added, func(i, j int) bool { return added[i].Field < added[j].Field })
	return cs
}

func flatten(prefix string, m map[string]any, out map[string]string) {
	for k, v := range m {
		p := fieldPath(prefix, k)
		if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
			flatten(p, sub, out)
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			b = []byte(strconv.Quote(err.Error()))
		}
		out[p] = string(b)
	}
}

// fieldPath appends key to a leaf path. A key that is empty or holds a
// path separator is quoted, as in params["a.b"], so that {"a.b": 1} and
// {"a": {"b": 1}} are different fields.
func fieldPath(prefix, key string) string {
	if key == "" || strings.ContainsAny(key, `.[]"`) {
		return prefix + "[" + strconv.Quote(key) + "]"
	}
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}
