package trust

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Bounds on an allowed_signers file: it is operator input, but a hostile
// or mistaken one (a log file pointed at by accident) must not exhaust the
// daemon.
const (
	MaxAllowedSignersSize  = 1 << 20 // bytes
	MaxAllowedSignersLines = 10000   // lines, blank and comment lines included
	maxLineLen             = 16 << 10
)

// AllowedSigners is a parsed allowed_signers file.
type AllowedSigners struct {
	File    string
	Entries []AllowedSigner
}

// AllowedSigner is one line of an allowed_signers file.
type AllowedSigner struct {
	Line       int
	Principals string // the pattern-list, as written
	// Namespaces is the namespaces= pattern-list; empty means any.
	Namespaces    string
	ValidAfter    time.Time // zero: no bound
	ValidBefore   time.Time // zero: no bound
	CertAuthority bool
	Key           ssh.PublicKey
}

// ParseError is a line of an allowed_signers file that could not be read.
type ParseError struct {
	File  string
	Line  int
	Field string // "principals", "options", "namespaces", "valid-after", "valid-before", "key", or "" for the file
	Err   error
}

func (e *ParseError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Field == "" {
		return fmt.Sprintf("%s: %v", loc, e.Err)
	}
	return fmt.Sprintf("%s: %s: %v", loc, e.Field, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// ParseAllowedSigners reads git's gpg.ssh.allowedSignersFile format (see
// ssh-keygen(1) ALLOWED SIGNERS): per line, principals, optional options
// (cert-authority, namespaces="…", valid-after=…, valid-before=…), the key
// type and the base64 key, then an optional comment. Every bad line is
// reported, joined, with file:line and the field.
func ParseAllowedSigners(r io.Reader, file string) (*AllowedSigners, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxAllowedSignersSize+1))
	if err != nil {
		return nil, &ParseError{File: file, Err: err}
	}
	if len(data) > MaxAllowedSignersSize {
		return nil, &ParseError{File: file, Err: fmt.Errorf("larger than %d bytes", MaxAllowedSignersSize)}
	}
	as := &AllowedSigners{File: file}
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxLineLen)
	n := 0
	for sc.Scan() {
		n++
		if n > MaxAllowedSignersLines {
			return nil, &ParseError{File: file, Line: n, Err: fmt.Errorf("more than %d lines", MaxAllowedSignersLines)}
		}
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		e, perr := parseAllowedSigner(line)
		if perr != nil {
			perr.File, perr.Line = file, n
			errs = append(errs, perr)
			continue
		}
		e.Line = n
		as.Entries = append(as.Entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, &ParseError{File: file, Line: n + 1, Err: fmt.Errorf("line longer than %d bytes or unreadable: %w", maxLineLen, err)}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return as, nil
}

func parseAllowedSigner(line string) (AllowedSigner, *ParseError) {
	var e AllowedSigner
	principals, rest, err := nextField(line)
	if err != nil {
		return e, &ParseError{Field: "principals", Err: err}
	}
	principals = unquote(principals)
	if principals == "" || strings.Contains(principals, ",,") || strings.HasPrefix(principals, ",") || strings.HasSuffix(principals, ",") {
		return e, &ParseError{Field: "principals", Err: fmt.Errorf("empty principal in %q", principals)}
	}
	e.Principals = principals
	if rest == "" {
		return e, &ParseError{Field: "key", Err: errors.New("missing")}
	}
	// The options field is present when what follows is not a key.
	key, kerr := parseKey(rest)
	if kerr == nil {
		e.Key = key
		return e, nil
	}
	if looksLikeKeyType(rest) {
		return e, &ParseError{Field: "key", Err: kerr}
	}
	opts, rest, err := nextField(rest)
	if err != nil {
		return e, &ParseError{Field: "options", Err: err}
	}
	if perr := parseOptions(opts, &e); perr != nil {
		return e, perr
	}
	if rest == "" {
		return e, &ParseError{Field: "key", Err: errors.New("missing")}
	}
	key, err = parseKey(rest)
	if err != nil {
		return e, &ParseError{Field: "key", Err: err}
	}
	e.Key = key
	return e, nil
}

// parseKey reads "type base64 [comment]".
func parseKey(s string) (ssh.PublicKey, error) {
	f := strings.Fields(s)
	if len(f) < 2 {
		return nil, fmt.Errorf("want a key type and a base64 key, got %q", truncate(s))
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(f[0] + " " + f[1]))
	if err != nil {
		return nil, fmt.Errorf("%q: %w", truncate(f[0]+" "+f[1]), err)
	}
	if key.Type() != f[0] {
		return nil, fmt.Errorf("key type %q does not match the key (%s)", f[0], key.Type())
	}
	if _, ok := key.(*ssh.Certificate); ok {
		return nil, errors.New("a certificate is not a signer key; list its CA with cert-authority")
	}
	return key, nil
}

func parseOptions(opts string, e *AllowedSigner) *ParseError {
	parts, err := splitOptions(opts)
	if err != nil {
		return &ParseError{Field: "options", Err: err}
	}
	seen := map[string]bool{}
	for _, o := range parts {
		name, value, hasValue := strings.Cut(o, "=")
		name = strings.ToLower(name)
		if seen[name] {
			return &ParseError{Field: name, Err: errors.New("given twice")}
		}
		seen[name] = true
		value = unquote(value)
		switch name {
		case "cert-authority":
			if hasValue {
				return &ParseError{Field: name, Err: errors.New("takes no value")}
			}
			e.CertAuthority = true
		case "namespaces":
			if value == "" {
				return &ParseError{Field: name, Err: errors.New("empty")}
			}
			e.Namespaces = value
		case "valid-after", "valid-before":
			t, err := parseTimestamp(value)
			if err != nil {
				return &ParseError{Field: name, Err: err}
			}
			if name == "valid-after" {
				e.ValidAfter = t
			} else {
				e.ValidBefore = t
			}
		default:
			return &ParseError{Field: "options", Err: fmt.Errorf("unknown option %q", truncate(name))}
		}
	}
	if !e.ValidAfter.IsZero() && !e.ValidBefore.IsZero() && e.ValidBefore.Before(e.ValidAfter) {
		return &ParseError{Field: "valid-before", Err: errors.New("before valid-after")}
	}
	return nil
}

// parseTimestamp reads YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z]: UTC with Z, the
// system's time zone without, as ssh-keygen does.
func parseTimestamp(s string) (time.Time, error) {
	loc := time.Local
	v := s
	if strings.HasSuffix(v, "Z") || strings.HasSuffix(v, "z") {
		loc, v = time.UTC, v[:len(v)-1]
	}
	layouts := map[int]string{8: "20060102", 12: "200601021504", 14: "20060102150405"}
	layout, ok := layouts[len(v)]
	if !ok {
		return time.Time{}, fmt.Errorf("%q: want YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z]", truncate(s))
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return time.Time{}, fmt.Errorf("%q: want YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z]", truncate(s))
		}
	}
	t, err := time.ParseInLocation(layout, v, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: %w", truncate(s), err)
	}
	return t, nil
}

// nextField splits off the first whitespace-separated field; double quotes
// protect spaces inside it.
func nextField(s string) (field, rest string, err error) {
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			inQuote = !inQuote
		case !inQuote && (c == ' ' || c == '\t'):
			return s[:i], strings.TrimLeft(s[i:], " \t"), nil
		}
	}
	if inQuote {
		return "", "", errors.New("unterminated quote")
	}
	return s, "", nil
}

// splitOptions splits on commas outside double quotes.
func splitOptions(s string) ([]string, error) {
	var out []string
	inQuote, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			inQuote = !inQuote
		case ',':
			if !inQuote {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	out = append(out, s[start:])
	for _, o := range out {
		if o == "" {
			return nil, errors.New("empty option")
		}
	}
	return out, nil
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// looksLikeKeyType reports whether s starts with an SSH key type, so that
// a bad key is reported as one rather than as unknown options.
func looksLikeKeyType(s string) bool {
	f, _, _ := strings.Cut(s, " ")
	for _, p := range []string{"ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-", "rsa-sha2-"} {
		if strings.HasPrefix(f, p) && !strings.Contains(f, "=") {
			return true
		}
	}
	return false
}
