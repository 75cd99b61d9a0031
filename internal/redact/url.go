// Package redact hides secrets in text meant for people: logs, errors,
// events. It is the one place that knows what a credential in a URL looks
// like, shared by the config loader and the repository monitor.
package redact

import "strings"

// URL hides the credentials a URL may hold, for errors and logs:
// "https://user:pass@host/repo" becomes "https://***@host/repo". Text
// that is not a URL is returned with anything that looks like a
// user:password@ prefix hidden. When in doubt it hides too much rather
// than too little.
func URL(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		rest := s[i+3:]
		// The last '@' wins: a password may hold an unescaped '/', '#'
		// or '@'. A path holding '@' is hidden too, which is harmless.
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			return s[:i+3] + "***" + rest[at:]
		}
		return s
	}
	// scp-like user@host:path: only "user:password@" is hidden.
	if at := strings.LastIndex(s, "@"); at >= 0 && strings.Contains(s[:at], ":") {
		return "***" + s[at:]
	}
	return s
}
