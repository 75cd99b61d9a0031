package trust

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// MaxCommitSize bounds a commit object gitmon verifies: a larger one
// (a message of megabytes) is refused as a bad signature rather than read
// (SPEC §5 Bounded work). Real commits are well under a kilobyte.
const MaxCommitSize = 1 << 20

// sigHeader is the header git stores a commit's signature in (SHA-1
// repositories; "gpgsig-sha256" belongs to the payload there, as git has
// it).
var sigHeader = []byte("gpgsig ")

// SplitCommit splits a raw commit object (the bytes its SHA names, as `git
// cat-file commit` prints them) into what its signature covers and the
// armored signature, exactly as git does: the gpgsig header and its
// continuation lines (each starting with a space, which is dropped) are
// the signature; everything else, in order, is the payload. An unsigned
// commit has an empty signature. A commit with two gpgsig headers is
// refused.
func SplitCommit(raw []byte) (payload, signature []byte, err error) {
	if len(raw) > MaxCommitSize {
		return nil, nil, reason(ErrBadSignature, "commit object larger than %d bytes", MaxCommitSize)
	}
	end := bytes.Index(raw, []byte("\n\n"))
	if end < 0 {
		end = len(raw) // headers only, no message
	} else {
		end++ // the header section keeps its last newline
	}
	var sig bytes.Buffer
	payload = make([]byte, 0, len(raw))
	inSig, seen := false, false
	for _, line := range bytes.SplitAfter(raw[:end], []byte("\n")) {
		if inSig && len(line) > 0 && line[0] == ' ' {
			sig.Write(line[1:])
			continue
		}
		inSig = false
		if value, ok := bytes.CutPrefix(line, sigHeader); ok {
			if seen {
				return nil, nil, reason(ErrBadSignature, "the commit has more than one gpgsig header")
			}
			seen, inSig = true, true
			sig.Write(value)
			continue
		}
		payload = append(payload, line...)
	}
	payload = append(payload, raw[end:]...)
	return payload, sig.Bytes(), nil
}

// CommitTime returns the committer time of a commit object's headers:
// the time a signature's validity is checked at, as git does.
func CommitTime(raw []byte) (time.Time, error) {
	end := bytes.Index(raw, []byte("\n\n"))
	if end < 0 {
		end = len(raw)
	}
	for _, line := range bytes.Split(raw[:end], []byte("\n")) {
		ident, ok := bytes.CutPrefix(line, []byte("committer "))
		if !ok {
			continue
		}
		gt := bytes.LastIndexByte(ident, '>')
		if gt < 0 {
			return time.Time{}, errors.New("the committer header has no e-mail")
		}
		f := bytes.Fields(ident[gt+1:])
		if len(f) < 1 {
			return time.Time{}, errors.New("the committer header has no time")
		}
		secs, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil || secs < 0 || secs > 1<<40 {
			return time.Time{}, fmt.Errorf("the committer time %q is not a Unix time", truncate(string(f[0])))
		}
		return time.Unix(secs, 0).UTC(), nil
	}
	return time.Time{}, errors.New("the commit has no committer header")
}
