package runners

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// newHCLogger adapts slog to the hclog go-plugin logs through: a nil
// logger discards, TRACE maps below slog's DEBUG, and every secret is
// redacted from messages, keys and values before they reach slog, since
// go-plugin logs what the plugin writes to stderr and quotes it in its
// errors.
func newHCLogger(l *slog.Logger, name string, secrets []string) hclog.Logger {
	if l == nil {
		return hclog.NewNullLogger()
	}
	h := &slogHC{name: name, red: newRedactor(secrets)}
	h.l = l.With("plugin", h.redact(name))
	return h
}

type slogHC struct {
	l    *slog.Logger
	name string
	args []any // already redacted
	red  redactor
}

const slogLevelTrace = slog.LevelDebug - 4

func (h *slogHC) redact(s string) string {
	if len(h.red.secrets) == 0 {
		return s
	}
	return string(h.red.redact([]byte(s), 0, false))
}

// clean returns args with every key and value that shows a secret
// replaced by its redacted text. A value is judged by how it prints.
func (h *slogHC) clean(args []any) []any {
	if len(h.red.secrets) == 0 || len(args) == 0 {
		return args
	}
	out := make([]any, len(args))
	for i, v := range args {
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case hclog.Format: // printf-style: hclog formats it
			if len(x) > 0 {
				if f, ok := x[0].(string); ok {
					s = fmt.Sprintf(f, x[1:]...)
					break
				}
			}
			s = fmt.Sprint([]any(x)...)
		default:
			s = fmt.Sprint(v)
		}
		if r := h.redact(s); r != s {
			out[i] = r
		} else {
			out[i] = v
		}
	}
	return out
}

func (h *slogHC) slogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return slogLevelTrace
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	}
	return slog.LevelInfo
}

func (h *slogHC) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off || !h.enabled(level) {
		return
	}
	h.l.Log(context.Background(), h.slogLevel(level), h.redact(msg), h.clean(args)...)
}
func (h *slogHC) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *slogHC) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *slogHC) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *slogHC) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *slogHC) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }
func (h *slogHC) enabled(level hclog.Level) bool {
	return h.l.Enabled(context.Background(), h.slogLevel(level))
}
func (h *slogHC) IsTrace() bool        { return h.enabled(hclog.Trace) }
func (h *slogHC) IsDebug() bool        { return h.enabled(hclog.Debug) }
func (h *slogHC) IsInfo() bool         { return h.enabled(hclog.Info) }
func (h *slogHC) IsWarn() bool         { return h.enabled(hclog.Warn) }
func (h *slogHC) IsError() bool        { return h.enabled(hclog.Error) }
func (h *slogHC) ImpliedArgs() []any   { return h.args }
func (h *slogHC) Name() string         { return h.name }
func (h *slogHC) SetLevel(hclog.Level) {}
func (h *slogHC) GetLevel() hclog.Level {
	for _, lv := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if h.enabled(lv) {
			return lv
		}
	}
	return hclog.Off
}
func (h *slogHC) With(args ...any) hclog.Logger {
	args = h.clean(args)
	return &slogHC{l: h.l.With(args...), name: h.name, args: append(append([]any(nil), h.args...), args...), red: h.red}
}
func (h *slogHC) Named(name string) hclog.Logger {
	if h.name != "" {
		name = h.name + "." + name
	}
	return &slogHC{l: h.l, name: name, args: h.args, red: h.red}
}
func (h *slogHC) ResetNamed(name string) hclog.Logger {
	return &slogHC{l: h.l, name: name, args: h.args, red: h.red}
}

// StandardLogger returns a log.Logger whose lines go through Info, so
// they are redacted too.
func (h *slogHC) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(nil), "", 0)
}
func (h *slogHC) StandardWriter(*hclog.StandardLoggerOptions) io.Writer { return hcWriter{h} }

// hcWriter logs each write as one Info line.
type hcWriter struct{ h *slogHC }

func (w hcWriter) Write(p []byte) (int, error) {
	w.h.Info(strings.TrimRight(string(p), "\r\n"))
	return len(p), nil
}
