package config

import (
	"fmt"
	"slices"
	"strings"
)

// Values of Log.Level and Log.Format (SPEC §3 log).
const (
	LogDebug = "debug"
	LogInfo  = "info"
	LogWarn  = "warn"
	LogError = "error"

	LogText = "text"
	LogJSON = "json"

	DefaultLogLevel  = LogInfo
	DefaultLogFormat = LogText
)

var (
	logLevels  = []string{LogDebug, LogInfo, LogWarn, LogError}
	logFormats = []string{LogText, LogJSON}
)

// Log is the log key: how much serve logs, and how.
type Log struct {
	Level  string // LogDebug, LogInfo, LogWarn or LogError
	Format string // LogText or LogJSON (JSON lines)
}

type rawLog struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// CheckLogLevel returns a problem with a log level, or "" when it is one
// of debug, info, warn and error. The command line checks --log-level
// with it too.
func CheckLogLevel(s string) string { return checkChoice("level", s, logLevels) }

// CheckLogFormat is CheckLogLevel for a log format: text or json.
func CheckLogFormat(s string) string { return checkChoice("format", s, logFormats) }

func checkChoice(what, s string, choices []string) string {
	if slices.Contains(choices, s) {
		return ""
	}
	hint := ""
	if l := strings.ToLower(strings.TrimSpace(s)); slices.Contains(choices, l) {
		hint = fmt.Sprintf(" (did you mean %q?)", l)
	} else if l == "warning" && what == "level" {
		hint = ` (did you mean "warn"?)`
	}
	last := len(choices) - 1
	return fmt.Sprintf("unknown %s %q%s: want %s or %s", what, s, hint, strings.Join(choices[:last], ", "), choices[last])
}

// log settles the log key: defaults, then the checks.
func (l *loader) log(raw rawLog) Log {
	out := Log{Level: raw.Level, Format: raw.Format}
	if !l.has("log.level") {
		out.Level = DefaultLogLevel
	} else if msg := CheckLogLevel(raw.Level); msg != "" && !l.failed("log.level") {
		l.errorf("log.level", "%s", msg)
	}
	if !l.has("log.format") {
		out.Format = DefaultLogFormat
	} else if msg := CheckLogFormat(raw.Format); msg != "" && !l.failed("log.format") {
		l.errorf("log.format", "%s", msg)
	}
	return out
}
