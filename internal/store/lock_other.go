//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package store

import (
	"errors"
	"os"
)

func lockDir(string) (*os.File, error) {
	return nil, errors.New("lock state folder: not supported on this system")
}

// lockCreate has no folder lock to take here: serve does not run on this
// system, and read-only commands never create a database.
func lockCreate(string) (func(), error) { return func() {}, nil }
