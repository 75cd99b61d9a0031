// Package buildinfo says which gitmon this is: its version, the commit it
// was built from and when. `make build` stamps them with
//
//	-ldflags "-X github.com/gitmon-dev/gitmon/internal/buildinfo.version=v1.2.3
//	          -X github.com/gitmon-dev/gitmon/internal/buildinfo.commit=<40-hex>
//	          -X github.com/gitmon-dev/gitmon/internal/buildinfo.date=<RFC 3339>"
//
// A build that is not stamped (go build, go run, go test, go install)
// falls back on what the Go toolchain records in the binary: the module
// version, and the VCS revision and commit time when built in a checkout.
package buildinfo

import (
	"runtime/debug"
	"strings"
	"sync"
)

// Stamped by the linker; see the package comment.
var (
	version string
	commit  string
	date    string
)

// Unknown is what a field shows when neither the stamp nor the toolchain
// knows it.
const Unknown = "unknown"

// Info is one build's identity.
type Info struct {
	// Version is the release (such as v1.2.3, or what git describe
	// says), "dev" for an unstamped build of a checkout.
	Version string
	// Commit is the full commit id, with "-dirty" when the work tree had
	// changes, or Unknown.
	Commit string
	// Date is when it was built (RFC 3339); for an unstamped build, the
	// commit's time; or Unknown.
	Date string
	// GoVersion is the toolchain that built it.
	GoVersion string
}

// Get returns this binary's Info.
var Get = sync.OnceValue(func() Info {
	bi, _ := debug.ReadBuildInfo()
	return resolve(version, commit, date, bi)
})

// resolve prefers the stamped values and fills the rest from bi (nil when
// the binary carries no build information).
func resolve(version, commit, date string, bi *debug.BuildInfo) Info {
	in := Info{Version: version, Commit: commit, Date: date}
	var rev, at string
	modified := false
	if bi != nil {
		in.GoVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if in.Version == "" {
			// go install module@v1.2.3 records the module version;
			// a checkout build records "(devel)" or a pseudo-version.
			if v := bi.Main.Version; v != "" && v != "(devel)" {
				in.Version = v
			}
		}
	}
	if in.Commit == "" && rev != "" {
		in.Commit = rev
		if modified {
			in.Commit += "-dirty"
		}
	}
	if in.Date == "" {
		in.Date = at
	}
	if in.Version == "" {
		in.Version = "dev"
	}
	if in.Commit == "" {
		in.Commit = Unknown
	}
	if in.Date == "" {
		in.Date = Unknown
	}
	if in.GoVersion == "" {
		in.GoVersion = Unknown
	}
	return in
}

// ShortCommit is the first 12 hex digits of the commit, keeping a
// "-dirty" mark, for labels and one-line banners.
func (in Info) ShortCommit() string {
	c, dirty := strings.CutSuffix(in.Commit, "-dirty")
	if len(c) > 12 {
		c = c[:12]
	}
	if dirty {
		c += "-dirty"
	}
	return c
}
