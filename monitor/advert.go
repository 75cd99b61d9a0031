package monitor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The lean ref listing. A poll only needs the branch tips, which the
// server's ref advertisement (protocol v0) states in its first screen.
// go-git's ListContext builds a full advertisement object per poll:
// 1,054 allocations, 60 KiB and 784–863 µs of CPU for 50 refs over
// git://, where reading the pkt-lines directly took 51 allocations,
// 3.5 KiB and 355–526 µs, most of it the kernel's TCP work
// (BenchmarkListBranches, same runs, `git ls-remote` 1.5–2.2 ms). It
// covers git:// and smart HTTP(S), with protocol v2's ls-refs where that
// pays (lsrefs.go, advert_http.go); other schemes, and any reply it does
// not fully understand, go through go-git instead.

// errProtocol marks a reply the lean reader does not understand.
var errProtocol = errors.New("unexpected ref advertisement")

// readers are the buffered readers of git:// listings, reused.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

var flushPkt = []byte("0000")

// gitRequest is the git:// request for the advertisement, as a pkt-line.
func (l *leanLister) gitRequest() []byte {
	l.reqOnce.Do(l.buildRequests)
	return l.req
}

// leanLister reads ref advertisements for one repository.
type leanLister struct {
	u      *url.URL
	scheme string
	user   string
	pass   string
	once   sync.Once
	client *http.Client
	ca     []byte
	// firstByte bounds the connection and the wait for the server's
	// first byte.
	firstByte time.Duration
	// branches are the branches a listing needs (nil: all); with them,
	// git:// may ask for protocol v2 (lsrefs.go): once a v0 advertisement
	// held more than v2Refs refs (manyRefs), unless the server's v2
	// answer could not be used (noV2).
	branches       []string
	v2Refs         int
	manyRefs, noV2 atomic.Bool
	// httpV2: the HTTP server answered v2; polls POST ls-refs only.
	httpV2    atomic.Bool
	reqOnce   sync.Once
	req       []byte // v0 request
	reqV2     []byte
	lsRefsCmd []byte
}

func newLeanLister(raw, scheme string, ca []byte, user, pass string, firstByte time.Duration, branches []string) *leanLister {
	if scheme != "git" && scheme != "http" && scheme != "https" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil
	}
	return &leanLister{u: u, scheme: scheme, user: user, pass: pass, ca: ca, firstByte: firstByte, branches: branches, v2Refs: v2Refs}
}

// list returns refs/heads/* → sha. A nil map with errProtocol means
// "ask go-git".
func (l *leanLister) list(ctx context.Context) (map[string]string, error) {
	if l.scheme == "git" {
		return l.listGit(ctx)
	}
	return l.listHTTP(ctx)
}

func (l *leanLister) listGit(ctx context.Context) (map[string]string, error) {
	host := l.u.Host
	if l.u.Port() == "" {
		host = net.JoinHostPort(l.u.Hostname(), "9418")
	}
	deadline, _ := ctx.Deadline()
	conn, err := dialFirstByte(ctx, host, deadline, l.firstByte)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	br := readers.Get().(*bufio.Reader)
	br.Reset(conn)
	defer func() { br.Reset(nil); readers.Put(br) }()
	if l.v2() {
		if _, err := conn.Write(l.gitRequestV2()); err != nil {
			return nil, err
		}
		refs, err := l.listGitV2(conn, br)
		if errors.Is(err, errProtocol) {
			l.noV2.Store(true)
		}
		return refs, err
	}
	if _, err := conn.Write(l.gitRequest()); err != nil {
		return nil, err
	}
	refs, n, err := readAdvertisementFrom(br, nil)
	if err == nil {
		conn.Write(flushPkt) // end the session politely
		if n > l.v2Refs && len(l.branches) > 0 {
			l.manyRefs.Store(true)
		}
	}
	return refs, err
}

// readAdvertisement reads "<sha> <ref>[\0caps]\n" pkt-lines up to a flush
// and keeps the branches.
func readAdvertisement(br *bufio.Reader) (map[string]string, error) {
	refs, _, err := readAdvertisementFrom(br, nil)
	return refs, err
}

// readAdvertisementFrom is readAdvertisement whose first line, if not
// nil, was read already. It also returns how many refs it read.
func readAdvertisementFrom(br *bufio.Reader, firstLine []byte) (map[string]string, int, error) {
	refs := map[string]string{}
	var buf []byte
	n := 0
	for first := true; ; first = false {
		line := firstLine
		var err error
		if !first || line == nil {
			line, err = readPkt(br, buf)
		}
		if err != nil {
			return nil, 0, err
		}
		if line == nil {
			return refs, n, nil // flush: the end of the advertisement
		}
		n++
		buf = line[:0]
		if first {
			if i := strings.IndexByte(string(line), 0); i >= 0 {
				line = line[:i]
			}
		}
		if len(line) > 0 && line[len(line)-1] == '\n' {
			line = line[:len(line)-1]
		}
		if len(line) < 42 || line[40] != ' ' {
			return nil, 0, errProtocol
		}
		if !isHex(line[:40]) {
			return nil, 0, errProtocol
		}
		name := line[41:]
		const heads = "refs/heads/"
		if len(name) > len(heads) && string(name[:len(heads)]) == heads {
			refs[string(name[len(heads):])] = string(line[:40])
		}
		// An empty repository advertises "capabilities^{}" only.
	}
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// readPkt reads one pkt-line into buf; a flush packet returns nil.
func readPkt(br *bufio.Reader, buf []byte) ([]byte, error) {
	hdr, err := br.Peek(4) // not io.ReadFull: its array would escape, one allocation a line
	if err != nil {
		if errors.Is(err, io.EOF) && len(hdr) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	n := 0
	for _, c := range hdr {
		switch {
		case c >= '0' && c <= '9':
			n = n<<4 | int(c-'0')
		case c >= 'a' && c <= 'f':
			n = n<<4 | int(c-'a'+10)
		default:
			return nil, errProtocol
		}
	}
	br.Discard(4)
	switch {
	case n == 0:
		return nil, nil
	case n < 4 || n > 65520:
		return nil, errProtocol
	}
	if cap(buf) < n-4 {
		buf = make([]byte, n-4, max(n-4, 256))
	}
	buf = buf[:n-4]
	if _, err := io.ReadFull(br, buf); err != nil {
		return nil, err
	}
	if len(buf) >= 4 && string(buf[:4]) == "ERR " {
		return nil, fmt.Errorf("%w: the server said %q", ErrNoRepository, strings.TrimSpace(string(buf[4:])))
	}
	return buf, nil
}
