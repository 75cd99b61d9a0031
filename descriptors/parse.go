package descriptors

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"net/url"
	"strings"

	"github.com/Masterminds/semver/v3"
	yaml "go.yaml.in/yaml/v3"

	"github.com/gitmon-dev/gitmon/internal/yamlx"
)

// validService matches ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ (SPEC §2).
func validService(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// validVersion matches ^[0-9A-Za-z][0-9A-Za-z._+-]{0,127}$ (SPEC §2).
func validVersion(s string) bool {
	if s == "" || len(s) > 128 || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '_' && c != '+' && c != '-' {
			return false
		}
	}
	return true
}

// validLabel matches one DNS label: ^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$.
func validLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '-' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// ErrTooLarge is wrapped by the error for a descriptor over MaxSize.
var ErrTooLarge = yamlx.ErrTooLarge

// Error is one problem in a descriptor, with its file, line, column and
// key path. Parse returns them as an Errors list.
type Error = yamlx.Error

// Errors is every problem found in one descriptor, in file order.
type Errors = yamlx.Errors

// Parse reads a descriptor from data. name is the file path used in
// errors; when it is not empty, the service must equal its stem.
//
// The error, if any, is an Errors list naming every problem found.
func Parse(name string, data []byte) (*Descriptor, error) {
	root, err := yamlx.Parse(data, yamlx.DefaultLimits)
	if err != nil {
		return nil, yamlx.WithFile(err, name)
	}
	if root != nil && root.Kind != yaml.MappingNode {
		return nil, Errors{{File: name, Line: root.Line, Column: root.Column, Msg: "a descriptor must be a mapping of keys to values"}}
	}
	d := New()
	pos, err := yamlx.Decode(root, d)
	errs := yamlx.List(err)
	if root != nil {
		// A null value counts as absent: "port: ~" is no port, not port 0.
		for i := 0; i+1 < len(root.Content); i += 2 {
			if isNull(root.Content[i+1]) {
				delete(pos, root.Content[i].Value)
			}
		}
	}
	if len(errs) <= yamlx.MaxReported { // else decoding already found more than is reported
		for _, e := range d.validate(pos, name) {
			if !reported(errs, e.Path) {
				errs = append(errs, e)
			}
		}
	}
	if len(errs) == 0 {
		if e := d.checkFields(pos); e != nil {
			errs = append(errs, e)
		}
	}
	if err := errs.Err(); err != nil {
		return nil, yamlx.WithFile(err, name)
	}
	d.semver, _ = semver.NewVersion(d.Version)
	return d, nil
}

// ErrTooManyFields is wrapped by the error for a descriptor with more
// than MaxFields leaf fields.
var ErrTooManyFields = errors.New("too many fields")

// checkFields bounds the leaf fields (SPEC §5 Bounded work): every field
// is compared, attributed and stored with each record, so one descriptor
// must not carry an unbounded number. The error names the top-level key
// that holds the most of them.
func (d *Descriptor) checkFields(pos yamlx.Positions) *Error {
	fields := Diff(nil, d).Fields()
	if len(fields) <= MaxFields {
		return nil
	}
	per := map[string]int{}
	top, most := "", 0
	for _, f := range fields {
		k := f
		if i := strings.IndexAny(f, ".["); i > 0 {
			k = f[:i]
		}
		if per[k]++; per[k] > most {
			top, most = k, per[k]
		}
	}
	e := pos.Errorf(top, "the descriptor has %d fields (%d under %s); at most %d are allowed", len(fields), most, top, MaxFields)
	e.Err = ErrTooManyFields
	return e
}

func isNull(n *yaml.Node) bool {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// reported says whether errs already has a problem at path or above it. A
// value that could not be decoded keeps its default, which validation
// would report a second time.
func reported(errs Errors, path string) bool {
	for _, e := range errs {
		if p := e.Path; p != "" && strings.HasPrefix(path, p) &&
			(len(path) == len(p) || path[len(p)] == '.' || path[len(p)] == '[') {
			return true
		}
	}
	return false
}

// Read parses a descriptor from r, reading no more than MaxSize+1 bytes.
func Read(name string, r io.Reader) (*Descriptor, error) {
	data, err := yamlx.ReadLimited(r, MaxSize)
	switch {
	case errors.Is(err, yamlx.ErrTooLarge):
		return nil, Errors{{File: name, Msg: fmt.Sprintf("file is larger than the %s limit", yamlx.FormatBytes(MaxSize)), Err: err}}
	case err != nil:
		return nil, Errors{{File: name, Msg: fmt.Sprintf("reading: %v", err), Err: err}}
	}
	return Parse(name, data)
}

// Validate checks a descriptor built in code, such as one read back from
// the store. Parse already validates what it returns. Service and version
// are required here too.
func (d *Descriptor) Validate() error {
	return d.validate(yamlx.Positions{"service": {}, "version": {}}, "").Err()
}

func (d *Descriptor) validate(pos yamlx.Positions, name string) Errors {
	var errs Errors
	bad := func(path, format string, args ...any) {
		errs = append(errs, pos.Errorf(path, format, args...))
	}
	_, hasService := pos["service"]
	if hasService || d.Service != "" {
		switch {
		case !validService(d.Service):
			bad("service", "%q is not a valid service name (lower-case letters, digits and '-', 1 to 63 characters)", d.Service)
		case name != "" && d.Service != Stem(name):
			bad("service", "%q must equal the file name stem %q", d.Service, Stem(name))
		}
	}
	if _, ok := pos["version"]; ok || d.Version != "" {
		if !validVersion(d.Version) {
			bad("version", "%q is not a valid version (letters, digits and . _ + -, starting with a letter or digit, at most 128 characters)", d.Version)
		}
	}
	if d.Image != "" && strings.ContainsFunc(d.Image, isSpaceOrControl) {
		bad("image", "must not contain spaces or control characters")
	}
	d.validateHealthcheck(bad)
	if d.Domain != "" && !validHost(d.Domain) {
		bad("domain", "%q is not a valid host name or IP address", d.Domain)
	}
	if _, ok := pos["port"]; ok || d.Port != 0 {
		if d.Port < 1 || d.Port > 65535 {
			bad("port", "%d is not a port number (1 to 65535)", d.Port)
		}
	}
	for i, p := range d.Ports {
		if p < 1 || p > 65535 {
			bad(yamlx.Index("ports", i), "%d is not a port number (1 to 65535)", p)
		}
	}
	if d.Resources.CPU.Sign() == 0 && !d.Resources.CPU.IsZero() {
		bad("resources.cpu", "must be more than zero")
	}
	if d.Resources.Memory.Sign() == 0 && !d.Resources.Memory.IsZero() {
		bad("resources.memory", "must be more than zero")
	}
	for i, e := range d.Notifications.Emails {
		if !validEmail(e) {
			bad(yamlx.Index("notifications.emails", i), "%q is not a plain e-mail address", e)
		}
	}
	for i, c := range d.Notifications.Slack {
		if c == "" || len(c) > 80 || strings.ContainsFunc(c, isSpaceOrControl) {
			bad(yamlx.Index("notifications.slack", i), "%q is not a Slack channel (such as #payments)", c)
		}
	}
	if d.Maintainer != "" && !validEmail(d.Maintainer) {
		bad("maintainer", "%q is not a plain e-mail address", d.Maintainer)
	}
	return errs
}

func (d *Descriptor) validateHealthcheck(bad func(path, format string, args ...any)) {
	h := d.Healthcheck
	for i, e := range h.Endpoints {
		p := yamlx.Index("healthcheck.endpoints", i)
		switch {
		case strings.HasPrefix(e, "/") && !strings.HasPrefix(e, "//"):
			if strings.ContainsFunc(e, isSpaceOrControl) {
				bad(p, "%q must not contain spaces or control characters", e)
			} else if d.Domain == "" {
				bad(p, "the relative endpoint %q needs a domain", e)
			}
		case strings.HasPrefix(e, "http://") || strings.HasPrefix(e, "https://"):
			u, err := url.Parse(e)
			if err != nil || u.Host == "" || !validHost(u.Hostname()) || u.User != nil || strings.ContainsFunc(e, isSpaceOrControl) {
				bad(p, "%q is not an absolute http(s) URL with a host and no credentials", e)
			}
		default:
			bad(p, "%q must be a path starting with / or an absolute http(s) URL", e)
		}
	}
	if h.Scheme != "http" && h.Scheme != "https" {
		bad("healthcheck.scheme", "%q must be http or https", h.Scheme)
	}
	if h.Retries < 1 || h.Retries > MaxRetries {
		bad("healthcheck.retries", "%d is out of range (1 to %d)", h.Retries, MaxRetries)
	}
	if h.Interval.D() > MaxInterval {
		bad("healthcheck.interval", "%s is over the %s limit", h.Interval, MaxInterval)
	}
	if h.Timeout.D() <= 0 || h.Timeout.D() > MaxTimeout {
		bad("healthcheck.timeout", "%s is out of range (more than 0, at most %s)", h.Timeout, MaxTimeout)
	}
	if h.InitialDelay.D() > MaxInitialDelay {
		bad("healthcheck.initial_delay", "%s is over the %s limit", h.InitialDelay, MaxInitialDelay)
	}
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }

func validHost(h string) bool {
	if ip := net.ParseIP(strings.Trim(h, "[]")); ip != nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if !validLabel(l) {
			return false
		}
	}
	return true
}

func validEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && a.Name == ""
}
