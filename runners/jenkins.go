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
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/bndr/gojenkins"

	"github.com/gitmon-dev/gitmon/internal/config"
)

func init() {
	Register(config.RunnerJenkins, func(p config.Pipeline, env Env) (Runner, error) {
		ctx, cancel := context.WithTimeout(context.Background(), DefaultJenkinsStartupTimeout)
		defer cancel()
		return NewJenkins(ctx, p, env)
	})
}

const (
	// DefaultJenkinsPollInterval is how often a queue item or build is
	// polled.
	DefaultJenkinsPollInterval = 2 * time.Second
	// DefaultJenkinsStartupTimeout bounds the factory's connection test
	// and job check.
	DefaultJenkinsStartupTimeout = 30 * time.Second
	// jenkinsRequestTimeout bounds one HTTP exchange with Jenkins.
	jenkinsRequestTimeout = 30 * time.Second
	// jenkinsCleanupTimeout bounds stopping a build or cancelling a queue
	// item, and fetching the console, once the stage's ctx is done.
	jenkinsCleanupTimeout = 15 * time.Second
	// jenkinsMaxPollErrors is how many polls in a row may fail (network,
	// 5xx) before the stage gives up on Jenkins.
	jenkinsMaxPollErrors = 5
)

// JenkinsParameters are the build parameters the jenkins runner sends
// (SPEC §4); the job must define every one, since Jenkins silently drops
// parameters a job does not define. GITMON_DESCRIPTOR holds the
// descriptor JSON itself, not a path.
var JenkinsParameters = []string{
	"GITMON_REPOSITORY", "GITMON_ENV", "GITMON_SERVICE", "GITMON_VERSION", "GITMON_PREVIOUS_VERSION",
	"GITMON_COMMIT", "GITMON_AUTHOR", "GITMON_COMMITTER", "GITMON_TICKETS",
	"GITMON_STAGE", "GITMON_ACTION", "GITMON_RUN_ID", "GITMON_DESCRIPTOR",
}

// Jenkins is the jenkins runner (SPEC §4): it triggers a parametrised
// job with buildWithParameters, follows the queue item to its build and
// the build to its result, and stops the build (or cancels the queue
// item) when the stage's ctx is done.
//
// It uses gojenkins for the connection test and requests, guarding its
// pitfalls: every HTTP status is checked here (gojenkins reports 4xx/5xx
// as JSON decode errors), library calls run under recover (a network
// failure while fetching the CSRF crumb panics inside it; the POST is
// then sent without a crumb, which API-token clients do not need), and
// the waiting loops are this runner's own, bounded by ctx
// (GetBuildFromQueueID ignores ctx and never ends for a cancelled item).
type Jenkins struct {
	// Job is the job's name; "folder/job" names a job inside a folder.
	Job string
	// PollInterval is the time between polls (default
	// DefaultJenkinsPollInterval).
	PollInterval time.Duration

	base        string // no trailing slash
	user, token string
	secrets     []string
	httpClient  *http.Client
	client      *gojenkins.Jenkins
}

var (
	_ Runner     = (*Jenkins)(nil)
	_ Reattacher = (*Jenkins)(nil)
)

// JenkinsHandle is what the jenkins runner saves through Handle.Save:
// first the queue item, then also the build once it has started.
type JenkinsHandle struct {
	Job     string `json:"job"`
	QueueID int64  `json:"queue_id"`
	Build   int64  `json:"build,omitempty"`
	URL     string `json:"url,omitempty"`
	RunID   string `json:"run_id,omitempty"`
}

// NewJenkins returns the jenkins runner of pipeline p, having tested the
// connection and credentials (gojenkins Init) and checked that the job
// defines every parameter in JenkinsParameters (Check). ctx bounds these
// requests.
func NewJenkins(ctx context.Context, p config.Pipeline, env Env) (*Jenkins, error) {
	if env.Jenkins == nil || env.Jenkins.URL == "" {
		return nil, errors.New("jenkins: integrations.jenkins is not configured")
	}
	if strings.Trim(p.Job, "/") == "" {
		return nil, errors.New("jenkins: the pipeline has no job")
	}
	u, err := url.Parse(env.Jenkins.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("jenkins: integrations.jenkins.url %q is not an http(s) URL", env.Jenkins.URL)
	}
	j := &Jenkins{
		Job:          strings.Trim(p.Job, "/"),
		PollInterval: DefaultJenkinsPollInterval,
		base:         strings.TrimSuffix(env.Jenkins.URL, "/"),
		user:         env.Jenkins.User.Value(),
		token:        env.Jenkins.Token.Value(),
		httpClient:   newJenkinsHTTPClient(),
	}
	j.secrets = append(append([]string(nil), env.Secrets...), j.token)
	if j.user != "" || j.token != "" {
		j.client = gojenkins.CreateJenkins(j.httpClient, j.base, j.user, j.token)
	} else {
		j.client = gojenkins.CreateJenkins(j.httpClient, j.base)
	}
	// Init is required: it sets gojenkins' package loggers.
	var initErr error
	if perr := guard(func() { _, initErr = j.client.Init(ctx) }); perr != nil {
		initErr = perr
	}
	if initErr != nil {
		// Init reports an HTTP error as a JSON decode error: ask again
		// to say what the status was.
		if _, _, err := j.get(ctx, "/api/json", nil); err != nil {
			return nil, err
		}
		return nil, j.wrap("connecting to "+j.base, initErr)
	}
	if err := j.Check(ctx); err != nil {
		return nil, err
	}
	return j, nil
}

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
		return nil, nil, j.wrap("GET "+path, perr)
	}
	if resp != nil && resp.StatusCode != http.StatusOK {
		return nil, nil, &HTTPStatusError{Method: "GET", Path: path, Status: resp.StatusCode}
	}
	if err != nil {
		return nil, nil, j.wrap("GET "+path, err)
	}
	if resp == nil {
		return nil, nil, j.wrap("GET "+path, errors.New("no response"))
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
	return nil, j.wrap("POST "+path, err)
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

// Check verifies that the job exists and defines every parameter in
// JenkinsParameters, naming the missing ones.
func (j *Jenkins) Check(ctx context.Context) error {
	var info struct {
		Class    string `json:"_class"`
		Property []struct {
			Class                string `json:"_class"`
			ParameterDefinitions []struct {
				Name string `json:"name"`
			} `json:"parameterDefinitions"`
		} `json:"property"`
	}
	path := j.jobPath(j.Job) + "/api/json"
	if err := j.getJSON(ctx, path, &info); err != nil {
		if statusOf(err) == http.StatusNotFound {
			return fmt.Errorf("jenkins: job %q not found at %s", j.Job, j.base)
		}
		return err
	}
	defined := map[string]bool{}
	for _, p := range info.Property {
		for _, d := range p.ParameterDefinitions {
			defined[d.Name] = true
		}
	}
	var missing []string
	for _, name := range JenkinsParameters {
		if !defined[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("jenkins: job %q does not define the parameters %s (Jenkins drops undefined parameters)",
			j.Job, strings.Join(missing, ", "))
	}
	return nil
}

// params are the build parameters of req.
func jenkinsParams(req *Request) url.Values {
	v := url.Values{}
	set := func(k, val string) { v.Set(k, val) }
	set("GITMON_REPOSITORY", req.Repository)
	set("GITMON_ENV", req.Environment)
	set("GITMON_SERVICE", req.Service)
	set("GITMON_VERSION", req.Version)
	set("GITMON_PREVIOUS_VERSION", req.PreviousVersion)
	set("GITMON_COMMIT", req.Commit)
	set("GITMON_AUTHOR", req.Author)
	set("GITMON_COMMITTER", req.Committer)
	set("GITMON_TICKETS", strings.Join(req.Tickets, ","))
	set("GITMON_STAGE", req.Stage)
	set("GITMON_ACTION", req.Action)
	set("GITMON_RUN_ID", req.RunID)
	set("GITMON_DESCRIPTOR", string(req.Descriptor))
	return v
}

var queueItemRE = regexp.MustCompile(`/queue/item/(\d+)/?$`)

// Run triggers the job for one stage and follows it to its result.
// SUCCESS passes; any other result fails the stage with the result. When
// ctx is done the build is stopped, or the queue item cancelled, and the
// stage fails with "cancelled: ". Errors are for Jenkins refusing or
// failing the requests.
func (j *Jenkins) Run(ctx context.Context, req *Request, out io.Writer, h Handle) (Result, error) {
	if err := ctx.Err(); err != nil {
		return cancelled(ctx), nil
	}
	if out == nil {
		out = io.Discard
	}
	if req.RunID == "" {
		// Jenkins merges queued builds with identical parameters.
		return Result{}, errors.New("jenkins: the request has no run id")
	}
	path := j.jobPath(j.Job) + "/buildWithParameters"
	// Not gojenkins' BuildJob: it returns (0, nil) without triggering
	// whenever the job has any queued build, which concurrent stages of
	// other services cause, and picks /build for a job it thinks has no
	// parameters.
	hdr, err := j.post(ctx, path, nil, jenkinsParams(req))
	if err != nil {
		if ctx.Err() != nil {
			// We cannot tell whether Jenkins queued it.
			return Result{Message: "cancelled: " + ctx.Err().Error() + " while triggering the Jenkins job"}, nil
		}
		return Result{}, err
	}
	loc := hdr.Get("Location")
	var qid int64
	if m := queueItemRE.FindStringSubmatch(loc); m != nil {
		qid, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if qid == 0 {
		return Result{}, fmt.Errorf("jenkins: job %q was not triggered: no queue item in the answer (Location %q)", j.Job, loc)
	}
	hd := &JenkinsHandle{Job: j.Job, QueueID: qid, RunID: req.RunID}
	fmt.Fprintf(out, "jenkins: triggered %s, queue item %d\n", j.Job, qid)
	if err := j.save(ctx, h, hd); err != nil {
		j.abandon(ctx, hd, out)
		return Result{}, err
	}
	return j.follow(ctx, hd, out, h)
}

// Reattach follows a stage whose handle was saved before a restart to
// its result, without triggering anything.
func (j *Jenkins) Reattach(ctx context.Context, _ *Request, handle json.RawMessage, out io.Writer) (Result, error) {
	var hd JenkinsHandle
	if err := json.Unmarshal(handle, &hd); err != nil {
		return Result{}, fmt.Errorf("jenkins: reading the handle: %w", err)
	}
	if hd.QueueID == 0 && hd.Build == 0 {
		return Result{}, errors.New("jenkins: the handle names no queue item or build")
	}
	if hd.Job == "" {
		hd.Job = j.Job
	}
	if out == nil {
		out = io.Discard
	}
	if hd.Build != 0 {
		fmt.Fprintf(out, "jenkins: reattached to build #%d of %s\n", hd.Build, hd.Job)
	} else {
		fmt.Fprintf(out, "jenkins: reattached to queue item %d of %s\n", hd.QueueID, hd.Job)
	}
	return j.follow(ctx, &hd, out, nil)
}

func (j *Jenkins) save(ctx context.Context, h Handle, hd *JenkinsHandle) error {
	if h == nil {
		return nil
	}
	data, err := json.Marshal(hd)
	if err != nil {
		return err
	}
	if err := h.Save(ctx, data); err != nil {
		return fmt.Errorf("jenkins: saving the handle: %w", err)
	}
	return nil
}

type jenkinsQueueItem struct {
	Cancelled  bool `json:"cancelled"`
	Executable *struct {
		Number int64  `json:"number"`
		URL    string `json:"url"`
	} `json:"executable"`
}

type jenkinsBuild struct {
	Building bool    `json:"building"`
	Result   *string `json:"result"`
	URL      string  `json:"url"`
}

// transient reports whether a failed poll may be retried.
func transient(err error) bool {
	s := statusOf(err)
	return s == 0 || s >= 500 || s == http.StatusTooManyRequests
}

// follow waits for the queue item to become a build, then for the build
// to end.
func (j *Jenkins) follow(ctx context.Context, hd *JenkinsHandle, out io.Writer, h Handle) (Result, error) {
	fails := 0
	retry := func(err error) error {
		if !transient(err) {
			return err
		}
		fails++
		if fails >= jenkinsMaxPollErrors {
			return fmt.Errorf("%w (%d polls in a row failed)", err, fails)
		}
		fmt.Fprintf(out, "jenkins: poll failed, retrying: %s\n", Redact(err.Error(), j.secrets))
		return nil
	}
	for hd.Build == 0 {
		var item jenkinsQueueItem
		err := j.getJSON(ctx, fmt.Sprintf("/queue/item/%d/api/json", hd.QueueID), &item)
		switch {
		case ctx.Err() != nil:
			return j.cancelQueued(ctx, hd, out), nil
		case err != nil:
			if statusOf(err) == http.StatusNotFound {
				return Result{}, fmt.Errorf("jenkins: queue item %d of %s is gone (Jenkins forgets items a few minutes after they leave the queue)", hd.QueueID, hd.Job)
			}
			if err := retry(err); err != nil {
				return Result{}, err
			}
		case item.Cancelled:
			msg := fmt.Sprintf("jenkins: queue item %d of %s was cancelled in Jenkins", hd.QueueID, hd.Job)
			fmt.Fprintln(out, msg)
			return Result{Message: msg}, nil
		case item.Executable != nil && item.Executable.Number > 0:
			fails = 0
			hd.Build, hd.URL = item.Executable.Number, item.Executable.URL
			if hd.URL == "" {
				hd.URL = fmt.Sprintf("%s%s/%d/", j.base, j.jobPath(hd.Job), hd.Build)
			}
			fmt.Fprintf(out, "jenkins: build #%d started: %s\n", hd.Build, hd.URL)
			if err := j.save(ctx, h, hd); err != nil {
				j.abandon(ctx, hd, out)
				return Result{URL: hd.URL}, err
			}
			continue
		default:
			fails = 0
		}
		if !sleepCtx(ctx, j.pollInterval()) {
			return j.cancelQueued(ctx, hd, out), nil
		}
	}
	buildPath := fmt.Sprintf("%s/%d", j.jobPath(hd.Job), hd.Build)
	for {
		var b jenkinsBuild
		err := j.getJSON(ctx, buildPath+"/api/json", &b)
		switch {
		case ctx.Err() != nil:
			return j.stopBuild(ctx, hd, out), nil
		case err != nil:
			if err := retry(err); err != nil {
				return Result{URL: hd.URL}, err
			}
		default:
			fails = 0
			if b.URL != "" {
				hd.URL = b.URL
			}
			if !b.Building && b.Result != nil {
				j.console(ctx, hd, out)
				res := Result{OK: *b.Result == "SUCCESS", URL: hd.URL}
				if !res.OK {
					res.Message = fmt.Sprintf("jenkins build #%d of %s: %s", hd.Build, hd.Job, *b.Result)
					fmt.Fprintln(out, res.Message)
				}
				return res, nil
			}
		}
		if !sleepCtx(ctx, j.pollInterval()) {
			return j.stopBuild(ctx, hd, out), nil
		}
	}
}

func (j *Jenkins) pollInterval() time.Duration {
	if j.PollInterval > 0 {
		return j.PollInterval
	}
	return DefaultJenkinsPollInterval
}

// cleanupCtx outlives the stage's ctx, briefly.
func cleanupCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), jenkinsCleanupTimeout)
}

// abandon stops whatever hd names, for a stage that cannot go on.
func (j *Jenkins) abandon(ctx context.Context, hd *JenkinsHandle, out io.Writer) {
	if hd.Build != 0 {
		j.stopBuild(ctx, hd, out)
	} else {
		j.cancelQueued(ctx, hd, out)
	}
}

// cancelQueued cancels the queue item of a stage whose ctx is done. An
// item that started meanwhile has its build stopped.
func (j *Jenkins) cancelQueued(ctx context.Context, hd *JenkinsHandle, out io.Writer) Result {
	cctx, cancel := cleanupCtx(ctx)
	defer cancel()
	msg := "cancelled"
	if err := ctx.Err(); err != nil {
		msg += ": " + err.Error()
	}
	_, err := j.post(cctx, "/queue/cancelItem", map[string]string{"id": strconv.FormatInt(hd.QueueID, 10)}, nil)
	// Whatever the answer (Jenkins redirects, and some versions then
	// answer 404), look at the item again.
	var item jenkinsQueueItem
	if gerr := j.getJSON(cctx, fmt.Sprintf("/queue/item/%d/api/json", hd.QueueID), &item); gerr == nil {
		if item.Executable != nil && item.Executable.Number > 0 {
			hd.Build, hd.URL = item.Executable.Number, item.Executable.URL
			return j.stopBuild(ctx, hd, out)
		}
		if item.Cancelled {
			err = nil
		}
	} else if err == nil {
		err = gerr
	}
	if err != nil {
		msg += fmt.Sprintf("; cancelling Jenkins queue item %d failed: %s", hd.QueueID, Redact(err.Error(), j.secrets))
	} else {
		msg += fmt.Sprintf("; Jenkins queue item %d cancelled", hd.QueueID)
	}
	fmt.Fprintln(out, "jenkins: "+msg)
	return Result{Message: msg}
}

// stopBuild stops the build of a stage whose ctx is done.
func (j *Jenkins) stopBuild(ctx context.Context, hd *JenkinsHandle, out io.Writer) Result {
	cctx, cancel := cleanupCtx(ctx)
	defer cancel()
	msg := "cancelled"
	if err := ctx.Err(); err != nil {
		msg += ": " + err.Error()
	}
	path := fmt.Sprintf("%s/%d/stop", j.jobPath(hd.Job), hd.Build)
	if _, err := j.post(cctx, path, nil, nil); err != nil {
		msg += fmt.Sprintf("; stopping Jenkins build #%d failed: %s", hd.Build, Redact(err.Error(), j.secrets))
	} else {
		msg += fmt.Sprintf("; Jenkins build #%d stopped", hd.Build)
	}
	j.console(cctx, hd, out)
	fmt.Fprintln(out, "jenkins: "+msg)
	return Result{Message: msg, URL: hd.URL}
}

// console copies the build's console text into out (which keeps its
// tail). It streams rather than going through gojenkins, which would
// hold the whole log in memory.
func (j *Jenkins) console(ctx context.Context, hd *JenkinsHandle, out io.Writer) {
	ctx, cancel := cleanupCtx(ctx)
	defer cancel()
	path := fmt.Sprintf("%s/%d/consoleText", j.jobPath(hd.Job), hd.Build)
	req, err := j.newRequest(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return
	}
	resp, err := j.httpClient.Do(req)
	if err != nil {
		fmt.Fprintf(out, "jenkins: fetching the console: %s\n", Redact(err.Error(), j.secrets))
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(out, "jenkins: fetching the console: %s\n", (&HTTPStatusError{Method: "GET", Path: path, Status: resp.StatusCode}).Error())
		return
	}
	fmt.Fprintf(out, "--- console of %s #%d ---\n", hd.Job, hd.Build)
	_, _ = io.Copy(out, resp.Body)
	fmt.Fprintln(out, "--- end of console ---")
}
