// Command gitmon-smoke is an example gitmon plugin: an HTTP smoke test.
// It GETs the service's endpoints and fails the stage on any answer
// outside 2xx or on a request that fails.
//
// The endpoints are the pipeline's params.url (a URL or a list of URLs)
// when set; otherwise the descriptor's healthcheck.endpoints joined to
// scheme://domain:port (absolute http(s) endpoints used as they are), or
// scheme://domain:port/ when it lists none. params.timeout is the
// per-request timeout as a Go duration (default 10s).
//
//	pipelines:
//	  smoke: {runner: plugin, path: ./plugins/gitmon-smoke, sha256: "…"}
//
// Build it with `go build -o bin/gitmon-smoke ./plugins/examples/smoke`.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gitmon-dev/gitmon/plugins"
)

func main() { plugins.Serve(smoke{}) }

type smoke struct{}

func (smoke) Info(context.Context) (plugins.Info, error) {
	return plugins.Info{Name: "gitmon-smoke", Version: "1.0.0", Capabilities: []string{"idempotent"}}, nil
}

// descriptor is the part of the descriptor JSON the smoke test reads.
type descriptor struct {
	Domain      string `json:"domain"`
	Port        int    `json:"port"`
	Healthcheck struct {
		Endpoints []string `json:"endpoints"`
		Scheme    string   `json:"scheme"`
	} `json:"healthcheck"`
}

func (smoke) Run(ctx context.Context, req *plugins.StageRequest, logf func(string)) (plugins.Result, error) {
	urls, err := targets(req)
	if err != nil {
		return plugins.Result{Message: err.Error()}, nil
	}
	timeout := 10 * time.Second
	if s, ok := req.Params["timeout"].(string); ok {
		if timeout, err = time.ParseDuration(s); err != nil || timeout <= 0 {
			return plugins.Result{Message: fmt.Sprintf("params.timeout %q is not a positive duration", s)}, nil
		}
	}
	client := &http.Client{Timeout: timeout}
	for _, u := range urls {
		if err := get(ctx, client, u); err != nil {
			logf(fmt.Sprintf("GET %s: %v", u, err))
			return plugins.Result{Message: fmt.Sprintf("smoke test failed: GET %s: %v", u, err)}, nil
		}
		logf("GET " + u + ": ok")
	}
	return plugins.Result{OK: true, Message: fmt.Sprintf("%d endpoint(s) answered 2xx", len(urls))}, nil
}

func get(ctx context.Context, c *http.Client, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "gitmon-smoke/1.0")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return errors.New(resp.Status)
	}
	return nil
}

// targets are the URLs to check.
func targets(req *plugins.StageRequest) ([]string, error) {
	switch v := req.Params["url"].(type) {
	case string:
		return []string{v}, nil
	case []any:
		var urls []string
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, errors.New("params.url must be a URL or a list of URLs")
			}
			urls = append(urls, s)
		}
		return urls, nil
	case nil:
	default:
		return nil, errors.New("params.url must be a URL or a list of URLs")
	}
	var d descriptor
	if len(req.Descriptor) > 0 {
		if err := json.Unmarshal(req.Descriptor, &d); err != nil {
			return nil, fmt.Errorf("reading the descriptor: %v", err)
		}
	}
	if d.Domain == "" {
		return nil, errors.New("nothing to check: no params.url and no domain in the descriptor")
	}
	scheme := d.Healthcheck.Scheme
	if scheme == "" {
		scheme = "https"
	}
	base := scheme + "://" + d.Domain
	if d.Port != 0 {
		base = scheme + "://" + net.JoinHostPort(d.Domain, strconv.Itoa(d.Port))
	}
	if len(d.Healthcheck.Endpoints) == 0 {
		return []string{base + "/"}, nil
	}
	urls := make([]string, 0, len(d.Healthcheck.Endpoints))
	for _, e := range d.Healthcheck.Endpoints {
		if strings.HasPrefix(e, "http://") || strings.HasPrefix(e, "https://") {
			urls = append(urls, e)
			continue
		}
		if !strings.HasPrefix(e, "/") {
			e = "/" + e
		}
		urls = append(urls, base+e)
	}
	return urls, nil
}
