//go:build !linux

package runners

import "errors"

// The exec runner needs Linux: process groups recorded with /proc start
// times and the boot id, so that a crash never leads to killing a reused
// process id. Elsewhere the kind exists but refuses to build, so a config
// using it fails at startup instead of running unsafely.
func init() {
	Register(KindExec, func(Pipeline, Env) (Runner, error) {
		return nil, errors.New("the exec runner needs Linux")
	})
}

// LookCommand fails: no exec pipeline can run here.
func LookCommand(string) (string, error) { return "", errors.New("the exec runner needs Linux") }
