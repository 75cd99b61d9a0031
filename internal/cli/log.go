package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/runners"
	"github.com/spf13/pflag"
)

// logLevels maps the log.level values of the config to slog's.
var logLevels = map[string]slog.Level{
	config.LogDebug: slog.LevelDebug,
	config.LogInfo:  slog.LevelInfo,
	config.LogWarn:  slog.LevelWarn,
	config.LogError: slog.LevelError,
}

// newLogger is the one place gitmon's logger is built (serve injects it
// into the app). It writes lc.Format (text, or JSON lines) at lc.Level
// and up, and every attribute goes through logAttr: durations as strings
// such as "1.5s" (JSON would write nanoseconds), and every known secret
// value redacted from the message and from every value, in groups too.
// Secret-typed values already render as <secret>; this catches a secret
// that reached a log line some other way, such as inside an error.
func newLogger(w io.Writer, lc config.Log, secrets []string) *slog.Logger {
	level, ok := logLevels[lc.Level]
	if !ok {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		return logAttr(a, secrets)
	}}
	if lc.Format == config.LogJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// logAttr rewrites one resolved, non-group attribute (slog's handlers
// call ReplaceAttr for each leaf of a group, and for the message).
func logAttr(a slog.Attr, secrets []string) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindDuration:
		a.Value = slog.StringValue(a.Value.Duration().String())
	case slog.KindString:
		if s := a.Value.String(); mayHoldSecret(s, secrets) {
			a.Value = slog.StringValue(runners.Redact(s, secrets))
		}
	case slog.KindAny:
		v := a.Value.Any()
		if err, ok := v.(error); ok {
			// An error logs as its message; redact that.
			s := err.Error()
			if mayHoldSecret(s, secrets) {
				a.Value = slog.StringValue(runners.Redact(s, secrets))
			}
			return a
		}
		// Anything else (structs, maps, slices) is rendered by the
		// handler; when its text would show a secret, log the redacted
		// text instead.
		if s := fmt.Sprintf("%+v", v); mayHoldSecret(s, secrets) {
			a.Value = slog.StringValue(runners.Redact(s, secrets))
		}
	}
	return a
}

// mayHoldSecret reports whether s contains one of secrets.
func mayHoldSecret(s string, secrets []string) bool {
	for _, sec := range secrets {
		if sec != "" && strings.Contains(s, sec) {
			return true
		}
	}
	return false
}

// logFlags are serve's logging flags, which override the config's log key.
type logFlags struct {
	level, format string
	json          bool // -log-json, the alias of --log-format json
}

func (f *logFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.level, "log-level", "", "log at this level and up: debug, info, warn or error (default: log.level of the config, else info)")
	fl.StringVar(&f.format, "log-format", "", "log as text, or as json lines (default: log.format of the config, else text)")
	fl.BoolVar(&f.json, "log-json", false, "the same as --log-format json")
}

// check reports a flag value that is not one of the config's choices.
func (f *logFlags) check() error {
	var errs []error
	if f.level != "" {
		if msg := config.CheckLogLevel(f.level); msg != "" {
			errs = append(errs, fmt.Errorf("--log-level: %s", msg))
		}
	}
	if f.format != "" {
		if msg := config.CheckLogFormat(f.format); msg != "" {
			errs = append(errs, fmt.Errorf("--log-format: %s", msg))
		}
	}
	if f.json && f.format != "" && f.format != config.LogJSON {
		errs = append(errs, fmt.Errorf("-log-json and --log-format %s disagree (-log-json is --log-format json)", f.format))
	}
	return errors.Join(errs...)
}

// override returns lc with the flags that were given in its place.
func (f *logFlags) override(lc config.Log) config.Log {
	if f.level != "" {
		lc.Level = f.level
	}
	switch {
	case f.format != "":
		lc.Format = f.format
	case f.json:
		lc.Format = config.LogJSON
	}
	return lc
}
