package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

const canary = "s3cr3t-CANARY-value"

// secretConfig uses every secret gitmon knows, all holding canary-based
// values.
const secretConfig = `
repositories:
  - name: https
    url: https://git.example.com/r.git
    auth: {username_env: GIT_USER, password_file: secrets/token}
    webhook: {provider: github, secret_env: WEBHOOK_SECRET}
  - name: ssh
    url: ssh://git@git.example.com/r.git
    auth: {ssh_key_file: /keys/id, known_hosts_file: /keys/known_hosts}
environments: [{name: qa, release: [build]}]
pipelines: {build: {runner: jenkins, job: build}}
policy: {committers: ["*"]}
integrations:
  jira: {url: https://jira.example.com, user_env: JIRA_USER, token_env: JIRA_TOKEN}
  slack: {token_file: /run/secrets/slack}
  jenkins: {url: https://jenkins.example.com, user_env: JENKINS_USER, token_env: JENKINS_TOKEN}
  smtp: {host: smtp.example.com, from: gitmon@example.com, user_env: SMTP_USER, password_env: SMTP_PASSWORD}
`

func loadSecretConfig(t *testing.T) *Config {
	t.Helper()
	env := map[string]string{}
	for _, k := range []string{"GIT_USER", "JIRA_USER", "JIRA_TOKEN", "JENKINS_USER", "JENKINS_TOKEN", "SMTP_USER", "SMTP_PASSWORD", "WEBHOOK_SECRET"} {
		env[k] = canary + "-" + k
	}
	files := map[string]string{
		"/etc/gitmon/secrets/token": canary + "-token\n",
		"/keys/id":                  canary + "-key\nline 2\n",
		"/keys/known_hosts":         "host ssh-ed25519 AAAA\n",
		"/run/secrets/slack":        canary + "-slack\r\n\n",
	}
	read := func(name string) ([]byte, error) {
		if v, ok := files[name]; ok {
			return []byte(v), nil
		}
		return nil, fmt.Errorf("open %s: no such file", name)
	}
	cfg, warns, err := Parse("/etc/gitmon/gitmon.yaml", []byte(secretConfig), Options{Mode: ModeServe, LookupEnv: lookupIn(env), ReadFile: read})
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) > 0 {
		t.Fatalf("warnings: %v", warns)
	}
	return cfg
}

func TestSecretsResolve(t *testing.T) {
	cfg := loadSecretConfig(t)
	r := cfg.Repositories[0].Auth
	if r.Username.Value() != canary+"-GIT_USER" || r.Username.Env != "GIT_USER" {
		t.Errorf("username: %q from %q", r.Username.Value(), r.Username.Env)
	}
	if r.Password.Value() != canary+"-token" || r.Password.File != "/etc/gitmon/secrets/token" {
		t.Errorf("password_file (relative, trailing newline trimmed): %q from %q", r.Password.Value(), r.Password.File)
	}
	if got := cfg.Repositories[1].Auth.SSHKey.Value(); got != canary+"-key\nline 2" {
		t.Errorf("ssh key: %q", got)
	}
	if got := cfg.Integrations.Slack.Token.Value(); got != canary+"-slack" {
		t.Errorf("slack token (CRLF trimmed): %q", got)
	}
	got := cfg.Secrets()
	if len(got) != 12 {
		t.Errorf("Secrets() has %d values, want 11 and the key's first line: %q", len(got), got)
	}
	if !slices.Contains(got, canary+"-key") || slices.Contains(got, "line 2") {
		t.Errorf("Secrets() should list the long lines of the key, alone: %q", got)
	}
	for i := 1; i < len(got); i++ {
		if len(got[i]) > len(got[i-1]) {
			t.Errorf("Secrets() not longest first: %q", got)
		}
	}
	if !slices.Contains(got, canary+"-WEBHOOK_SECRET") {
		t.Errorf("Secrets() misses the webhook secret: %q", got)
	}
	if !slices.Contains(got, canary+"-SMTP_PASSWORD") {
		t.Errorf("Secrets() misses the smtp password: %q", got)
	}
}

// No way of printing the config shows a secret.
func TestSecretsNeverPrint(t *testing.T) {
	cfg := loadSecretConfig(t)
	outputs := map[string]string{
		"String":     cfg.String(),
		"%v":         fmt.Sprintf("%v", cfg),
		"%+v":        fmt.Sprintf("%+v", cfg),
		"%#v":        fmt.Sprintf("%#v", cfg),
		"%v value":   fmt.Sprintf("%v", *cfg),
		"%+v value":  fmt.Sprintf("%+v", *cfg),
		"%#v value":  fmt.Sprintf("%#v", *cfg),
		"%v repos":   fmt.Sprintf("%v", cfg.Repositories),
		"%+v auth":   fmt.Sprintf("%+v", cfg.Repositories[0].Auth),
		"%#v auth":   fmt.Sprintf("%#v", cfg.Repositories[0].Auth),
		"%+v jira":   fmt.Sprintf("%+v", *cfg.Integrations.Jira),
		"%#v smtp":   fmt.Sprintf("%#v", *cfg.Integrations.SMTP),
		"%+v hook":   fmt.Sprintf("%+v", *cfg.Repositories[0].Webhook),
		"%s secret":  fmt.Sprintf("%s", cfg.Repositories[0].Auth.Password),
		"%q secret":  fmt.Sprintf("%q", cfg.Repositories[0].Auth.Password),
		"%x secret":  fmt.Sprintf("%x", cfg.Repositories[0].Auth.Password),
		"%d secret":  fmt.Sprintf("%d", cfg.Repositories[0].Auth.Password),
		"%v integr.": fmt.Sprintf("%+v", cfg.Integrations),
	}
	j, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	outputs["json"] = string(j)
	y, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	outputs["yaml"] = string(y)
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("cfg", "secret", cfg.Repositories[0].Auth.Password, "auth", cfg.Repositories[0].Auth)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("cfg", "secret", cfg.Repositories[0].Auth.Password, "cfg", cfg)
	outputs["slog"] = logs.String()
	for name, out := range outputs {
		if strings.Contains(out, canary) || strings.Contains(out, fmt.Sprintf("%x", canary)) {
			t.Errorf("%s shows a secret:\n%s", name, out)
		}
	}
	if !strings.Contains(outputs["%+v auth"], "<secret>") || !strings.Contains(outputs["json"], `"value":"\u003csecret\u003e"`) {
		t.Errorf("secrets should render as <secret>:\n%s\n%s", outputs["%+v auth"], outputs["json"])
	}
	if !strings.Contains(outputs["%#v auth"], `Env:"GIT_USER"`) {
		t.Errorf("%%#v should say where a secret comes from: %s", outputs["%#v auth"])
	}
}

func TestSecretZero(t *testing.T) {
	var s Secret
	if !s.IsZero() || s.String() != "" || s.Value() != "" {
		t.Errorf("zero secret: %q %q", s.String(), s.Value())
	}
	s = NewSecret(canary)
	if s.IsZero() || s.String() != "<secret>" || s.Value() != canary || strings.Contains(fmt.Sprint(s), canary) {
		t.Errorf("NewSecret: %q %q", s.String(), s.Value())
	}
}

func TestSecretProblems(t *testing.T) {
	base := func(auth string) string {
		return "repositories: [{name: r, url: https://git.example.com/r.git, auth: " + auth + "}]\n" +
			"environments: [{name: qa, release: []}]\npolicy: {committers: []}\n"
	}
	noEnv := lookupIn(nil)
	noFile := func(string) ([]byte, error) { return nil, fmt.Errorf("boom") }
	tests := []struct {
		name, auth string
		mode       Mode
		wantErr    string
		wantWarn   string
	}{
		{"unset env validates with a warning", "{password_env: NOPE}", ModeValidate, "", "environment variable NOPE is not set"},
		{"unset env fails serve", "{password_env: NOPE}", ModeServe, "environment variable NOPE is not set", ""},
		{"unreadable file validates with a warning", "{password_file: /x}", ModeValidate, "", `cannot read "/x": boom`},
		{"unreadable file fails serve", "{password_file: /x}", ModeServe, `cannot read "/x": boom`, ""},
		{"both set", "{password_env: A, password_file: /x}", ModeValidate, "set password_env or password_file, not both", ""},
		{"secret-looking variable name not echoed", "{password_env: 'hunter2!'}", ModeValidate, "is not an environment variable name", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, warns, err := Parse("gitmon.yaml", []byte(base(tt.auth)), Options{Mode: tt.mode, LookupEnv: noEnv, ReadFile: noFile})
			if tt.wantErr == "" && err != nil {
				t.Errorf("unexpected error: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
			if tt.wantWarn != "" && !strings.Contains(warns.String(), tt.wantWarn) {
				t.Errorf("warnings %v, want %q", warns, tt.wantWarn)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error echoes the value: %v", err)
			}
		})
	}
}
