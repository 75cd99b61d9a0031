package store

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// golden compares got with testdata/file, or rewrites it under -update.
func golden(t *testing.T, file string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", file)
	if *update {
		must(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/store -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test ./internal/store -update if the change is right)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// historyRecords runs two records through the store as serve would: one
// that failed at its second stage with a ride-along reason, and one still
// pending. They come back newest first, as history --json prints them.
func historyRecords(t *testing.T) []*Record {
	ctx := context.Background()
	s, _ := newStore(t)
	done := pendingRecord(t, 1, "1.4.2")
	done.ID = "01JNKQ8Z0000000000000000A1"
	done.PreviousVersion = "1.4.1"
	done.Tickets = []string{"PAY-12"}
	done.Commits = []policy.Contribution{
		{Commit: sha(1), Author: "alice@example.com", Committer: "alice@example.com", Fields: []string{"version"}},
		{Commit: sha(2), Author: "bob@example.com", Committer: "bob@example.com"},
	}
	// The baseline makes 1.4.1 the last attempted: the previous version.
	must(t, s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Branch: "qa", Commit: sha(9), Baseline: true,
		Services: []Service{{Repository: "deployments", Environment: "qa", Service: "payments", Present: true, Current: desc(t, "payments", "1.4.1", "")}}}))
	waiting := pendingRecord(t, 3, "1.4.3")
	waiting.ID = "01JNKQ8Z0000000000000000A2"
	waiting.Phase = PhasePolicy
	waiting.Reasons = []policy.Reason{{Rule: "jira", Message: "JIRA unavailable", Commit: sha(3)}}
	must(t, s.Apply(ctx, Batch{Repository: "deployments", Environment: "qa", Branch: "qa", Commit: sha(3),
		Records: []*Record{done, waiting}}))

	must(t, s.StartRecord(ctx, done.ID, []Stage{{Name: "deploy", Runner: "exec"}, {Name: "healthcheck", Runner: "http"},
		{Name: "smoke", Runner: "plugin"}}, t0.Add(time.Minute)))
	start := t0.Add(time.Minute)
	end := start.Add(42*time.Second + 500*time.Millisecond)
	must(t, s.UpdateStage(ctx, done.ID, 0, Stage{Name: "deploy", Runner: "exec", Status: StageSucceeded,
		StartedAt: &start, FinishedAt: &end, Message: "exit 0", Output: "deployed\n", RunID: "r0", Handle: json.RawMessage(`{"pgid":7}`)}))
	end2 := end.Add(time.Minute)
	must(t, s.UpdateStage(ctx, done.ID, 1, Stage{Name: "healthcheck", Runner: "http", Status: StageFailed,
		StartedAt: &end, FinishedAt: &end2, Message: "GET https://payments.qa.example.com/healthz: 503", URL: ""}))
	must(t, s.UpdateStage(ctx, done.ID, 2, Stage{Name: "smoke", Runner: "plugin", Status: StageSkipped}))
	must(t, s.FinishRecord(ctx, done.ID, StatusFailed, end2))

	rs, err := s.Records(ctx, Filter{Environment: "qa"})
	must(t, err)
	return rs
}

func TestRecordJSONGolden(t *testing.T) {
	b, err := json.MarshalIndent(historyRecords(t), "", "  ")
	must(t, err)
	golden(t, "history.golden.json", append(b, '\n'))
}

// TestRecordJSONShape checks every record's JSON against SPEC §7's example:
// the same keys in the same order at every level, the same JSON types
// (times are RFC 3339 strings, or null where a time is not yet set), and
// finished_at null exactly while the record has not ended.
func TestRecordJSONShape(t *testing.T) {
	spec, err := os.ReadFile(filepath.Join("testdata", "spec7.json"))
	must(t, err)
	var want any
	must(t, json.Unmarshal(spec, &want))
	recs := append(historyRecords(t), &Record{}) // a zero Record too: lists stay []
	for _, r := range recs {
		b, err := json.Marshal(r)
		must(t, err)
		specOrder := keyOrder(t, spec)
		for path, keys := range keyOrder(t, b) {
			if !reflect.DeepEqual(keys, specOrder[path]) {
				t.Errorf("record %q: keys of %q\n got %v\nwant %v", r.ID, path, keys, specOrder[path])
			}
		}
		var got any
		must(t, json.Unmarshal(b, &got))
		sameShape(t, r.ID, "", got, want)
		m := got.(map[string]any)
		if ended := Finished(r.Status); ended != (m["finished_at"] != nil) {
			t.Errorf("record %q (%s): finished_at = %v", r.ID, r.Status, m["finished_at"])
		}
		for _, k := range []string{"tickets", "reasons", "commits", "stages"} {
			if _, ok := m[k].([]any); !ok {
				t.Errorf("record %q: %s = %v, want a list", r.ID, k, m[k])
			}
		}
	}
}

// keyOrder lists, for each object path ("" is the top, lists are walked
// through), its keys in order of first appearance.
func keyOrder(t *testing.T, b []byte) map[string][]string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	out := map[string][]string{}
	var walk func(path string)
	walk = func(path string) {
		tok, err := dec.Token()
		must(t, err)
		switch tok {
		case json.Delim('{'):
			for dec.More() {
				k, err := dec.Token()
				must(t, err)
				key := k.(string)
				if !slices.Contains(out[path], key) {
					out[path] = append(out[path], key)
				}
				walk(path + "." + key)
			}
			_, err = dec.Token()
			must(t, err)
		case json.Delim('['):
			for dec.More() {
				walk(path)
			}
			_, err = dec.Token()
			must(t, err)
		}
	}
	walk("")
	return out
}

var rfc3339Keys = map[string]bool{"created_at": true, "finished_at": true, "started_at": true, "checked_at": true, "succeeded_at": true}

// nullableKeys are objects that are null when there is none (SPEC §7).
var nullableKeys = map[string]bool{"upstream": true, "signer": true}

// sameShape compares JSON values by keys and types; the SPEC's null and
// RFC3339 placeholders stand for a time or null.
func sameShape(t *testing.T, id, path string, got, want any) {
	t.Helper()
	key := path[strings.LastIndex(path, ".")+1:]
	if rfc3339Keys[key] {
		switch g := got.(type) {
		case nil:
		case string:
			if _, err := time.Parse(time.RFC3339, g); err != nil {
				t.Errorf("record %q %s = %q: not RFC 3339", id, path, g)
			}
		default:
			t.Errorf("record %q %s = %v: want a time or null", id, path, got)
		}
		return
	}
	if nullableKeys[key] && got == nil {
		return
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			t.Errorf("record %q %s = %v, want an object", id, path, got)
			return
		}
		if gk, wk := sortedKeys(g), sortedKeys(w); !reflect.DeepEqual(gk, wk) {
			t.Errorf("record %q %s keys %v, want %v", id, path, gk, wk)
			return
		}
		for k := range w {
			sameShape(t, id, path+"."+k, g[k], w[k])
		}
	case []any:
		g, ok := got.([]any)
		if !ok {
			t.Errorf("record %q %s = %v, want a list", id, path, got)
			return
		}
		if len(w) > 0 {
			for _, e := range g {
				sameShape(t, id, path, e, w[0])
			}
		}
	default:
		if reflect.TypeOf(got) != reflect.TypeOf(want) {
			t.Errorf("record %q %s = %#v, want the type of %#v", id, path, got, want)
		}
	}
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
