package gitserver

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// SSH serves repo over SSH with /usr/sbin/sshd on a free loopback port,
// running as the current user, with a throwaway ed25519 host key and user
// key. It returns the repository's URL
// (ssh://USER@127.0.0.1:PORT/path/to/repo.git), the user's private key
// file, and a known_hosts file holding the host key for [127.0.0.1]:PORT.
// Git processes sshd starts get the hermetic environment too.
func SSH(t testing.TB, repo *Repo) (url, keyFile, knownHostsFile string) {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// sshd started as root insists on its privilege separation
		// folder, which the Debian package creates only when the service
		// starts.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatalf("creating /run/sshd for sshd: %v", err)
		}
	}
	dir := t.TempDir()
	hostKey := filepath.Join(dir, "ssh_host_ed25519_key")
	keyFile = filepath.Join(dir, "id_ed25519")
	keygen(t, hostKey, "gitserver-host")
	keygen(t, keyFile, "gitserver-user")
	authorized := filepath.Join(dir, "authorized_keys")
	copyFile(t, keyFile+".pub", authorized)
	hostPub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(hostPub))
	if len(fields) < 2 {
		t.Fatalf("unexpected host key %q", hostPub)
	}
	sshdBinary := sshdBin
	_, port := startProcess(t, "sshd", dir, nil, func(port int) []string {
		conf := filepath.Join(dir, "sshd_config")
		writeFile(t, conf, strings.Join([]string{
			"Port " + strconv.Itoa(port),
			"ListenAddress 127.0.0.1",
			"HostKey " + hostKey,
			"PidFile none",
			"AuthorizedKeysFile " + authorized,
			"StrictModes no",
			"UsePAM no",
			"PubkeyAuthentication yes",
			"PasswordAuthentication no",
			"KbdInteractiveAuthentication no",
			"PermitRootLogin prohibit-password",
			"AllowUsers " + u.Username,
			"PermitUserEnvironment no",
			"AllowTcpForwarding no",
			"X11Forwarding no",
			"PrintMotd no",
			"LogLevel VERBOSE",
			"SetEnv " + strings.Join(hermetic, " "),
			"",
		}, "\n"))
		return []string{sshdBinary, "-D", "-e", "-f", conf}
	})
	knownHostsFile = filepath.Join(dir, "known_hosts")
	writeFile(t, knownHostsFile, fmt.Sprintf("[127.0.0.1]:%d %s %s\n", port, fields[0], fields[1]))
	return fmt.Sprintf("ssh://%s@127.0.0.1:%d%s", u.Username, port, repo.Bare), keyFile, knownHostsFile
}

// SSHCommand is a GIT_SSH_COMMAND for the git CLI that uses only keyFile
// and knownHostsFile, and no ssh configuration or agent.
func SSHCommand(keyFile, knownHostsFile string) string {
	return fmt.Sprintf("ssh -F /dev/null -i %s -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=%s -o GlobalKnownHostsFile=/dev/null",
		keyFile, knownHostsFile)
}

func keygen(t testing.TB, file, comment string) {
	t.Helper()
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(b))
}

func writeFile(t testing.TB, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
