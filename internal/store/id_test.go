package store

import (
	"sort"
	"strings"
	"testing"
	"time"
)

func TestNewID(t *testing.T) {
	var g idGen
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	seen := map[string]bool{}
	var ids []string
	for i := range 5000 {
		// Many ids per millisecond, and a clock that steps back.
		at := now.Add(time.Duration(i/100) * time.Millisecond)
		if i == 2500 {
			at = now
		}
		id := g.next(at)
		if len(id) != 26 || strings.Trim(id, crockford) != "" {
			t.Fatalf("id %q is not 26 Crockford base-32 digits", id)
		}
		if seen[id] {
			t.Fatalf("id %q made twice", id)
		}
		seen[id] = true
		ids = append(ids, id)
	}
	if !sort.StringsAreSorted(ids) {
		t.Error("ids do not sort in the order they were made")
	}
	// The time comes first, as in the ULID spec's example.
	var fresh idGen
	if got := fresh.next(time.UnixMilli(1469918176385))[:10]; got != "01ARYZ6S41" {
		t.Errorf("time prefix %s, want 01ARYZ6S41", got)
	}
	if a, b := NewID(), NewID(); a >= b {
		t.Errorf("NewID %s then %s", a, b)
	}
}

func TestEncode(t *testing.T) {
	var max [16]byte
	for i := range max {
		max[i] = 0xff
	}
	for _, c := range []struct {
		in   [16]byte
		want string
	}{
		{[16]byte{}, "00000000000000000000000000"},
		{max, "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"},
		{[16]byte{15: 1}, "00000000000000000000000001"},
		{[16]byte{15: 32}, "00000000000000000000000010"},
	} {
		if got := encode(c.in); got != c.want {
			t.Errorf("encode(%x) = %s, want %s", c.in, got, c.want)
		}
	}
}
