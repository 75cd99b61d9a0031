package monitor

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/net/proxy"
)

// init makes go-git's HTTP transports cache their http.Transport per
// TLS setting. Without it, a repository with a ca_file gets a fresh
// transport, so a fresh connection and TLS handshake, on every poll; with
// it, every poll reuses a kept-alive connection. It replaces go-git's
// process-wide http and https clients, which is why it happens in init:
// go-git's protocol registry is a map without a lock, and writing it
// while another goroutine fetches is a data race.
func init() {
	c := githttp.NewClientWithOptions(nil, &githttp.ClientOptions{CacheMaxEntries: 64})
	client.InstallProtocol("https", c)
	client.InstallProtocol("http", c)
}

// transport returns the credentials for one network call, and for SSH
// the dialer that bounds the connection by ctx's deadline. SSH reads
// known_hosts afresh, so a corrected file takes effect at the next poll.
func (r *Repo) transport(ctx context.Context) (transport.AuthMethod, transport.ProxyOptions, error) {
	switch r.scheme {
	case "https", "http":
		if r.basic == nil {
			return nil, transport.ProxyOptions{}, nil
		}
		return r.basic, transport.ProxyOptions{}, nil
	case "ssh":
		db, err := gitssh.NewKnownHostsDb(r.hosts...)
		if err != nil {
			return nil, transport.ProxyOptions{}, fmt.Errorf("known_hosts: %w", err)
		}
		ep, err := transport.NewEndpoint(r.url)
		if err != nil {
			return nil, transport.ProxyOptions{}, fmt.Errorf("not a Git URL")
		}
		port := ep.Port
		if port <= 0 {
			port = gitssh.DefaultPort
		}
		a := &sshAuth{PublicKeys: &gitssh.PublicKeys{User: r.sshUser, Signer: r.sshKey}, timeout: r.firstByte}
		// Never an insecure callback: the host key must be in
		// known_hosts, and only the algorithms known_hosts holds for the
		// host are offered.
		a.HostKeyCallback = db.HostKeyCallback()
		a.HostKeyAlgorithms = db.HostKeyAlgorithms(net.JoinHostPort(ep.Host, strconv.Itoa(port)))
		var p transport.ProxyOptions
		if d, ok := ctx.Deadline(); ok {
			p.URL = deadlineScheme + "://" + strconv.FormatInt(d.UnixNano(), 10) + "/" + strconv.FormatInt(int64(r.firstByte), 10)
		}
		return a, p, nil
	}
	return nil, transport.ProxyOptions{}, nil
}

// sshAuth bounds the SSH dial by the first-byte deadline.
type sshAuth struct {
	*gitssh.PublicKeys
	timeout time.Duration
}

func (a *sshAuth) ClientConfig() (*ssh.ClientConfig, error) {
	c, err := a.PublicKeys.ClientConfig()
	if err != nil {
		return nil, err
	}
	c.Timeout = a.timeout
	return c, nil
}

// deadlineScheme names a "proxy" that is a direct connection with a
// deadline. go-git's SSH transport runs the SSH handshake without the
// call's context, so a server that accepts the connection and then says
// nothing would hang the call forever; its only hook on the connection
// is the proxy dialer. The proxy URL carries the attempt's deadline and
// the first-byte bound: the server's version line must come within it.
const deadlineScheme = "gitmon-deadline"

func init() {
	proxy.RegisterDialerType(deadlineScheme, func(u *url.URL, _ proxy.Dialer) (proxy.Dialer, error) {
		ns, err := strconv.ParseInt(u.Host, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad deadline %q", u.Host)
		}
		fb, err := strconv.ParseInt(strings.TrimPrefix(u.Path, "/"), 10, 64)
		if err != nil || fb <= 0 {
			return nil, fmt.Errorf("bad first-byte bound %q", u.Path)
		}
		return deadlineDialer{time.Unix(0, ns), time.Duration(fb)}, nil
	})
}

// deadlineDialer dials directly and bounds the connection: by firstByte
// until the server's first byte, then by the deadline, which bounds the
// handshake and every later read and write.
type deadlineDialer struct {
	deadline  time.Time
	firstByte time.Duration
}

func (d deadlineDialer) Dial(network, addr string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, addr)
}

func (d deadlineDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return dialFirstByte(ctx, addr, d.deadline, d.firstByte)
}
