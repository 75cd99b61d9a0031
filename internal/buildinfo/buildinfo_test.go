package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestResolve(t *testing.T) {
	const rev = "0123456789abcdef0123456789abcdef01234567"
	checkout := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: rev}, {Key: "vcs.time", Value: "2026-11-02T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	installed := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.4.0"}}
	for _, tc := range []struct {
		name                  string
		version, commit, date string
		bi                    *debug.BuildInfo
		want                  Info
	}{
		{name: "stamped by make build", version: "v1.2.3", commit: rev, date: "2026-12-01T08:00:00Z", bi: checkout,
			want: Info{Version: "v1.2.3", Commit: rev, Date: "2026-12-01T08:00:00Z", GoVersion: "go1.26.0"}},
		{name: "go build in a checkout with changes", bi: checkout,
			want: Info{Version: "dev", Commit: rev + "-dirty", Date: "2026-11-02T10:00:00Z", GoVersion: "go1.26.0"}},
		{name: "go install module@version", bi: installed,
			want: Info{Version: "v1.4.0", Commit: Unknown, Date: Unknown, GoVersion: "go1.26.0"}},
		{name: "no build information",
			want: Info{Version: "dev", Commit: Unknown, Date: Unknown, GoVersion: Unknown}},
		{name: "a stamp wins over the toolchain's commit", commit: "fedcba9876543210fedcba9876543210fedcba98", bi: checkout,
			want: Info{Version: "dev", Commit: "fedcba9876543210fedcba9876543210fedcba98", Date: "2026-11-02T10:00:00Z", GoVersion: "go1.26.0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := resolve(tc.version, tc.commit, tc.date, tc.bi); got != tc.want {
				t.Errorf("resolve = %+v\nwant      %+v", got, tc.want)
			}
		})
	}
}

func TestShortCommit(t *testing.T) {
	for in, want := range map[string]string{
		"0123456789abcdef0123456789abcdef01234567":       "0123456789ab",
		"0123456789abcdef0123456789abcdef01234567-dirty": "0123456789ab-dirty",
		Unknown: Unknown,
	} {
		if got := (Info{Commit: in}).ShortCommit(); got != want {
			t.Errorf("ShortCommit(%q) = %q, want %q", in, got, want)
		}
	}
}
