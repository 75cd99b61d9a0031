package trust

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// gpgHome is a throwaway GNUPGHOME; its gpg-agent is stopped at cleanup.
type gpgHome struct {
	t    testing.TB
	dir  string
	fake string // --faked-system-time value, or ""
}

func newGPGHome(t testing.TB, fake string) *gpgHome {
	t.Helper()
	// gpg-agent's socket path must stay short, so not under t.TempDir's long name.
	dir, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	h := &gpgHome{t: t, dir: dir, fake: fake}
	t.Cleanup(func() {
		cmd := exec.Command("gpgconf", "--kill", "gpg-agent")
		cmd.Env = append(os.Environ(), "GNUPGHOME="+dir)
		_ = cmd.Run()
		_ = os.RemoveAll(dir)
	})
	return h
}

func (h *gpgHome) gpg(stdin string, args ...string) []byte {
	h.t.Helper()
	all := []string{"--batch", "--no-tty", "--quiet"}
	if h.fake != "" {
		all = append(all, "--faked-system-time", h.fake)
	}
	cmd := exec.Command("gpg", append(all, args...)...)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+h.dir)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		h.t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes()
}

// genKey makes an unprotected ed25519 signing key and returns its fingerprint.
func (h *gpgHome) genKey(name, email, expire string) string {
	h.t.Helper()
	h.gpg(fmt.Sprintf("%%no-protection\nKey-Type: eddsa\nKey-Curve: ed25519\nKey-Usage: sign\nName-Real: %s\nName-Email: %s\nExpire-Date: %s\n%%commit\n", name, email, expire), "--gen-key")
	out := h.gpg("", "--with-colons", "--list-keys", email)
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Split(line, ":"); len(f) > 9 && f[0] == "fpr" {
			return f[9]
		}
	}
	h.t.Fatalf("no fingerprint for %s in\n%s", email, out)
	return ""
}

// revoke imports the revocation certificate gpg wrote at key generation.
func (h *gpgHome) revoke(fpr string) {
	h.t.Helper()
	rev, err := os.ReadFile(filepath.Join(h.dir, "openpgp-revocs.d", fpr+".rev"))
	if err != nil {
		h.t.Fatal(err)
	}
	// gpg prefixes the armor with ':' so it is not imported by accident.
	h.gpg(strings.Replace(string(rev), ":-----BEGIN", "-----BEGIN", 1), "--import")
}

func (h *gpgHome) keyring(fprs ...string) openpgp.EntityList {
	h.t.Helper()
	el, err := ReadKeyring(bytes.NewReader(h.gpg("", append([]string{"--armor", "--export"}, fprs...)...)), "keys.asc")
	if err != nil {
		h.t.Fatal(err)
	}
	return el
}

// gitConfig makes git sign with this home's key, through a wrapper that
// passes GNUPGHOME and the faked time on to gpg.
func (h *gpgHome) gitConfig(fpr string) []string {
	h.t.Helper()
	wrapper := filepath.Join(h.dir, "gpg.sh")
	fake := ""
	if h.fake != "" {
		fake = "--faked-system-time " + h.fake
	}
	script := fmt.Sprintf("#!/bin/sh\nGNUPGHOME=%q exec gpg %s \"$@\"\n", h.dir, fake)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		h.t.Fatal(err)
	}
	return []string{"gpg.format=openpgp", "gpg.program=" + wrapper, "user.signingkey=" + fpr}
}

func gitDate(t time.Time) []string {
	d := fmt.Sprintf("%d +0000", t.Unix())
	return []string{"GIT_COMMITTER_DATE=" + d, "GIT_AUTHOR_DATE=" + d}
}
