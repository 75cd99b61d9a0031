package runners

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gitmon-dev/gitmon/descriptors"
)

func init() {
	Register(KindHTTP, func(p Pipeline, env Env) (Runner, error) { return NewHTTP(p, env) })
}

// Limits of the http runner (SPEC §5).
const (
	// MaxHealthcheckBody is how much of a response body is read, shown
	// and kept.
	MaxHealthcheckBody = 256
	// MaxHealthcheckRedirects is how many same-host redirects a request
	// follows.
	MaxHealthcheckRedirects = 5
)

// HTTP is the http runner: the healthcheck of SPEC §2 and §5, driven by
// the healthcheck section of the stage's descriptor.
//
// It waits initial_delay, then checks each endpoint in order: up to
// retries attempts, interval apart, each bounded by timeout; a 2xx
// response passes the endpoint, and the first endpoint that never passes
// fails the stage. Relative endpoints are joined to scheme://domain:port.
//
// What a healthcheck may reach is enforced on every connection, redirects
// included: the host of the URL must match the allowed host globs (when
// there are any) before anything is dialled, and the address actually
// dialled, after DNS, must not be link-local. No proxy is used, since a
// proxy would dial on gitmon's behalf. A redirect to another host name
// is refused; at most MaxHealthcheckRedirects redirects to the same host
// name (another path, port or scheme) are followed.
// A refusal fails the endpoint at once: retrying cannot change it.
type HTTP struct {
	hosts    *[]string            // lower-case globs; nil allows every host
	envHosts map[string]*[]string // per environment
	red      redactor
}

var _ Runner = (*HTTP)(nil)

// NewHTTP returns the http runner. The pipeline itself holds nothing it
// needs: everything comes from the descriptor and env.
func NewHTTP(_ Pipeline, env Env) (*HTTP, error) {
	h := &HTTP{hosts: lowerGlobs(env.HealthcheckHosts), red: newRedactor(env.Secrets)}
	for _, g := range derefGlobs(env.HealthcheckHosts) {
		if _, err := path.Match(g, ""); err != nil {
			return nil, fmt.Errorf("http: healthcheck_hosts: bad glob %q", g)
		}
	}
	if env.EnvironmentHealthcheckHosts != nil {
		h.envHosts = make(map[string]*[]string, len(env.EnvironmentHealthcheckHosts))
		for name, globs := range env.EnvironmentHealthcheckHosts {
			for _, g := range derefGlobs(globs) {
				if _, err := path.Match(g, ""); err != nil {
					return nil, fmt.Errorf("http: healthcheck_hosts of %s: bad glob %q", name, g)
				}
			}
			h.envHosts[name] = lowerGlobs(globs)
		}
	}
	return h, nil
}

func derefGlobs(g *[]string) []string {
	if g == nil {
		return nil
	}
	return *g
}

func lowerGlobs(g *[]string) *[]string {
	if g == nil {
		return nil
	}
	l := make([]string, len(*g))
	for i, s := range *g {
		l[i] = strings.ToLower(s)
	}
	return &l
}

// refusal is a check the healthcheck policy refused; it is permanent.
type refusal struct{ reason string }

func (r *refusal) Error() string { return r.reason }

// checkConfig is a descriptor's healthcheck with defaults applied.
type checkConfig struct {
	urls         []*url.URL
	endpoints    []string
	retries      int
	interval     time.Duration
	timeout      time.Duration
	initialDelay time.Duration
}

// Run checks the endpoints of the descriptor in req. A failed check
// returns OK false with a Message naming the endpoint and the last
// status or error; errors are for a request that cannot be read.
func (h *HTTP) Run(ctx context.Context, req *Request, out io.Writer, _ Handle) (Result, error) {
	if out == nil {
		out = io.Discard
	}
	var d descriptors.Descriptor
	if err := json.Unmarshal(req.Descriptor, &d); err != nil {
		return Result{}, fmt.Errorf("http: reading the descriptor: %w", err)
	}
	cc, err := healthcheckConfig(&d)
	if err != nil {
		return h.fail(out, err.Error()), nil
	}
	if len(cc.urls) == 0 {
		fmt.Fprintln(out, "the descriptor has no healthcheck endpoints: nothing to check")
		return Result{OK: true, Message: "no healthcheck endpoints"}, nil
	}
	hosts := h.hosts
	if g, ok := h.envHosts[req.Environment]; ok {
		hosts = g
	}
	client, transport := newHealthClient(hosts)
	defer transport.CloseIdleConnections()

	if cc.initialDelay > 0 {
		fmt.Fprintf(out, "waiting %s (initial_delay)\n", cc.initialDelay)
		if !sleepCtx(ctx, cc.initialDelay) {
			return cancelled(ctx), nil
		}
	}
	for _, u := range cc.urls {
		if res, ok := h.checkEndpoint(ctx, client, u, cc, out); !ok {
			return res, nil
		}
	}
	n := len(cc.urls)
	msg := fmt.Sprintf("%d endpoints healthy", n)
	if n == 1 {
		msg = "1 endpoint healthy"
	}
	return Result{OK: true, Message: msg}, nil
}

func cancelled(ctx context.Context) Result {
	return Result{Message: "cancelled: " + ctx.Err().Error()}
}

func (h *HTTP) fail(out io.Writer, msg string) Result {
	msg = string(h.red.redact([]byte(msg), 0, false))
	fmt.Fprintln(out, msg)
	return Result{Message: msg}
}

// checkEndpoint runs the attempts on one endpoint. It returns ok true
// when the endpoint passed, and otherwise the stage's result.
func (h *HTTP) checkEndpoint(ctx context.Context, client *http.Client, u *url.URL, cc checkConfig, out io.Writer) (Result, bool) {
	var last string
	for attempt := 1; attempt <= cc.retries; attempt++ {
		if attempt > 1 && !sleepCtx(ctx, cc.interval) {
			return cancelled(ctx), false
		}
		status, body, err := h.get(ctx, client, u, cc.timeout)
		if ctx.Err() != nil {
			return cancelled(ctx), false
		}
		what := ""
		switch {
		case err != nil:
			what = "error: " + err.Error()
		default:
			what = strconv.Itoa(status)
		}
		fmt.Fprintf(out, "GET %s → %s (attempt %d/%d)\n", u, what, attempt, cc.retries)
		if body != "" {
			fmt.Fprintf(out, "  body: %s\n", body)
		}
		if err == nil && status >= 200 && status < 300 {
			return Result{}, true
		}
		if r := (*refusal)(nil); errors.As(err, &r) {
			return h.fail(out, fmt.Sprintf("healthcheck of %s refused: %s", u, r.reason)), false
		}
		last = what
		if err == nil {
			last = fmt.Sprintf("status %d %s", status, http.StatusText(status))
			if body != "" {
				last += ", body " + body
			}
		}
	}
	return h.fail(out, fmt.Sprintf("healthcheck of %s failed after %d attempts; last: %s", u, cc.retries, last)), false
}

// get makes one request. body is the first MaxHealthcheckBody bytes of
// the response, redacted and quoted.
func (h *HTTP) get(ctx context.Context, client *http.Client, u *url.URL, timeout time.Duration) (status int, body string, err error) {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("User-Agent", "gitmon-healthcheck")
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is on the line already
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("no response within %s", timeout)
		}
		return 0, "", err
	}
	defer resp.Body.Close() // unread bytes close the connection instead of draining
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxHealthcheckBody))
	if len(b) > 0 {
		// A body cut at the cap may end mid-secret: hide that prefix too.
		body = strconv.Quote(string(h.red.redact(b, 0, len(b) == MaxHealthcheckBody)))
	}
	if err != nil && ctx.Err() == nil {
		body += " (incomplete: " + err.Error() + ")"
	}
	return resp.StatusCode, body, nil
}

// sleepCtx waits d, or until ctx is done; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// healthcheckConfig applies the defaults of SPEC §2 and builds the URLs.
func healthcheckConfig(d *descriptors.Descriptor) (checkConfig, error) {
	hc := d.Healthcheck
	cc := checkConfig{
		endpoints:    hc.Endpoints,
		retries:      hc.Retries,
		interval:     hc.Interval.D(),
		timeout:      hc.Timeout.D(),
		initialDelay: hc.InitialDelay.D(),
	}
	if cc.retries < 1 {
		cc.retries = descriptors.DefaultRetries
	}
	cc.retries = min(cc.retries, descriptors.MaxRetries)
	if cc.timeout <= 0 {
		cc.timeout = descriptors.DefaultTimeout
	}
	cc.timeout = min(cc.timeout, descriptors.MaxTimeout)
	cc.interval = min(max(cc.interval, 0), descriptors.MaxInterval)
	cc.initialDelay = min(max(cc.initialDelay, 0), descriptors.MaxInitialDelay)
	scheme := hc.Scheme
	if scheme == "" {
		scheme = descriptors.DefaultScheme
	}
	for _, e := range hc.Endpoints {
		u, err := endpointURL(scheme, d.Domain, d.Port, e)
		if err != nil {
			return cc, err
		}
		cc.urls = append(cc.urls, u)
	}
	return cc, nil
}

// endpointURL resolves one endpoint: a path is joined to
// scheme://domain[:port], an absolute http(s) URL is used as is.
func endpointURL(scheme, domain string, port int, endpoint string) (*url.URL, error) {
	raw := endpoint
	if strings.HasPrefix(endpoint, "/") && !strings.HasPrefix(endpoint, "//") {
		if domain == "" {
			return nil, fmt.Errorf("the relative endpoint %q needs a domain", endpoint)
		}
		host := domain
		switch {
		case port > 0:
			host = net.JoinHostPort(domain, strconv.Itoa(port))
		case strings.Contains(domain, ":"):
			host = "[" + domain + "]" // an IPv6 address
		}
		raw = scheme + "://" + host + endpoint
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("the endpoint %q is not a path or an absolute http(s) URL with a host and no credentials", endpoint)
	}
	return u, nil
}

// newHealthClient returns a client that enforces what a healthcheck may
// reach. hosts are lower-case globs; nil allows every host.
func newHealthClient(hosts *[]string) (*http.Client, *http.Transport) {
	dialer := &net.Dialer{Timeout: descriptors.MaxTimeout, Control: checkDialAddress}
	transport := &http.Transport{
		Proxy: nil, // a proxy would dial on our behalf, past the checks
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if err := checkHost(hosts, host); err != nil {
				return nil, err
			}
			return dialer.DialContext(ctx, network, addr)
		},
		ForceAttemptHTTP2:      true,
		MaxResponseHeaderBytes: 64 << 10,
		TLSHandshakeTimeout:    descriptors.MaxTimeout,
	}
	client := &http.Client{
		Transport: transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if !strings.EqualFold(req.URL.Hostname(), via[0].URL.Hostname()) {
				return &refusal{fmt.Sprintf("redirect to another host (%s) refused", req.URL.Host)}
			}
			if len(via) > MaxHealthcheckRedirects {
				return fmt.Errorf("stopped after %d redirects", MaxHealthcheckRedirects)
			}
			return nil
		},
	}
	return client, transport
}

// checkHost applies healthcheck_hosts to the host of a URL.
func checkHost(hosts *[]string, host string) error {
	if hosts == nil {
		return nil
	}
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	for _, g := range *hosts {
		if ok, _ := path.Match(g, h); ok {
			return nil
		}
	}
	return &refusal{fmt.Sprintf("host %s is outside healthcheck_hosts", host)}
}

// checkDialAddress is the dialer's Control: it sees the resolved address
// of every connection just before it is made, and refuses link-local
// ones, such as cloud metadata services at 169.254.169.254.
func checkDialAddress(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &refusal{fmt.Sprintf("cannot check the address %s: %v", address, err)}
	}
	if linkLocal(ap.Addr()) {
		return &refusal{fmt.Sprintf("%s is link-local; healthchecks never reach link-local addresses", ap.Addr())}
	}
	return nil
}

// nat64 is the well-known NAT64 prefix (RFC 6052): 64:ff9b::a.b.c.d
// reaches a.b.c.d through a NAT64 gateway.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

func linkLocal(a netip.Addr) bool {
	a = a.WithZone("").Unmap()
	if nat64.Contains(a) {
		b := a.As16()
		a = netip.AddrFrom4([4]byte(b[12:]))
	}
	return a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast()
}
