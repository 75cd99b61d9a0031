package cli

import (
	"errors"
	"os"
	"os/user"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// TestParseTime: T is RFC 3339 or a duration back from now, d for days
// (SPEC §6); forward (--until) counts into the future.
func TestParseTime(t *testing.T) {
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, in string
		forward  bool
		want     time.Time
		bad      string // what the error says; "" when it parses
	}{
		{name: "rfc3339", in: "2026-11-30T07:00:00Z", want: time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC)},
		{name: "rfc3339 offset", in: "2026-11-30T09:00:00+02:00", want: time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC)},
		{name: "rfc3339 fraction", in: "2026-11-30T07:00:00.5Z", want: time.Date(2026, 11, 30, 7, 0, 0, 5e8, time.UTC)},
		{name: "rfc3339 is absolute forward too", in: "2026-12-02T08:00:00Z", forward: true, want: now.Add(24 * time.Hour)},
		{name: "hours back", in: "24h", want: now.Add(-24 * time.Hour)},
		{name: "minutes back", in: "90m", want: now.Add(-90 * time.Minute)},
		{name: "days back", in: "7d", want: now.Add(-7 * 24 * time.Hour)},
		{name: "days and hours", in: "1d12h", want: now.Add(-36 * time.Hour)},
		{name: "days forward", in: "2d", forward: true, want: now.Add(48 * time.Hour)},
		{name: "hours forward", in: "4h30m", forward: true, want: now.Add(4*time.Hour + 30*time.Minute)},
		{name: "zero", in: "0s", want: now},
		{name: "empty", in: "", bad: "want an RFC 3339 time"},
		{name: "word", in: "yesterday", bad: "want an RFC 3339 time"},
		{name: "bare number", in: "24", bad: "want an RFC 3339 time"},
		{name: "negative", in: "-24h", bad: "want an RFC 3339 time"},
		{name: "negative after days", in: "1d-2h", bad: "want an RFC 3339 time"},
		{name: "two day parts", in: "1d2d", bad: "want an RFC 3339 time"},
		{name: "weeks", in: "2w", bad: "want an RFC 3339 time"},
		{name: "spaces", in: " 7d", bad: "want an RFC 3339 time"},
		{name: "date only", in: "2026-11-30", bad: "want an RFC 3339 time"},
		{name: "too many days", in: "999999999999999999999d", bad: "too far away"},
		{name: "days overflow", in: "106752d", bad: "too far away"},
		{name: "days plus hours overflow", in: "106751d24h", bad: "too far away"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTime(tc.in, now, tc.forward)
			if tc.bad != "" {
				if err == nil || !strings.Contains(err.Error(), tc.bad) {
					t.Fatalf("parseTime(%q) = %v, %v; want an error saying %q", tc.in, got, err, tc.bad)
				}
				if strings.Contains(tc.bad, "RFC 3339") && !errors.Is(err, errTime) {
					t.Errorf("not errTime: %v", err)
				}
				return
			}
			if err != nil || !got.Equal(tc.want) {
				t.Fatalf("parseTime(%q, forward %v) = %v, %v; want %v", tc.in, tc.forward, got, err, tc.want)
			}
		})
	}
}

// TestOneLine: stored text shows as one line of bounded width, whatever
// it holds.
func TestOneLine(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		width    int
		want     string
	}{
		{name: "plain", in: "committers: bob is not allowed", width: 100, want: "committers: bob is not allowed"},
		{name: "newlines", in: "deploy failed: exit status 3\nboom\r\nmore", width: 100, want: "deploy failed: exit status 3 boom more"},
		{name: "runs of space", in: "a \t\t  b\n\n\nc", width: 100, want: "a b c"},
		{name: "edges", in: "\n  a  \n", width: 100, want: "a"},
		{name: "terminal escapes", in: "ok\x1b[2J\x1b]0;pwned\x07 done", width: 100, want: "ok [2J ]0;pwned done"},
		{name: "c1 and bidi", in: "a\u0085b\u202ec\u2066d", width: 100, want: "a b c d"},
		{name: "invalid utf-8", in: "a\xffb", width: 100, want: "a\uFFFDb"},
		{name: "cut", in: "abcdefghij", width: 5, want: "abcde…"},
		{name: "cut at a space", in: "abcde fghij", width: 5, want: "abcde…"},
		{name: "cut runes, not bytes", in: "ééééééé", width: 3, want: "ééé…"},
		{name: "exact width", in: "abcde", width: 5, want: "abcde"},
		{name: "empty", in: "", width: 5, want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := oneLine(tc.in, tc.width); got != tc.want {
				t.Errorf("oneLine(%q, %d) = %q, want %q", tc.in, tc.width, got, tc.want)
			}
		})
	}
	long := strings.Repeat("why ", 10000)
	if got := []rune(oneLine(long, whyWidth)); len(got) > whyWidth+1 || got[len(got)-1] != '…' {
		t.Errorf("a long reason shows as %d runes: %q", len(got), string(got))
	}
}

// TestActorOf: --actor when given, else the OS user at the host; an
// actor that would not show as one line is refused.
func TestActorOf(t *testing.T) {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := actorOf(""); err != nil || got != u.Username+"@"+host {
		t.Errorf("actorOf(\"\") = %q, %v; want %q", got, err, u.Username+"@"+host)
	}
	if got, err := actorOf("alice@example.com"); err != nil || got != "alice@example.com" {
		t.Errorf("actorOf(alice) = %q, %v", got, err)
	}
	for _, bad := range []string{"   ", "alice\nbob", "alice\x1b[31m", "a\xffb", strings.Repeat("a", maxActor+1)} {
		if got, err := actorOf(bad); err == nil {
			t.Errorf("actorOf(%q) = %q, want an error", bad, got)
		}
	}
}

// TestLongFlags: the single-dash long flags of Go's flag package become
// double-dash for the selected command's flags only; values, shorthands,
// positional arguments and what follows "--" are left alone.
func TestLongFlags(t *testing.T) {
	root := &cobra.Command{Use: "gitmon"}
	root.Flags().Bool("version", false, "")
	h := &cobra.Command{Use: "history", Run: func(*cobra.Command, []string) {}}
	h.Flags().String("config", "", "")
	h.Flags().String("reason", "", "")
	h.Flags().Bool("json", false, "")
	h.Flags().Int("limit", 0, "")
	root.AddCommand(h)
	for _, tc := range []struct{ in, want []string }{
		{[]string{"history", "-config", "f.yaml", "-json"}, []string{"history", "--config", "f.yaml", "--json"}},
		{[]string{"history", "-limit=5", "-json=false"}, []string{"history", "--limit=5", "--json=false"}},
		{[]string{"history", "--config", "-json"}, []string{"history", "--config", "-json"}},    // a value
		{[]string{"history", "-reason", "-config"}, []string{"history", "--reason", "-config"}}, // a value
		{[]string{"history", "-h", "-help"}, []string{"history", "-h", "--help"}},               // cobra's help flag
		{[]string{"history", "-nope", "x"}, []string{"history", "-nope", "x"}},                  // not a flag: pflag reports it
		{[]string{"history", "--", "-json"}, []string{"history", "--", "-json"}},                // after --
		{[]string{"-version"}, []string{"--version"}},                                           // root
		{[]string{"history", "-version"}, []string{"history", "-version"}},                      // not history's
		{[]string{}, []string{}},
	} {
		if got := longFlags(root, tc.in); !slices.Equal(got, tc.want) || got == nil {
			t.Errorf("longFlags(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
