package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"

	"github.com/gitmon-dev/gitmon/internal/yamlx"
	yaml "go.yaml.in/yaml/v3"
)

// Secret is a credential read from an environment variable (Env) or a
// file (File) when the config is loaded. It never prints: String,
// GoString, JSON and slog all render "<secret>" in its place. Value
// returns it.
type Secret struct {
	Env  string // the variable it is read from, or ""
	File string // the absolute path of the file it is read from, or ""

	value string
}

// redacted is what a secret prints as.
const redacted = "<secret>"

// NewSecret returns a secret holding value, for tests and built-in
// configs.
func NewSecret(value string) Secret { return Secret{value: value} }

// Value returns the secret, or "" when it is not configured or could not
// be read (which Load reports).
func (s Secret) Value() string { return s.value }

// IsZero reports whether the secret is not configured at all.
func (s Secret) IsZero() bool { return s.Env == "" && s.File == "" && s.value == "" }

// String returns "<secret>", or "" when the secret is not configured.
func (s Secret) String() string {
	if s.IsZero() {
		return ""
	}
	return redacted
}

// GoString is for %#v: it shows where the secret comes from, not what
// it is.
func (s Secret) GoString() string {
	return fmt.Sprintf("config.Secret{Env:%q, File:%q, value:%q}", s.Env, s.File, s.String())
}

// Format makes every fmt verb render String (or GoString for %#v), so
// no verb such as %x or %q can reveal the value.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, s.GoString())
		return
	}
	fmt.Fprint(f, s.String())
}

// LogValue keeps the secret out of structured logs.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON renders where the secret comes from, and "<secret>" for
// its value.
func (s Secret) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Env   string `json:"env,omitempty"`
		File  string `json:"file,omitempty"`
		Value string `json:"value,omitempty"`
	}{s.Env, s.File, s.String()})
}

// MarshalText renders "<secret>", for encoders that use it.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// source names which twin the secret came from: "env" or "file".
func (s Secret) source() string {
	if s.File != "" && s.Env == "" {
		return "file"
	}
	return "env"
}

// secret resolves the <name>_env / <name>_file pair under path. Both set
// is an error. A variable that is unset or empty, or a file that cannot
// be read or is empty, is a problem of the machine (see machinef).
func (l *loader) secret(path, name, env, file string) Secret {
	envKey, fileKey := yamlx.Join(path, name+"_env"), yamlx.Join(path, name+"_file")
	if env != "" && file != "" {
		l.errorf(fileKey, "set %s_env or %s_file, not both", name, name)
		return Secret{Env: env, File: l.abs(file)}
	}
	switch {
	case env != "":
		s := Secret{Env: env}
		if !envVarRe.MatchString(env) {
			// Not echoed: it may be the secret itself, written in the wrong key.
			l.errorf(envKey, "is not an environment variable name (letters, digits and '_'); the value itself belongs in the environment, not here")
			return s
		}
		v, ok := l.opts.LookupEnv(env)
		switch {
		case !ok:
			l.machinef(envKey, "environment variable %s is not set", env)
		case v == "":
			l.machinef(envKey, "environment variable %s is empty", env)
		default:
			s.value = v
		}
		return s
	case file != "":
		s := Secret{File: l.abs(file)}
		data, err := l.opts.ReadFile(s.File)
		if err != nil {
			l.machinef(fileKey, "cannot read %q: %s", file, describeReadError(err))
			return s
		}
		v := strings.TrimRight(string(data), "\r\n")
		if v == "" {
			l.machinef(fileKey, "%q is empty", file)
			return s
		}
		s.value = v
		return s
	}
	return Secret{}
}

// checkReadable reports a file gitmon will need that cannot be read.
// shown is the path as written in the config; abs is where it resolves.
func (l *loader) checkReadable(path, shown, abs string) {
	if _, err := l.opts.ReadFile(abs); err != nil {
		l.machinef(path, "cannot read %q: %s", shown, describeReadError(err))
	}
}

// inlineSecretKeys maps, for each block that holds credentials, the keys
// someone might write a secret under to the *_env/*_file pair to use.
var inlineSecretKeys = map[string]map[string]string{
	"repository": {"password": "auth.password", "token": "auth.password", "secret": "auth.password", "passwd": "auth.password",
		"user": "auth.username", "username": "auth.username"},
	"auth": {"password": "password", "token": "password", "secret": "password", "passwd": "password",
		"user": "username", "username": "username"},
	"jira":    {"token": "token", "password": "token", "secret": "token", "api_token": "token", "user": "user", "username": "user"},
	"webhook": {"secret": "secret", "token": "secret", "password": "secret", "key": "secret"},
	"slack":   {"token": "token", "password": "token", "secret": "token"},
	"jenkins": {"token": "token", "password": "token", "secret": "token", "api_token": "token", "user": "user", "username": "user"},
	"smtp":    {"password": "password", "token": "password", "secret": "password", "passwd": "password", "user": "user", "username": "user"},
	"scm":     {"token": "token", "password": "token", "secret": "token", "api_token": "token", "private_token": "token"},
}

// findInlineSecrets reports keys that look like a secret written inline,
// with a message saying what to write instead. Their positions are kept
// so the decoder's "unknown key" for them is dropped.
func (l *loader) findInlineSecrets(root *yaml.Node) {
	if repos := lookup(root, "repositories"); repos != nil && repos.Kind == yaml.SequenceNode {
		for i, r := range repos.Content {
			p := yamlx.Index("repositories", i)
			l.inlineIn(resolve(r), p, "repository")
			l.inlineIn(lookup(r, "auth"), yamlx.Join(p, "auth"), "auth")
			l.inlineIn(lookup(r, "webhook"), yamlx.Join(p, "webhook"), "webhook")
		}
	}
	for _, block := range []string{"jira", "slack", "jenkins", "smtp", "scm"} {
		l.inlineIn(lookup(root, "integrations."+block), "integrations."+block, block)
	}
}

func (l *loader) inlineIn(n *yaml.Node, path, block string) {
	if n == nil || n.Kind != yaml.MappingNode {
		return
	}
	keys := inlineSecretKeys[block]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		twin, ok := keys[k.Value]
		if !ok {
			continue
		}
		pos := yamlx.Pos{Line: k.Line, Column: k.Column}
		if l.inline[pos] {
			continue // reached again through an alias
		}
		l.inline[pos] = true
		l.inlineBlocks[path] = true
		l.errs = append(l.errs, &yamlx.Error{Line: k.Line, Column: k.Column, Path: yamlx.Join(path, k.Value),
			Msg: fmt.Sprintf("inline secrets are not allowed; use %s_env or %s_file", twin, twin)})
	}
}
