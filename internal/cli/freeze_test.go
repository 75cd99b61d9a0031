package cli

import (
	"encoding/json"
	"os/user"
	"strings"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/internal/store"
)

// events returns `gitmon history --events --json`, newest first.
func events(t *testing.T, r *rig) []store.Event {
	t.Helper()
	res := gitmon(t, "history", "--config", r.cfg, "--events", "--json")
	var evs []store.Event
	if err := json.Unmarshal([]byte(res.out), &evs); err != nil || res.code != ExitOK {
		t.Fatalf("history --events --json: %v\n%v", err, res)
	}
	return evs
}

// TestFreezeRoundTrip: freeze and unfreeze, of one environment and of
// all of them, beside a serve holding the state: each is stored, printed
// in one line naming the actor, and recorded as an event with the actor.
func TestFreezeRoundTrip(t *testing.T) {
	r := newRig(t)
	st := r.store() // a running serve holds the lock
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}

	before := time.Now()
	res := gitmon(t, "freeze", "--config", r.cfg, "--env", "prod", "--reason", "quarter-end close", "--until", "2d", "--actor", "alice@example.com")
	if res.code != ExitOK || !strings.HasPrefix(res.out, "froze prod until ") || !strings.Contains(res.out, ": quarter-end close; recorded as alice@example.com\n") || strings.Count(res.out, "\n") != 1 {
		t.Fatalf("freeze: %v", res)
	}
	fs, err := st.Freezes(t.Context())
	if err != nil || len(fs) != 1 {
		t.Fatalf("freezes %+v, %v", fs, err)
	}
	f := fs[0]
	if f.Environment != "prod" || f.Reason != "quarter-end close" || f.Actor != "alice@example.com" || f.Until == nil ||
		f.Until.Before(before.Add(48*time.Hour)) || f.Until.After(time.Now().Add(48*time.Hour)) {
		t.Errorf("stored freeze %+v, until %v", f, f.Until)
	}
	evs := events(t, r)
	if len(evs) != 1 || evs[0].Kind != store.EventFreeze || evs[0].Environment != "prod" || evs[0].Actor != "alice@example.com" || !strings.Contains(evs[0].Message, "quarter-end close") {
		t.Fatalf("events after freeze: %+v", evs)
	}

	// Frozen again, with the default actor and flags after nothing: it
	// replaces the freeze, and says so.
	res = gitmon(t, "freeze", "--reason", "release train", "--env", "prod", "--config", r.cfg)
	if res.code != ExitOK || !strings.Contains(res.out, "froze prod: release train; recorded as "+u.Username+"@") ||
		!strings.Contains(res.out, "it replaces the freeze set by alice@example.com: quarter-end close") {
		t.Errorf("freeze again: %v", res)
	}
	if fs, _ := st.Freezes(t.Context()); len(fs) != 1 || fs[0].Reason != "release train" || fs[0].Until != nil {
		t.Errorf("the second freeze did not replace the first: %+v", fs)
	}

	res = gitmon(t, "unfreeze", "--config", r.cfg, "--env", "prod", "--actor", "bob@example.com")
	if res.code != ExitOK || !strings.HasPrefix(res.out, "unfroze prod (frozen by "+u.Username+"@") || !strings.Contains(res.out, "release train); recorded as bob@example.com\n") {
		t.Errorf("unfreeze: %v", res)
	}
	if fs, _ := st.Freezes(t.Context()); len(fs) != 0 {
		t.Errorf("still frozen: %+v", fs)
	}
	evs = events(t, r)
	if len(evs) != 3 || evs[0].Kind != store.EventUnfreeze || evs[0].Environment != "prod" || evs[0].Actor != "bob@example.com" {
		t.Fatalf("events after unfreeze: %+v", evs)
	}
	if evs[1].Kind != store.EventFreeze || !strings.HasPrefix(evs[1].Actor, u.Username+"@") {
		t.Errorf("the second freeze's event: %+v", evs[1])
	}

	// Nothing to lift: said, exit 0, no event.
	if res := gitmon(t, "unfreeze", "--config", r.cfg, "--env", "prod"); res.code != ExitOK || res.out != "prod was not frozen\n" {
		t.Errorf("unfreeze of an environment not frozen: %v", res)
	}
	if n := len(events(t, r)); n != 3 {
		t.Errorf("an unfreeze that lifted nothing recorded an event: %d events", n)
	}

	// The halt: every environment, stored as "".
	res = gitmon(t, "freeze", "--config", r.cfg, "--all", "--reason", "incident INC-42", "--actor", "carol")
	if res.code != ExitOK || res.out != "halted every environment: incident INC-42; recorded as carol\n" {
		t.Errorf("freeze --all: %v", res)
	}
	if fs, _ := st.Freezes(t.Context()); len(fs) != 1 || fs[0].Environment != "" || fs[0].Actor != "carol" {
		t.Errorf("the halt: %+v", fs)
	}
	// Unfreezing one environment leaves the halt, and says so.
	res = gitmon(t, "unfreeze", "--config", r.cfg, "--env", "qa")
	if res.code != ExitOK || res.out != "qa was not frozen\n" || !strings.Contains(res.errOut, "every environment is still halted (by carol: incident INC-42)") {
		t.Errorf("unfreeze --env while halted: %v", res)
	}
	res = gitmon(t, "unfreeze", "--config", r.cfg, "--all", "--actor", "dave")
	if res.code != ExitOK || !strings.HasPrefix(res.out, "lifted the halt of every environment (frozen by carol since ") || !strings.HasSuffix(res.out, "recorded as dave\n") {
		t.Errorf("unfreeze --all: %v", res)
	}
	evs = events(t, r)
	if evs[0].Kind != store.EventUnfreeze || evs[0].Environment != "" || evs[0].Actor != "dave" || evs[1].Kind != store.EventFreeze || evs[1].Actor != "carol" {
		t.Errorf("events of the halt: %+v", evs[:2])
	}
	if res := gitmon(t, "unfreeze", "--config", r.cfg, "--all"); res.code != ExitOK || res.out != "no halt was set\n" {
		t.Errorf("unfreeze --all without a halt: %v", res)
	}
}

// TestFreezeRefusesBadUsage: every mistake is exit 2 with a message, and
// writes nothing.
func TestFreezeRefusesBadUsage(t *testing.T) {
	r := newRig(t)
	st := r.store()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"freeze", "--env", "qa", "--all", "--reason", "r"}, "--env and --all exclude each other"},
		{[]string{"freeze", "--reason", "r"}, "say which: --env E, or --all"},
		{[]string{"freeze", "--env", "qa"}, "--reason is required"},
		{[]string{"freeze", "--env", "qa", "--reason", "  "}, "--reason must not be empty"},
		{[]string{"freeze", "--env", "qa", "--reason", "two\nlines"}, "--reason must be one line"},
		{[]string{"freeze", "--env", "qa", "--reason", strings.Repeat("r", maxReason+1)}, "--reason is 1025 bytes long"},
		{[]string{"freeze", "--env", "live", "--reason", "r"}, `no environment "live" in ` + r.cfg + " (it has qa, staging, prod)"},
		{[]string{"freeze", "--env", "qa", "--reason", "r", "--until", "2020-01-01T00:00:00Z"}, "--until 2020-01-01T00:00:00Z is in the past"},
		{[]string{"freeze", "--env", "qa", "--reason", "r", "--until", "0s"}, "--until 0s is in the past"},
		{[]string{"freeze", "--env", "qa", "--reason", "r", "--until", "tomorrow"}, `--until "tomorrow": want an RFC 3339 time`},
		{[]string{"freeze", "--env", "qa", "--reason", "r", "--actor", "eve\x1b[31m"}, "--actor must be one line"},
		{[]string{"freeze", "--env", "qa", "--reason", "r", "now"}, `takes no arguments, got "now"`},
		{[]string{"unfreeze", "--env", "qa", "--all"}, "--env and --all exclude each other"},
		{[]string{"unfreeze"}, "say which: --env E, or --all"},
		{[]string{"unfreeze", "--env", "live"}, `no environment "live"`},
		{[]string{"unfreeze", "--all", "--reason", "r"}, "unknown flag: --reason"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			res := gitmon(t, append(tc.args, "--config", r.cfg)...)
			if res.code != ExitUsage || !strings.Contains(res.errOut, tc.want) || res.out != "" {
				t.Errorf("want exit 2 saying %q: %v", tc.want, res)
			}
		})
	}
	if fs, _ := st.Freezes(t.Context()); len(fs) != 0 {
		t.Errorf("a refused command froze: %+v", fs)
	}
	if evs := events(t, r); len(evs) != 0 {
		t.Errorf("a refused command recorded events: %+v", evs)
	}

	// Without a state folder there is no serve to act on it.
	other := r.write("nostate.yaml", strings.Replace(rigConfig, "state: ./state", "state: ./elsewhere", 1), 0o644)
	if res := gitmon(t, "freeze", "--config", other, "--env", "qa", "--reason", "r"); res.code != ExitUsage || !strings.Contains(res.errOut, "no state folder at ") {
		t.Errorf("freeze without a state: %v", res)
	}
}

// TestUnfreezeOfARemovedEnvironment: a freeze left in the state for an
// environment the config no longer has can still be lifted; a name that
// is neither is refused.
func TestUnfreezeOfARemovedEnvironment(t *testing.T) {
	r := newRig(t)
	st := r.store()
	if err := st.Freeze(t.Context(), store.Freeze{Environment: "legacy", Reason: "retired", Actor: "ops"}); err != nil {
		t.Fatal(err)
	}
	if res := gitmon(t, "unfreeze", "--config", r.cfg, "--env", "legacy", "--actor", "alice"); res.code != ExitOK || !strings.HasPrefix(res.out, "unfroze legacy (frozen by ops") {
		t.Errorf("unfreeze of a removed environment: %v", res)
	}
	if res := gitmon(t, "unfreeze", "--config", r.cfg, "--env", "legacy"); res.code != ExitUsage || !strings.Contains(res.errOut, `no environment "legacy"`) {
		t.Errorf("unfreeze of a removed environment, once lifted: %v", res)
	}
}

// TestResumeRecordsTheActor: resume takes --actor, and its default is
// the OS user and host, as freeze's.
func TestResumeRecordsTheActor(t *testing.T) {
	r := newRig(t)
	st := r.store()
	if err := st.Apply(t.Context(), store.Batch{Repository: "deployments", Environment: "qa", Branch: "qa", Commit: sha, Pause: store.PauseForcePush, Anchor: sha}); err != nil {
		t.Fatal(err)
	}
	res := gitmon(t, "resume", "--env", "qa", "--config", r.cfg, "--actor", "alice@example.com")
	if res.code != ExitOK || !strings.Contains(res.out, "resumed qa (repository deployments, branch qa") || !strings.HasSuffix(res.out, "recorded as alice@example.com\n") {
		t.Fatalf("resume: %v", res)
	}
	evs := events(t, r)
	if len(evs) == 0 || evs[0].Kind != store.EventResume || evs[0].Actor != "alice@example.com" {
		t.Errorf("resume event: %+v", evs)
	}
	if res := gitmon(t, "resume", "--env", "qa", "--config", r.cfg, "--actor", "a\nb"); res.code != ExitUsage || !strings.Contains(res.errOut, "--actor must be one line") {
		t.Errorf("resume with a two-line actor: %v", res)
	}
}
