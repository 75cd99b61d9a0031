package gitserver

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// HTTPServer serves a Repo over Git's smart HTTP protocol through
// `git http-backend`, behind basic auth when a user or password is set.
// It keeps connections alive. Stop takes it down (the port refuses
// connections) and Start brings it back on the same port.
type HTTPServer struct {
	// URL is the repository's URL, such as http://127.0.0.1:PORT/deployments.git.
	URL string
	// CAFile is the PEM file of the certificate to trust, for HTTPS; "".
	CAFile string

	// Conns counts the TCP connections accepted, Requests the requests
	// served (whatever their status): with keep-alive, several requests
	// share a connection.
	Conns, Requests atomic.Int64

	t       testing.TB
	addr    string
	handler http.Handler
	tls     *tls.Config
	log     *lockedBuffer

	mu   sync.Mutex
	srv  *http.Server
	done chan struct{}
}

// HTTP serves repo over plain HTTP with basic auth (none when user and
// pass are both empty) and returns its URL and a func that takes the
// server down. StartHTTP gives a server that can come back up.
func HTTP(t testing.TB, repo *Repo, user, pass string) (url string, stop func()) {
	t.Helper()
	s := StartHTTP(t, repo, user, pass)
	return s.URL, s.Stop
}

// StartHTTP serves repo over plain HTTP; see HTTPServer.
func StartHTTP(t testing.TB, repo *Repo, user, pass string) *HTTPServer {
	t.Helper()
	return startHTTP(t, repo, user, pass, false)
}

// StartHTTPS serves repo over HTTPS with a throwaway certificate for
// 127.0.0.1, whose PEM is in CAFile.
func StartHTTPS(t testing.TB, repo *Repo, user, pass string) *HTTPServer {
	t.Helper()
	return startHTTP(t, repo, user, pass, true)
}

func startHTTP(t testing.TB, repo *Repo, user, pass string, useTLS bool) *HTTPServer {
	t.Helper()
	s := &HTTPServer{t: t, log: &lockedBuffer{}}
	handler, err := NewHTTPHandler(repo.Bare, user, pass, s.log)
	if err != nil {
		t.Fatal(err)
	}
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Requests.Add(1)
		handler.ServeHTTP(w, r)
	})
	scheme := "http"
	if useTLS {
		scheme = "https"
		s.tls, s.CAFile = selfSigned(t)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	s.URL = fmt.Sprintf("%s://%s/%s", scheme, s.addr, filepath.Base(repo.Bare))
	s.serve(ln)
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() && s.log.Len() > 0 {
			t.Logf("git http-backend stderr:\n%s", s.log.String())
		}
	})
	return s
}

// NewHTTPHandler returns the handler HTTPServer serves: Git's smart HTTP
// protocol for the bare repository bare, at /<base name of bare>, through
// `git http-backend`, behind basic auth unless user and pass are both
// empty. git http-backend's stderr goes to stderr. It needs no testing.TB,
// so a helper process can serve it too.
func NewHTTPHandler(bare, user, pass string, stderr io.Writer) (http.Handler, error) {
	exe, err := gitExecPath()
	if err != nil {
		return nil, fmt.Errorf("git --exec-path: %w", err)
	}
	backend := &cgi.Handler{
		Path: filepath.Join(exe, "git-http-backend"),
		Dir:  filepath.Dir(bare),
		Env: append([]string{
			"GIT_PROJECT_ROOT=" + filepath.Dir(bare),
			"GIT_HTTP_EXPORT_ALL=1",
		}, hermetic...),
		Stderr: stderr,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user != "" || pass != "" {
			u, p, ok := r.BasicAuth()
			if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(user)) != 1 ||
				subtle.ConstantTimeCompare([]byte(p), []byte(pass)) != 1 {
				w.Header().Set("WWW-Authenticate", `Basic realm="gitserver"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
		}
		backend.ServeHTTP(w, r)
	}), nil
}

// Stop takes the server down: it closes the listener and every
// connection. It does nothing if the server is already down.
func (s *HTTPServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return
	}
	_ = s.srv.Close()
	<-s.done
	s.srv, s.done = nil, nil
}

// Start brings a stopped server back on the same port. It does nothing
// if the server is up.
func (s *HTTPServer) Start() {
	s.t.Helper()
	s.mu.Lock()
	up := s.srv != nil
	s.mu.Unlock()
	if up {
		return
	}
	var ln net.Listener
	err := waitFor(nil, readyWithin, func() bool {
		var err error
		ln, err = net.Listen("tcp", s.addr)
		return err == nil
	})
	if err != nil {
		s.t.Fatalf("listening again on %s: %v", s.addr, err)
	}
	s.serve(ln)
}

func (s *HTTPServer) serve(ln net.Listener) {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.Conns.Add(1)
			}
		},
	}
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	done := make(chan struct{})
	s.mu.Lock()
	s.srv, s.done = srv, done
	s.mu.Unlock()
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(s.log, "serve: %v\n", err)
		}
	}()
}

// selfSigned makes a throwaway certificate for 127.0.0.1 and writes its
// PEM to a file.
func selfSigned(t testing.TB) (*tls.Config, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "gitserver"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS12,
	}
	return cfg, caFile
}

// lockedBuffer is a bytes.Buffer safe for the CGI handler's concurrent
// writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}
