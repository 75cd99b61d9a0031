package config

import (
	"strings"
	"testing"
)

// The trust files are parsed at load, once, into each environment's Keys;
// an environment inherits the global files and may require signatures
// alone.
func TestSignaturesKeys(t *testing.T) {
	const f = "testdata/good/signatures.yaml"
	cfg, _, err := Load(f, optionsFor(t, f))
	if err != nil {
		t.Fatal(err)
	}
	qa, prod := cfg.Environment("qa"), cfg.Environment("prod")
	if qa.Policy.Signatures.Required || !prod.Policy.Signatures.Required || prod.Policy.Merges != "all" || qa.Policy.Merges != "first_parent" {
		t.Fatalf("merged: qa %+v %s, prod %+v %s", qa.Policy.Signatures, qa.Policy.Merges, prod.Policy.Signatures, prod.Policy.Merges)
	}
	for _, env := range []*Environment{qa, prod} {
		k := env.Keys
		if k == nil || k.Signers == nil || len(k.Signers.Entries) != 2 || len(k.Keyring) != 1 {
			t.Fatalf("%s: keys %+v", env.Name, k)
		}
	}
	if qa.Keys.Signers != prod.Keys.Signers {
		t.Error("the same file was parsed twice")
	}
}

// A trust file that cannot be read fails serve and warns in validate.
func TestSignaturesUnreadable(t *testing.T) {
	src := `repositories: [{name: r, url: "https://git.example.com/r.git"}]
environments: [{name: qa, release: []}]
policy:
  committers: ["*"]
  signatures: {required: true, allowed_signers_file: ./nope/allowed_signers}
`
	for _, mode := range []Mode{ModeValidate, ModeServe} {
		cfg, warns, err := Parse("/etc/gitmon/gitmon.yaml", []byte(src), Options{Mode: mode, ReadFile: testdataOnly(t)})
		got := ""
		if err != nil {
			got = err.Error()
		} else if len(warns) > 0 {
			got = warns.String()
		}
		if !strings.Contains(got, `gitmon.yaml:5:54: policy.signatures.allowed_signers_file: cannot read "nope/allowed_signers"`) {
			t.Errorf("mode %v: %q", mode, got)
		}
		if (mode == ModeServe) != (err != nil) || (err == nil && cfg.Environment("qa").Keys != nil) {
			t.Errorf("mode %v: err %v, cfg %v", mode, err, cfg)
		}
	}
}
