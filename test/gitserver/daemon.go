package gitserver

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
)

// Daemon serves repo over git:// with `git daemon` on a free loopback
// port and returns the repository's URL. The daemon is ready when this
// returns, and is ended (by the PID the test started) at cleanup.
func Daemon(t testing.TB, repo *Repo) (url string) {
	t.Helper()
	base := filepath.Dir(repo.Bare)
	_, port := startProcess(t, "git-daemon", t.TempDir(), nil, func(port int) []string {
		return []string{"git", "daemon", "--reuseaddr", "--export-all", "--informative-errors",
			"--base-path=" + base, "--listen=127.0.0.1", "--port=" + strconv.Itoa(port)}
	})
	return fmt.Sprintf("git://127.0.0.1:%d/%s", port, filepath.Base(repo.Bare))
}
