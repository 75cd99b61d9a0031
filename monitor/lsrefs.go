package monitor

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strings"
)

// Protocol v2 over git://. A v0 listing reads the repository's whole
// ref advertisement. With 100,000 tags that cost 11.5–16.4 ms of client
// CPU a listing (BenchmarkManyRefs), against 0.57–0.68 ms for a v2
// `ls-refs` that asks for the watched branches' prefixes only
// (`git ls-remote --heads` over v2: 2.4 ms). v2 costs one more round
// trip on the connection, which a small repository does not repay: with
// 50 refs v0 took 355–512 µs and v2 443–857 µs (same runs, a loaded
// machine); at 300 refs 550 against 590 µs, at 1,000 about even. So a Repo told its branches (Remote.Branches)
// switches to v2 once a v0 advertisement held more than v2Refs refs, and
// only if the server answers "version 2"; any other answer is read as
// the v0 advertisement it is.

// v2Refs is the advertisement size from which v2 pays.
const v2Refs = 1000

// v2 reports whether the next git:// listing asks for protocol v2.
func (l *leanLister) v2() bool {
	return len(l.branches) > 0 && l.manyRefs.Load() && !l.noV2.Load()
}

// gitRequestV2 is the git:// request asking for protocol v2.
func (l *leanLister) gitRequestV2() []byte {
	l.reqOnce.Do(l.buildRequests)
	return l.reqV2
}

// lsRefs is the ls-refs command for the watched branches, flush included.
func (l *leanLister) lsRefs() []byte {
	l.reqOnce.Do(l.buildRequests)
	return l.lsRefsCmd
}

func (l *leanLister) buildRequests() {
	req := "git-upload-pack " + l.u.EscapedPath() + "\x00host=" + l.u.Host + "\x00"
	l.req = fmt.Appendf(nil, "%04x%s", len(req)+4, req)
	req += "\x00version=2\x00"
	l.reqV2 = fmt.Appendf(nil, "%04x%s", len(req)+4, req)
	var cmd []byte
	cmd = appendPkt(cmd, "command=ls-refs\n")
	cmd = append(cmd, "0001"...) // delimiter: the arguments follow
	for _, b := range l.branches {
		cmd = appendPkt(cmd, "ref-prefix refs/heads/"+b+"\n")
	}
	l.lsRefsCmd = append(cmd, flushPkt...)
}

func appendPkt(b []byte, s string) []byte {
	return append(fmt.Appendf(b, "%04x", len(s)+4), s...)
}

// listGitV2 reads the server's first pkt-line: "version 2" starts a v2
// session, in which it lists the watched branches with ls-refs; anything
// else is the first line of a v0 advertisement.
func (l *leanLister) listGitV2(conn net.Conn, br *bufio.Reader) (map[string]string, error) {
	first, err := readPkt(br, nil)
	if err != nil {
		return nil, err
	}
	if first == nil {
		return map[string]string{}, nil // an old server's empty repository
	}
	if string(first) != "version 2\n" {
		refs, _, err := readAdvertisementFrom(br, first)
		return refs, err
	}
	if err := readV2Caps(br); err != nil {
		return nil, err
	}
	if _, err := conn.Write(l.lsRefs()); err != nil {
		return nil, err
	}
	refs, err := readLsRefs(br)
	if err != nil {
		return nil, err
	}
	conn.Write(flushPkt) // end the session
	return refs, nil
}

// readV2Caps reads a v2 capability advertisement after its "version 2"
// line, up to the flush: the server must offer ls-refs, for SHA-1
// repositories (all go-git reads).
func readV2Caps(br *bufio.Reader) error {
	lsRefs := false
	var buf []byte
	for {
		line, err := readPkt(br, buf)
		if err != nil {
			return err
		}
		if line == nil {
			break
		}
		buf = line[:0]
		c := strings.TrimSuffix(string(line), "\n")
		switch {
		case c == "ls-refs" || strings.HasPrefix(c, "ls-refs="):
			lsRefs = true
		case strings.HasPrefix(c, "object-format=") && c != "object-format=sha1":
			return errProtocol
		}
	}
	if !lsRefs {
		return errProtocol
	}
	return nil
}

// readLsRefs reads an ls-refs answer up to its flush and keeps the
// branches.
func readLsRefs(br *bufio.Reader) (map[string]string, error) {
	refs := map[string]string{}
	var buf []byte
	for {
		line, err := readPkt(br, buf)
		if err != nil {
			return nil, err
		}
		if line == nil {
			return refs, nil
		}
		buf = line[:0]
		// "<oid> <refname>[ <attribute>...]\n"
		line = bytes.TrimSuffix(line, []byte("\n"))
		if len(line) < 42 || line[40] != ' ' || !isHex(line[:40]) {
			return nil, errProtocol
		}
		name := line[41:]
		if i := bytes.IndexByte(name, ' '); i >= 0 {
			name = name[:i]
		}
		// A prefix also matches longer names ("qa" matches "qa-old"):
		// ListBranches keeps the watched ones.
		if b, ok := bytes.CutPrefix(name, []byte("refs/heads/")); ok {
			refs[string(b)] = string(line[:40])
		}
	}
}
