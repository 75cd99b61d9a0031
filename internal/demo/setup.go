package demo

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// The folder the demo works in: the repository, the config, the state,
// the cluster, and the binaries its stages run. Paths in the config are
// relative to it (they resolve against the config's folder), so a kept
// folder keeps working where it is.
const (
	repoDir    = "deployments"
	configFile = "gitmon.yaml"
	stateDir   = "state"
	clusterDir = "cluster"
	binDir     = "bin"
	slackToken = "slack-token"
)

// services are the demo's services, on every branch.
var services = []string{"payments", "search"}

// configTmpl is the demo's config. staging and prod take only what
// succeeded in the environment before them (promotion.from is written
// out, though it is the default).
const configTmpl = `# gitmon demo: a throwaway GitOps repository (./deployments) watched
# every second. The exec stages run this gitmon binary's hidden demo-stage
# command (a copy in ./bin); the healthchecks, Slack and SMTP servers were
# the demo's own, on loopback, and are gone once it ends.
listen: 127.0.0.1:0
state: ./state
poll_interval: 1s
tuning: {shutdown_grace: 5s}
repositories:
  - name: deployments
    url: %q
environments:
  - name: qa
    branch: qa
    release: [deploy, healthcheck]
  - name: staging
    branch: staging
    release: [deploy, healthcheck, regression]
    policy: {promotion: {required: true, from: qa}}
  - name: prod
    branch: prod
    release: [deploy, healthcheck, smoke]
    policy: {promotion: {required: true, from: staging}}
pipelines:
  deploy:      {runner: exec, command: [./bin/gitmon, %s, deploy, ./cluster], timeout: 1m}
  healthcheck: {runner: http, timeout: 1m}
  regression:  {runner: exec, command: [./bin/gitmon, %s, regression], timeout: 1m}
  smoke:       %s
integrations:
  slack: {token_file: ./slack-token, api_url: %q}
  smtp:  {host: 127.0.0.1, port: %d, from: gitmon@example.com}
policy:
  committers: ["alice@example.com", "*@platform.example.com"]
  changes:
    allowed_ports: ["80", "443", "1024-65535"]
    max_cpu: "4"
`

// descriptor is service's descriptor in env. The healthcheck path names
// the environment, so each branch keeps its own; its timeout is long
// because the demo holds one healthcheck open while it shows what waits.
func descriptor(service, env, version, ports string, port int) string {
	return fmt.Sprintf(`service: %s
version: %s
image: registry.example.com/%s:%s
domain: 127.0.0.1
port: %d
healthcheck: {scheme: http, endpoints: [/%s/%s/healthz], retries: 2, interval: 100ms, timeout: 30s}
resources: {cpu: 500m, memory: 512Mi}
ports: [%s]
notifications: {emails: [%s-team@example.com], slack: ["#%s"]}
maintainer: alice@example.com
params: {environment: %s}
`, service, version, service, version, port, env, service, ports, service, service, env)
}

// ErrKeep is wrapped by Run's error when the --keep folder cannot hold
// the demo: it exists and is not an empty folder (the demo never writes
// over what is there), or its path cannot be a file:// URL.
var ErrKeep = errors.New("cannot hold the demo")

// urlUnsafe reports the runes a folder's path cannot hold in the demo's
// file:// URL: the config refuses spaces and control characters in a URL,
// and #, ? and % would make part of the path a fragment, a query or an
// escape.
func urlUnsafe(r rune) bool { return r <= ' ' || r == 0x7f || r == '#' || r == '?' || r == '%' }

// workDir returns the folder the demo works in: keep (made if absent,
// refused unless empty), or a temporary one that done removes.
func workDir(keep string) (dir string, done func(), err error) {
	if keep == "" {
		dir, err := os.MkdirTemp("", "gitmon-demo-")
		if err != nil {
			return "", nil, err
		}
		if strings.ContainsFunc(dir, urlUnsafe) {
			os.RemoveAll(dir)
			return "", nil, fmt.Errorf("the temporary folder %q cannot be named by a file:// URL (spaces, control characters, #, ? or %%): "+
				"set TMPDIR, or use --keep DIR", dir)
		}
		return dir, func() { os.RemoveAll(dir) }, nil
	}
	dir, err = filepath.Abs(keep)
	if err != nil {
		return "", nil, err
	}
	if strings.ContainsFunc(dir, urlUnsafe) {
		return "", nil, fmt.Errorf("--keep %q %w: the config names its repository by a file:// URL, "+
			"which cannot hold spaces, control characters, #, ? or %%; choose another folder", keep, ErrKeep)
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", nil, err
		}
	case err != nil:
		return "", nil, err
	case !fi.IsDir():
		return "", nil, fmt.Errorf("--keep %s %w: it is not a folder (it must be an empty folder or not exist)", keep, ErrKeep)
	default:
		entries, err := os.ReadDir(dir)
		if err != nil {
			return "", nil, err
		}
		if len(entries) > 0 {
			return "", nil, fmt.Errorf("--keep %s %w: it must be an empty folder or not exist, and it holds %s and %d more",
				keep, ErrKeep, entries[0].Name(), len(entries)-1)
		}
	}
	return dir, func() {}, nil
}

// installBinaries puts the gitmon binary exe in dir/bin, and the
// gitmon-smoke plugin beside it when there is one (make build builds it),
// so that the config's stages find them for as long as the folder lives,
// even when exe goes away (go run). It returns the smoke pipeline.
func installBinaries(dir, exe string) (smoke, note string, err error) {
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	bin := filepath.Join(dir, binDir)
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", "", err
	}
	if err := linkOrCopy(exe, filepath.Join(bin, "gitmon")); err != nil {
		return "", "", fmt.Errorf("the gitmon binary: %w", err)
	}
	smoke = fmt.Sprintf("{runner: exec, command: [./bin/gitmon, %s, smoke], timeout: 1m}", StageCommand)
	plugin := filepath.Join(filepath.Dir(exe), "gitmon-smoke")
	sum, err := executableSum(plugin)
	if err != nil {
		return smoke, fmt.Sprintf("no gitmon-smoke plugin next to %s (make build builds it): prod's smoke stage runs as an exec stage instead",
			filepath.Base(exe)), nil
	}
	if err := linkOrCopy(plugin, filepath.Join(bin, "gitmon-smoke")); err != nil {
		return "", "", fmt.Errorf("the smoke plugin: %w", err)
	}
	return fmt.Sprintf("{runner: plugin, path: ./bin/gitmon-smoke, sha256: %s, timeout: 1m}", sum),
		fmt.Sprintf("prod's smoke stage is the plugin %s (sha256 %s…), checking the healthcheck endpoints", plugin, sum[:12]), nil
}

// linkOrCopy makes dst a hard link of src, or a copy where links fail
// (another file system).
func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// executableSum returns the sha256 of the executable file at path.
func executableSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("%s is not an executable file", path)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
