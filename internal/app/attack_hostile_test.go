package app

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/policy"
)

// rawState opens the state's database behind the store's back: what an
// older gitmon, a hand edit or damage may have left there.
func rawState(t *testing.T, a *App) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(a.cfg.State, store.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestAttackGateHostileFreeze: a freeze whose reason is 1 MiB of text
// with escape sequences and newlines, set by an actor whose name holds
// newlines, written to the state as is. Every record it holds gets one
// readable line of bounded length as its reason, not a copy of the 1 MiB,
// and status prints no control character and stays small.
func TestAttackGateHostileFreeze(t *testing.T) {
	r := newGateRig(t, `{}`)
	ctx := context.Background()
	reason := strings.Repeat("stop \x1b[31mthe\n line\u202e ", 1<<20/20)
	if _, err := rawState(t, r.a).ExecContext(ctx, `INSERT INTO freezes (environment, reason, actor, since) VALUES (?, ?, ?, ?)`,
		"staging", reason, "ops\nINFO forged log line", "2026-12-02T09:00:00Z"); err != nil {
		t.Fatal(err)
	}
	r.a.refreshFreezes(ctx)
	r.git.commit("staging", "alice@example.com", map[string]string{
		"services/pay.yaml": "service: pay\nversion: 1.1.0\n", "services/web.yaml": "service: web\nversion: 1.1.0\n"})
	r.poll()
	held, err := r.a.store.Pending(ctx)
	if err != nil || len(held) != 2 {
		t.Fatalf("held records: %d, %v", len(held), err)
	}
	for _, rec := range held {
		if rec.Phase != store.PhaseWindow || !hasRule(rec, policy.RuleWindow) {
			t.Fatalf("record of %s: %s %v; want held by the freeze", rec.Service, rec.Phase, rec.Reasons)
		}
		for _, rs := range rec.Reasons {
			if len(rs.Message) > 512 || strings.IndexFunc(rs.Message, unicode.IsControl) >= 0 {
				t.Errorf("record of %s: a reason of %d bytes, control characters %v; want one line under 512 bytes",
					rec.Service, len(rs.Message), strings.IndexFunc(rs.Message, unicode.IsControl) >= 0)
			}
		}
	}
	rep, err := Status(ctx, r.a.cfg, r.a.store, StatusOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(strings.TrimSuffix(text.String(), "\n"), "\n") {
		if strings.IndexFunc(line, func(c rune) bool { return unicode.IsControl(c) || unicode.Is(unicode.Bidi_Control, c) }) >= 0 || len(line) > 400 {
			t.Errorf("status line %d (%d bytes) holds a control character or is too long: %.80q", i+1, len(line), line)
		}
	}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	// The freeze itself, once, and a few bytes per service: not a copy per
	// record it holds.
	if len(js) > len(reason)*6+64<<10 {
		t.Errorf("status --json is %d bytes for a reason of %d", len(js), len(reason))
	}
	if n := bytes.Count(js, []byte("stop ")); n > 1<<20/20+2*freezeReasonWidth/5 {
		t.Errorf("status --json repeats the reason: %d copies of its words", n)
	}
}

// TestAttackGateHostileUpstream: qa's records of the artifact as a damaged
// or hand-edited state may hold them: a succeeded record whose
// descriptor is JSON null, one with no finished_at. Neither proves the
// artifact passed qa: staging's record waits (and serve does not die).
func TestAttackGateHostileUpstream(t *testing.T) {
	r := newGateRig(t, gated)
	ctx := context.Background()
	db := rawState(t, r.a)
	for i, edit := range []string{
		`UPDATE records SET descriptor = 'null' WHERE id = ?`,
		`UPDATE records SET finished_at = NULL WHERE id = ?`,
	} {
		port := 8000 + i
		r.git.commit("qa", "alice@example.com", map[string]string{"services/pay.yaml": fmt.Sprintf("service: pay\nversion: 1.1.0\nport: %d\n", port)})
		r.poll()
		qa := r.last("qa")
		r.release(qa, store.StatusSucceeded)
		if _, err := db.ExecContext(ctx, edit, qa.ID); err != nil {
			t.Fatal(err)
		}
	}
	r.git.commit("staging", "alice@example.com", desc("pay", "1.1.0"))
	r.poll()
	r.want(r.last("staging"), store.StatusPending, store.PhasePromotion, policy.RulePromotion)
}

// TestAttackGateFieldsOfAMapAndAbsentFields: promotion.fields naming the
// params map holds a change to any of its leaves until qa released the
// same params; a field the descriptors lack (image) makes no change a
// promotion by itself, and the other fields still count.
func TestAttackGateFieldsOfAMapAndAbsentFields(t *testing.T) {
	r := newGateRig(t, `{promotion: {required: true, from: qa, fields: [params]}}`)
	flag := "service: pay\nversion: 1.0.0\nparams: {flag: \"on\", nested: {depth: 2}}\n"
	r.git.commit("staging", "alice@example.com", map[string]string{"services/pay.yaml": flag})
	r.poll()
	st := r.last("staging")
	r.want(st, store.StatusPending, store.PhasePromotion, policy.RulePromotion)
	r.git.commit("qa", "alice@example.com", map[string]string{"services/pay.yaml": flag})
	r.poll()
	r.release(r.last("qa"), store.StatusSucceeded)
	r.wake()
	r.want(st, store.StatusPending, store.PhaseQueued, "")
	// The version is not the artifact here: a version change alone is
	// staging's own.
	r.git.commit("staging", "alice@example.com", map[string]string{"services/web.yaml": "service: web\nversion: 7.0.0\n"})
	r.poll()
	if web, _ := r.a.store.Records(context.Background(), store.Filter{Environment: "staging", Service: "web", Limit: 1}); len(web) != 1 || web[0].Phase != store.PhaseQueued {
		t.Fatalf("web's version change with fields [params]: %+v", web)
	}

	img := newGateRig(t, `{promotion: {required: true, from: qa, fields: [version, image]}}`)
	img.git.commit("staging", "alice@example.com", desc("pay", "1.2.0")) // no image anywhere: the version decides
	img.poll()
	img.want(img.last("staging"), store.StatusPending, store.PhasePromotion, policy.RulePromotion)
	img.git.commit("staging", "alice@example.com", map[string]string{"services/web.yaml": "service: web\nversion: 1.0.0\nimage: reg.example.com/web:1\n"})
	img.poll()
	if web, _ := img.a.store.Records(context.Background(), store.Filter{Environment: "staging", Service: "web", Limit: 1}); len(web) != 1 || web[0].Phase != store.PhasePromotion {
		t.Fatalf("web's new image, which qa never had: %+v", web)
	}
}
