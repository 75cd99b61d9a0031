package runners

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// This file holds the jenkins runner's requests: every one goes through
// get or post, which check the status and keep secrets out of errors.

func newJenkinsHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = 10 * time.Second
	tr.ResponseHeaderTimeout = jenkinsRequestTimeout
	tr.MaxIdleConnsPerHost = 4
	// No Client.Timeout: it would cut a long consoleText download;
	// every request has a ctx with a deadline instead.
	return &http.Client{Transport: tr}
}

// guard runs f, turning a panic inside gojenkins into an error.
func guard(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("gojenkins panicked: %v", r)
		}
	}()
	f()
	return nil
}

// HTTPStatusError is a Jenkins answer with an unexpected status.
type HTTPStatusError struct {
	Method, Path string
	Status       int
}

func (e *HTTPStatusError) Error() string {
	msg := fmt.Sprintf("jenkins: %s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	switch e.Status {
	case http.StatusUnauthorized:
		msg += " (check integrations.jenkins user and token)"
	case http.StatusForbidden:
		msg += " (the user lacks a permission, or a CSRF crumb was refused)"
	}
	return msg
}

func statusOf(err error) int {
	var he *HTTPStatusError
	if errors.As(err, &he) {
		return he.Status
	}
	return 0
}

// wrap prefixes err and removes every secret from its text.
func (j *Jenkins) wrap(what string, err error) error {
	return errors.New(Redact("jenkins: "+what+": "+err.Error(), j.secrets))
}

// noAnswerError is a request Jenkins did not answer: a network failure
// or a timeout. Its text holds no secret.
type noAnswerError struct{ msg string }

func (e *noAnswerError) Error() string { return e.msg }

// noAnswer is wrap for a request that got no answer.
func (j *Jenkins) noAnswer(what string, err error) error {
	return &noAnswerError{msg: Redact("jenkins: "+what+": "+err.Error(), j.secrets)}
}

// display is the base URL for messages, without credentials.
func (j *Jenkins) display() string {
	u, err := url.Parse(j.base)
	if err != nil || u.User == nil {
		return j.base
	}
	u.User = nil
	return u.String()
}

func reqCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, jenkinsRequestTimeout)
}

// get GETs path (relative to the base URL) through gojenkins and checks
// the status: only 200 is success.
func (j *Jenkins) get(ctx context.Context, path string, query map[string]string) ([]byte, http.Header, error) {
	ctx, cancel := reqCtx(ctx)
	defer cancel()
	var body string
	var resp *http.Response
	var err error
	if perr := guard(func() { resp, err = j.client.Requester.Get(ctx, path, &body, query) }); perr != nil {
		return nil, nil, j.noAnswer("GET "+path, perr)
	}
	if resp != nil && resp.StatusCode != http.StatusOK {
		return nil, nil, &HTTPStatusError{Method: "GET", Path: path, Status: resp.StatusCode}
	}
	if err != nil {
		return nil, nil, j.noAnswer("GET "+path, err)
	}
	if resp == nil {
		return nil, nil, j.noAnswer("GET "+path, errors.New("no response"))
	}
	return []byte(body), resp.Header, nil
}

// getJSON GETs path and decodes its JSON into v.
func (j *Jenkins) getJSON(ctx context.Context, path string, v any) error {
	body, _, err := j.get(ctx, path, nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return j.wrap("GET "+path, fmt.Errorf("decoding the answer: %w", err))
	}
	return nil
}

// post POSTs a form to path through gojenkins (which adds the CSRF crumb)
// and checks the status: 2xx and 3xx are success. When fetching the
// crumb panics (a network failure), the POST has not been sent: it is
// sent once more directly, without a crumb.
func (j *Jenkins) post(ctx context.Context, path string, query map[string]string, form url.Values) (http.Header, error) {
	ctx, cancel := reqCtx(ctx)
	defer cancel()
	var resp *http.Response
	var err error
	perr := guard(func() {
		resp, err = j.client.Requester.Post(ctx, path, strings.NewReader(form.Encode()), nil, query)
	})
	if perr != nil {
		resp, err = j.postDirect(ctx, path, query, form)
	}
	if resp != nil {
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return nil, &HTTPStatusError{Method: "POST", Path: path, Status: resp.StatusCode}
		}
		// A decode error on a 2xx/3xx only means the body was not JSON.
		return resp.Header, nil
	}
	if err == nil {
		err = errors.New("no response")
	}
	return nil, j.noAnswer("POST "+path, err)
}

func (j *Jenkins) postDirect(ctx context.Context, path string, query map[string]string, form url.Values) (*http.Response, error) {
	req, err := j.newRequest(ctx, http.MethodPost, path, query, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := j.httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp, nil
}

func (j *Jenkins) newRequest(ctx context.Context, method, path string, query map[string]string, body io.Reader) (*http.Request, error) {
	u, err := url.Parse(j.base + path)
	if err != nil {
		return nil, err
	}
	if len(query) > 0 {
		q := url.Values{}
		for k, v := range query {
			q.Set(k, v)
		}
		u.RawQuery = q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if j.user != "" || j.token != "" {
		req.SetBasicAuth(j.user, j.token)
	}
	return req, nil
}

// jobPath is the job's path: /job/a/job/b for "a/b".
func (j *Jenkins) jobPath(job string) string {
	parts := strings.Split(strings.Trim(job, "/"), "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return "/job/" + strings.Join(parts, "/job/")
}

// transient reports whether a failed poll may be retried.
func transient(err error) bool {
	s := statusOf(err)
	return s == 0 || s >= 500 || s == http.StatusTooManyRequests
}
