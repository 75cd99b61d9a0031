package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// jsonLines decodes every line of out as one JSON object.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %v\n%s", err, l)
		}
		lines = append(lines, m)
	}
	return lines
}

// TestLoggerWritesDurationsAsStrings: JSON lines carry durations as Go
// duration strings, in nested groups and in attributes added with With,
// never as nanoseconds (SPEC §9).
func TestLoggerWritesDurationsAsStrings(t *testing.T) {
	var buf bytes.Buffer
	log := newLogger(&buf, config.Log{Level: config.LogInfo, Format: config.LogJSON}, nil)
	log.WithGroup("release").With("elapsed", 250*time.Millisecond).Info("stage ended",
		"took", 1500*time.Millisecond,
		slog.Group("stage", "timeout", 10*time.Minute, slog.Group("retry", "wait", 3*time.Second)),
		"attempts", 3)
	lines := jsonLines(t, buf.String())
	if len(lines) != 1 {
		t.Fatalf("%d lines:\n%s", len(lines), buf.String())
	}
	rel, _ := lines[0]["release"].(map[string]any)
	stage, _ := rel["stage"].(map[string]any)
	retry, _ := stage["retry"].(map[string]any)
	for name, got := range map[string]any{"1.5s": rel["took"], "250ms": rel["elapsed"], "10m0s": stage["timeout"], "3s": retry["wait"]} {
		if got != name {
			t.Errorf("duration %s logged as %#v (%T)\n%s", name, got, got, buf.String())
		}
	}
	if rel["attempts"] != float64(3) {
		t.Errorf("a number is no longer a number: %#v", rel["attempts"])
	}

	buf.Reset()
	newLogger(&buf, config.Log{Level: config.LogInfo, Format: config.LogText}, nil).Info("stage ended", "took", 1500*time.Millisecond)
	if !strings.Contains(buf.String(), "took=1.5s") {
		t.Errorf("text line: %s", buf.String())
	}
}

// TestLoggerLevelsAndFormats: log.level drops the lines below it, and
// log.format picks text or JSON lines.
func TestLoggerLevelsAndFormats(t *testing.T) {
	for _, tc := range []struct {
		level string
		want  []string
	}{
		{config.LogDebug, []string{"d", "i", "w", "e"}},
		{config.LogInfo, []string{"i", "w", "e"}},
		{config.LogWarn, []string{"w", "e"}},
		{config.LogError, []string{"e"}},
	} {
		for _, format := range []string{config.LogText, config.LogJSON} {
			t.Run(tc.level+"/"+format, func(t *testing.T) {
				var buf bytes.Buffer
				log := newLogger(&buf, config.Log{Level: tc.level, Format: format}, nil)
				log.Debug("d")
				log.Info("i")
				log.Warn("w")
				log.Error("e")
				var got []string
				if format == config.LogJSON {
					for _, l := range jsonLines(t, buf.String()) {
						got = append(got, l["msg"].(string))
					}
				} else {
					for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
						if strings.HasPrefix(l, "{") {
							t.Errorf("a text line looks like JSON: %s", l)
						}
						_, msg, _ := strings.Cut(l, " msg=")
						got = append(got, msg)
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("logged %v, want %v\n%s", got, tc.want, buf.String())
				}
			})
		}
	}
}

// TestLoggerNeverShowsASecret is the handler-level guard: a canary secret
// logged every way a log line can carry it (a config.Secret, a string, an
// error, the message, a nested group, With, a struct) never reaches the
// output, in either format.
func TestLoggerNeverShowsASecret(t *testing.T) {
	const canary = "canary-9f3b2c7d-token"
	type request struct {
		URL    string
		Header map[string]string
	}
	for _, format := range []string{config.LogText, config.LogJSON} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			log := newLogger(&buf, config.Log{Level: config.LogDebug, Format: format}, []string{canary})
			log.Info("token", "token", config.NewSecret(canary))
			log.Info("url", "url", "https://gitmon:"+canary+"@git.example.com/d.git")
			log.Warn("poll failed", "err", fmt.Errorf("fetch: %w", errors.New("auth with "+canary+" refused")))
			log.Error("message with " + canary)
			log.Info("nested", slog.Group("jira", slog.Group("auth", "header", "Bearer "+canary)))
			log.With("token", canary).WithGroup("g").With("t", canary).Debug("with")
			log.Info("struct", "req", request{URL: "https://x.example.com", Header: map[string]string{"Authorization": "Bearer " + canary}})
			out := buf.String()
			if strings.Contains(out, canary) || strings.Contains(out, "9f3b2c7d") {
				t.Fatalf("the canary reached the log:\n%s", out)
			}
			if n := strings.Count(out, "\n"); n != 7 {
				t.Errorf("%d lines, want 7:\n%s", n, out)
			}
			for _, want := range []string{"<secret>", "<redacted>", "git.example.com", "auth with", "Bearer"} {
				if !strings.Contains(out, want) {
					t.Errorf("the log lost %q around the redaction:\n%s", want, out)
				}
			}
		})
	}
}

// TestServeLogFlags: --log-level and --log-format override the config's
// log key; -log-json is --log-format json; bad values are usage errors.
func TestServeLogFlags(t *testing.T) {
	fromFile := config.Log{Level: config.LogDebug, Format: config.LogText}
	for _, tc := range []struct {
		args    []string
		want    config.Log
		problem string
	}{
		{args: nil, want: fromFile},
		{args: []string{"--log-level", "warn"}, want: config.Log{Level: "warn", Format: "text"}},
		{args: []string{"--log-format", "json"}, want: config.Log{Level: "debug", Format: "json"}},
		{args: []string{"-log-json"}, want: config.Log{Level: "debug", Format: "json"}},
		{args: []string{"-log-json", "--log-format=json", "-log-level=error"}, want: config.Log{Level: "error", Format: "json"}},
		{args: []string{"--log-level", "verbose"}, problem: `--log-level: unknown level "verbose": want debug, info, warn or error`},
		{args: []string{"--log-format", "JSON"}, problem: `--log-format: unknown format "JSON" (did you mean "json"?)`},
		{args: []string{"-log-json", "--log-format", "text"}, problem: "-log-json and --log-format text disagree"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			// The flags as serve takes them: single-dash long forms too.
			fl := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			var lf logFlags
			lf.register(fl)
			root, serve := &cobra.Command{Use: "gitmon"}, &cobra.Command{Use: "serve"}
			serve.Flags().AddFlagSet(fl)
			root.AddCommand(serve)
			if err := fl.Parse(longFlags(root, append([]string{"serve"}, tc.args...))[1:]); err != nil {
				t.Fatal(err)
			}
			err := lf.check()
			if tc.problem != "" {
				if err == nil || !strings.Contains(err.Error(), tc.problem) {
					t.Fatalf("check = %v, want %q", err, tc.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := lf.override(fromFile); got != tc.want {
				t.Errorf("override = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestServeUsageErrors: a bad flag value stops serve with exit 2 before
// it reads the config, and -h documents every logging flag.
func TestServeUsageErrors(t *testing.T) {
	var out, errb bytes.Buffer
	code := Run(t.Context(), Streams{Out: &out, Err: &errb}, []string{"serve", "--config", "/nonexistent/gitmon.yaml", "--log-level", "loud"})
	if code != ExitUsage || !strings.Contains(errb.String(), `--log-level: unknown level "loud"`) || strings.Contains(errb.String(), "nonexistent") {
		t.Errorf("serve --log-level loud: exit %d\n%s", code, errb.String())
	}
	errb.Reset()
	if code := Run(t.Context(), Streams{Out: &out, Err: &errb}, []string{"serve", "-h"}); code != ExitOK {
		t.Errorf("serve -h: exit %d", code)
	}
	for _, want := range []string{"--log-level", "--log-format", "--log-json", "the same as --log-format json", "Examples:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("serve -h lacks %q:\n%s", want, out.String())
		}
	}
}
