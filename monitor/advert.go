package monitor

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// The lean ref listing. A poll only needs the branch tips, which the
// server's ref advertisement (protocol v0) states in its first screen.
// go-git's ListContext builds a full advertisement object per poll, about
// 1,000 allocations and 60 KiB for 50 refs; reading the pkt-lines directly
// costs a small fraction of that. It covers git:// and smart HTTP(S);
// other schemes, and any reply it does not fully understand, go through
// go-git instead.

// errProtocol marks a reply the lean reader does not understand.
var errProtocol = errors.New("unexpected ref advertisement")

// readers are the buffered readers of git:// listings, reused.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

var flushPkt = []byte("0000")

// gitRequest is the git:// request for the advertisement, as a pkt-line.
func (l *leanLister) gitRequest() []byte {
	l.reqOnce.Do(func() {
		req := "git-upload-pack " + l.u.EscapedPath() + "\x00host=" + l.u.Host + "\x00"
		l.req = fmt.Appendf(nil, "%04x%s", len(req)+4, req)
	})
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
	reqOnce   sync.Once
	req       []byte
}

func newLeanLister(raw, scheme string, ca []byte, user, pass string, firstByte time.Duration) *leanLister {
	if scheme != "git" && scheme != "http" && scheme != "https" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil
	}
	return &leanLister{u: u, scheme: scheme, user: user, pass: pass, ca: ca, firstByte: firstByte}
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
	if _, err := conn.Write(l.gitRequest()); err != nil {
		return nil, err
	}
	br := readers.Get().(*bufio.Reader)
	br.Reset(conn)
	defer func() { br.Reset(nil); readers.Put(br) }()
	refs, err := readAdvertisement(br)
	if err == nil {
		conn.Write(flushPkt) // end the session politely
	}
	return refs, err
}

func (l *leanLister) httpClient() *http.Client {
	l.once.Do(func() {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// A lost connection or a server that never answers costs the
		// first-byte deadline, not the attempt's timeout.
		t.DialContext = (&net.Dialer{Timeout: l.firstByte, KeepAlive: 30 * time.Second}).DialContext
		t.TLSHandshakeTimeout = l.firstByte
		t.ResponseHeaderTimeout = l.firstByte
		if len(l.ca) > 0 {
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			pool.AppendCertsFromPEM(l.ca)
			t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		l.client = &http.Client{Transport: t,
			// A redirect could carry the credentials elsewhere; go-git
			// handles them, so let it.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	})
	return l.client
}

func (l *leanLister) listHTTP(ctx context.Context) (map[string]string, error) {
	u := *l.u
	u.Path = strings.TrimSuffix(u.Path, "/") + "/info/refs"
	u.RawQuery = "service=git-upload-pack"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, errProtocol
	}
	req.Header.Set("User-Agent", "git/2.0 (gitmon)")
	if l.user != "" || l.pass != "" {
		req.SetBasicAuth(l.user, l.pass)
	}
	resp, err := l.httpClient().Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
			return nil, errSilentf(err)
		}
		return nil, err
	}
	defer func() {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // keep the connection reusable
		resp.Body.Close()
	}()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("%w: the server answered %d", ErrAuth, resp.StatusCode)
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%w: the server answered 404", ErrNoRepository)
	case resp.StatusCode != http.StatusOK,
		resp.Header.Get("Content-Type") != "application/x-git-upload-pack-advertisement":
		return nil, errProtocol // a dumb server or a redirect: go-git knows those
	}
	br := bufio.NewReaderSize(resp.Body, 4096)
	line, err := readPkt(br, nil)
	if err != nil || strings.TrimRight(string(line), "\n") != "# service=git-upload-pack" {
		return nil, errProtocol
	}
	if line, err = readPkt(br, line); err != nil || line != nil {
		return nil, errProtocol // the flush after the service line
	}
	return readAdvertisement(br)
}

// readAdvertisement reads "<sha> <ref>[\0caps]\n" pkt-lines up to a flush
// and keeps the branches.
func readAdvertisement(br *bufio.Reader) (map[string]string, error) {
	refs := map[string]string{}
	var buf []byte
	for first := true; ; first = false {
		line, err := readPkt(br, buf)
		if err != nil {
			return nil, err
		}
		if line == nil {
			return refs, nil // flush: the end of the advertisement
		}
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
			return nil, errProtocol
		}
		if !isHex(line[:40]) {
			return nil, errProtocol
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
	var hdr [4]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
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
