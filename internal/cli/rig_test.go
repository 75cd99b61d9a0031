package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/gitmon-dev/gitmon/internal/store"
)

// rigConfig is a config with three environments and an exec pipeline
// whose script exists; its state folder is ./state.
const rigConfig = `state: ./state
repositories:
  - name: deployments
    url: https://git.example.com/deployments.git
environments:
  - {name: qa, release: [deploy]}
  - {name: staging, release: [deploy]}
  - {name: prod, release: [deploy]}
pipelines:
  deploy: {runner: exec, command: ["./deploy.sh"]}
policy: {committers: ["*@example.com"]}
`

// rig is a folder with a config, its script and a state folder that a
// serve would have created, for running commands in-process.
type rig struct {
	t   *testing.T
	dir string
	cfg string // the config file
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{t: t, dir: t.TempDir()}
	r.cfg = filepath.Join(r.dir, "gitmon.yaml")
	r.write("gitmon.yaml", rigConfig, 0o644)
	r.write("deploy.sh", "#!/bin/sh\necho deployed\n", 0o755)
	st, err := store.Open(t.Context(), filepath.Join(r.dir, "state"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return r
}

// write writes a file of the rig.
func (r *rig) write(name, body string, mode os.FileMode) string {
	r.t.Helper()
	p := filepath.Join(r.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		r.t.Fatal(err)
	}
	return p
}

// store opens the rig's state and locks it, as a running serve holds it:
// the commands work beside it.
func (r *rig) store() *store.SQLite {
	r.t.Helper()
	st, err := store.Open(r.t.Context(), filepath.Join(r.dir, "state"), store.Options{Lock: true})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { st.Close() })
	return st
}

// result is what one in-process command did.
type result struct {
	code        int
	out, errOut string
}

func (res result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.out, res.errOut)
}

// gitmon runs one command line through Run, as main does.
func gitmon(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(t.Context(), Streams{Out: &out, Err: &errb}, args)
	return result{code: code, out: out.String(), errOut: errb.String()}
}
