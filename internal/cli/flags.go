package cli

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/user"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/spf13/cobra"
)

// DefaultConfig is the config a command reads when neither --config nor
// $GITMON_CONFIG names one.
const DefaultConfig = "gitmon.yaml"

// ConfigEnv names the config file when --config is not given.
const ConfigEnv = "GITMON_CONFIG"

// configFlag is --config, which every command that reads the config has.
type configFlag struct{ path string }

func (f *configFlag) register(c *cobra.Command) {
	c.Flags().StringVar(&f.path, "config", "", "the config file (default: $"+ConfigEnv+", else ./"+DefaultConfig+")")
	_ = c.MarkFlagFilename("config", "yaml", "yml")
}

// resolve returns the config file to read, and whether someone named it
// (--config or $GITMON_CONFIG) rather than it being the default.
func (f *configFlag) resolve() (path string, named bool) {
	if f.path != "" {
		return f.path, true
	}
	if env := os.Getenv(ConfigEnv); env != "" {
		return env, true
	}
	return DefaultConfig, false
}

// load loads the config for a command, printing every problem; ok is
// false when the command must stop.
func (f *configFlag) load(s Streams, mode config.Mode) (*config.Config, bool) {
	path, _ := f.resolve()
	return loadConfig(s, path, mode)
}

// envFlag adds --env E to c, completed from the config's environments.
func envFlag(c *cobra.Command, env *string, cf *configFlag, usage string) {
	c.Flags().StringVar(env, "env", "", usage)
	_ = c.RegisterFlagCompletionFunc("env", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		path, _ := cf.resolve()
		cfg, _, err := config.Load(path, config.Options{Mode: config.ModeValidate})
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		names := make([]string, 0, len(cfg.Environments))
		for _, e := range cfg.Environments {
			names = append(names, e.Name)
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	})
}

// checkEnvironment reports an environment the config does not have.
func checkEnvironment(cfg *config.Config, path, env string) error {
	if env == "" || cfg.Environment(env) != nil {
		return nil
	}
	names := make([]string, 0, len(cfg.Environments))
	for _, e := range cfg.Environments {
		names = append(names, e.Name)
	}
	return fmt.Errorf("no environment %q in %s (it has %s)", env, path, orNone(strings.Join(names, ", ")))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// maxActor and maxReason bound what an operator command stores with each
// event.
const (
	maxActor  = store.MaxActor
	maxReason = store.MaxReason
)

// actorFlag adds --actor to a command that records an action.
func actorFlag(c *cobra.Command, actor *string) {
	c.Flags().StringVar(actor, "actor", "", "who asks, as recorded in the event (default: <OS user>@<host>)")
}

// actorOf is who an operator command records as its actor (SPEC §0):
// --actor when given, else the OS user and the host.
func actorOf(flag string) (string, error) {
	if flag != "" {
		if err := checkText("--actor", flag, maxActor); err != nil {
			return "", err
		}
		return strings.TrimSpace(flag), nil
	}
	actor := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		actor = u.Username
	}
	if host, err := os.Hostname(); err == nil && host != "" {
		actor += "@" + host
	}
	return actor, nil
}

// checkText refuses a flag value that would not show as one line of
// text: empty, not UTF-8, holding control characters, or longer than max
// bytes.
func checkText(flag, v string, max int) error {
	switch {
	case strings.TrimSpace(v) == "":
		return fmt.Errorf("%s must not be empty", flag)
	case !utf8.ValidString(v):
		return fmt.Errorf("%s is not UTF-8 text", flag)
	case len(v) > max:
		return fmt.Errorf("%s is %d bytes long; at most %d", flag, len(v), max)
	case strings.IndexFunc(v, isControl) >= 0:
		return fmt.Errorf("%s must be one line, without control characters", flag)
	}
	return nil
}

// isControl reports the runes that must not reach a terminal from stored
// text: C0 and C1 controls (escape sequences, newlines) and the bidi
// controls that reorder what follows them.
func isControl(r rune) bool {
	return unicode.IsControl(r) || (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069')
}

// oneLine makes stored text one readable line of at most width runes:
// control characters and runs of white space become one space, and what
// is longer is cut with "…".
func oneLine(s string, width int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	space, n := false, 0
	for _, r := range s {
		if isControl(r) || unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		if space {
			if n+1 >= width {
				return b.String() + "…"
			}
			b.WriteByte(' ')
			n++
			space = false
		}
		if n >= width {
			return strings.TrimRight(b.String(), " ") + "…"
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// durationRe is a duration back from now (or ahead, for --until): Go's
// durations, with d for days, such as 24h, 7d, 1d12h or 90m.
var durationRe = regexp.MustCompile(`^(?:(\d+)d)?(.*)$`)

// maxDays keeps a day count from overflowing time.Duration.
const maxDays = math.MaxInt64 / int64(24*time.Hour)

// errTime is every time argument's problem: what T may be (SPEC §6).
var errTime = errors.New("want an RFC 3339 time such as 2026-12-01T08:00:00Z, or a duration such as 24h or 7d")

// parseTime reads a time argument T (SPEC §6): RFC 3339, or a duration
// back from now, such as 24h or 7d; with forward (--until), a duration
// is from now into the future.
func parseTime(s string, now time.Time, forward bool) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	m := durationRe.FindStringSubmatch(s)
	if s == "" || m == nil {
		return time.Time{}, fmt.Errorf("%q: %w", s, errTime)
	}
	var d time.Duration
	if m[1] != "" {
		days, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || days > maxDays {
			return time.Time{}, fmt.Errorf("%q: too far away", s)
		}
		d = time.Duration(days) * 24 * time.Hour
	}
	if m[2] != "" {
		if m[2][0] == '-' || m[2][0] == '+' {
			return time.Time{}, fmt.Errorf("%q: %w", s, errTime)
		}
		rest, err := time.ParseDuration(m[2])
		if err != nil {
			return time.Time{}, fmt.Errorf("%q: %w", s, errTime)
		}
		if d > math.MaxInt64-rest {
			return time.Time{}, fmt.Errorf("%q: too far away", s)
		}
		d += rest
	}
	if forward {
		return now.Add(d), nil
	}
	return now.Add(-d), nil
}
