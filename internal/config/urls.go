package config

import (
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/gitmon-dev/gitmon/internal/redact"
)

// urlKind is the transport a repository URL uses.
type urlKind int

const (
	kindUnknown urlKind = iota // missing or invalid
	kindHTTPS
	kindHTTP // plain, needs insecure: true
	kindSSH  // ssh:// or scp-like
	kindGit  // plain git://, needs insecure: true
	kindFile // file:// or a local path
)

// checkRepoURL checks a repository URL and returns it with a local path
// made absolute against dir, its kind, and a problem, if any. Problems
// show the URL through redact.URL only.
func checkRepoURL(raw string, insecure bool, dir string) (string, urlKind, string) {
	shown := redact.URL(raw)
	if strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return raw, kindUnknown, fmt.Sprintf("%q must not contain spaces or control characters", shown)
	}
	if strings.HasPrefix(raw, "-") {
		return raw, kindUnknown, fmt.Sprintf("%q must not start with '-'", shown)
	}
	if i := strings.Index(raw, "::"); i > 0 && !strings.ContainsAny(raw[:i], "/:") {
		return raw, kindUnknown, fmt.Sprintf("%q uses a Git remote helper (transport::address), which is not allowed: it can run commands", shown)
	}
	if i := strings.Index(raw, "://"); i >= 0 {
		scheme := strings.ToLower(raw[:i])
		u, err := url.Parse(raw)
		if err != nil || !schemeRe.MatchString(scheme) {
			// url.Parse's error repeats the URL, credentials and all.
			return raw, kindUnknown, fmt.Sprintf("%q is not a valid URL", shown)
		}
		var kind urlKind
		switch scheme {
		case "https":
			kind = kindHTTPS
		case "http":
			kind = kindHTTP
		case "ssh", "git+ssh", "ssh+git":
			kind = kindSSH
		case "git":
			kind = kindGit
		case "file":
			kind = kindFile
		default:
			return raw, kindUnknown, fmt.Sprintf("the %s:// scheme is not supported (use https://, ssh://, file:// or a path)", sanitizeScheme(scheme))
		}
		if u.User != nil {
			_, hasPassword := u.User.Password()
			switch {
			case kind == kindSSH && hasPassword:
				return raw, kind, fmt.Sprintf("%q holds a password, which would end up in logs; use auth.ssh_key_file", shown)
			case kind != kindSSH:
				return raw, kind, fmt.Sprintf("%q holds credentials, which would end up in logs; use auth.username_env and auth.password_env (or their _file twins)", shown)
			}
		}
		if kind == kindFile {
			if u.Host != "" && u.Host != "localhost" {
				return raw, kind, fmt.Sprintf("%q names a host; a file:// URL is a local path such as file:///srv/git/repo.git", shown)
			}
			if u.Path == "" {
				return raw, kind, fmt.Sprintf("%q has no path", shown)
			}
			return raw, kind, ""
		}
		if u.Hostname() == "" {
			return raw, kind, fmt.Sprintf("%q has no host", shown)
		}
		if (kind == kindHTTP || kind == kindGit) && !insecure {
			return raw, kind, fmt.Sprintf("%s:// is neither encrypted nor authenticated, so anyone on the network path can tamper with what gitmon deploys; use https:// or ssh://, or set insecure: true", scheme)
		}
		return raw, kind, ""
	}
	// scp-like: [user@]host:path, with the ':' before any '/'.
	if colon := strings.Index(raw, ":"); colon >= 0 && !strings.Contains(raw[:colon], "/") {
		host := raw[:colon]
		if at := strings.LastIndex(host, "@"); at >= 0 {
			host = host[at+1:]
		}
		if at := strings.Index(raw, "@"); at > colon {
			return raw, kindSSH, fmt.Sprintf("%q holds credentials, which would end up in logs; use auth.ssh_key_file", shown)
		}
		if host == "" || raw[colon+1:] == "" {
			return raw, kindSSH, fmt.Sprintf("%q is not a valid scp-like address (user@host:path)", shown)
		}
		return raw, kindSSH, ""
	}
	// A local path.
	p := raw
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	return p, kindFile, ""
}

// checkServiceURL checks the base URL of an HTTP service that gitmon
// sends a token to: https, or plain http to a loopback address only.
func checkServiceURL(raw string) string {
	shown := redact.URL(raw)
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Sprintf("%q is not an http(s) URL with a host", shown)
	}
	if u.User != nil {
		return fmt.Sprintf("%q holds credentials, which would end up in logs; use the _env or _file keys", shown)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return fmt.Sprintf("%q would send the token unencrypted; use https:// (plain http:// is allowed for loopback addresses only)", shown)
	}
	return ""
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkListen checks a host:port to listen on.
func checkListen(s string) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Sprintf("%q is not host:port (such as 127.0.0.1:8080)", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Sprintf("%q: the port must be a number from 0 to 65535", s)
	}
	if host != "" && !validHost(host) {
		return fmt.Sprintf("%q: %q is not a host name or IP address", s, host)
	}
	return ""
}

func validHost(h string) bool {
	if net.ParseIP(strings.Trim(h, "[]")) != nil {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

func validEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && a.Name == ""
}

func validChannel(c string) bool {
	return c != "" && len(c) <= 80 && !strings.ContainsFunc(c, func(r rune) bool { return r <= ' ' || r == 0x7f })
}

// validGlob reports whether g is a well-formed path.Match pattern.
// path.Match checks the whole pattern even when the name does not match.
func validGlob(g string) bool {
	_, err := path.Match(g, "")
	return err == nil
}

// abs resolves p against the config file's folder.
func (l *loader) abs(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(l.dir, p)
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return nil
		}
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		return resolve(n.Content[0])
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}
