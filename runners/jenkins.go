package runners

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bndr/gojenkins"
)

func init() {
	Register(KindJenkins, func(p Pipeline, env Env) (Runner, error) {
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
	// and job check: a Jenkins that has not answered by then is
	// unreachable, and serve starts without it.
	DefaultJenkinsStartupTimeout = 15 * time.Second
	// DefaultJenkinsRecheckInterval is how often Health, while it
	// reports a failure, checks Jenkins again in the background.
	DefaultJenkinsRecheckInterval = 30 * time.Second
	// jenkinsRequestTimeout bounds one HTTP exchange with Jenkins.
	jenkinsRequestTimeout = 30 * time.Second
	// jenkinsCleanupTimeout bounds stopping a build or cancelling a queue
	// item, and fetching the console, once the stage's ctx is done.
	jenkinsCleanupTimeout = 15 * time.Second
	// jenkinsMaxPollErrors is how many polls in a row may fail (network,
	// 5xx) before the stage gives up on Jenkins.
	jenkinsMaxPollErrors = 5
)

// JenkinsRunIDParameter is the parameter a job must define (SPEC §4): it
// keeps two runs apart, since Jenkins merges queued builds whose
// parameters are equal, and lets a restarted gitmon find its build.
const JenkinsRunIDParameter = "GITMON_RUN_ID"

// JenkinsParameters are the build parameters the jenkins runner sends
// (SPEC §4). Jenkins silently drops parameters a job does not define: a
// job must define JenkinsRunIDParameter, and a missing other one is a
// warning. GITMON_DESCRIPTOR holds the descriptor JSON itself, not a
// path.
var JenkinsParameters = []string{
	"GITMON_REPOSITORY", "GITMON_ENV", "GITMON_SERVICE", "GITMON_VERSION", "GITMON_PREVIOUS_VERSION",
	"GITMON_COMMIT", "GITMON_AUTHOR", "GITMON_COMMITTER", "GITMON_TICKETS",
	"GITMON_STAGE", "GITMON_ACTION", JenkinsRunIDParameter, "GITMON_DESCRIPTOR",
}

// Jenkins is the jenkins runner (SPEC §4): it triggers a parametrised
// job with buildWithParameters, follows the queue item to its build and
// the build to its result, and stops the build (or cancels the queue
// item) when the stage's ctx is done.
//
// Before its first stage, and again after Jenkins failed to answer or
// refused a trigger, it checks Jenkins and the job (Check). While that
// check fails, stages fail at once with its reason and Health reports
// it; every other pipeline runs as usual.
//
// It uses gojenkins for requests, guarding its pitfalls: every HTTP
// status is checked here (gojenkins reports 4xx/5xx as JSON decode
// errors), library calls run under recover (a network failure while
// fetching the CSRF crumb panics inside it; the POST is then sent
// without a crumb, which API-token clients do not need), and the waiting
// loops are this runner's own, bounded by ctx (GetBuildFromQueueID
// ignores ctx and never ends for a cancelled item).
type Jenkins struct {
	// Job is the job's name; "folder/job" names a job inside a folder.
	Job string
	// PollInterval is the time between polls (default
	// DefaultJenkinsPollInterval).
	PollInterval time.Duration
	// RecheckInterval is the least time between background checks
	// while Health reports a failure (default
	// DefaultJenkinsRecheckInterval).
	RecheckInterval time.Duration

	pipeline    string // for log lines
	base        string // no trailing slash
	user, token string
	secrets     []string
	httpClient  *http.Client
	client      *gojenkins.Jenkins
	log         *slog.Logger
	now         func() time.Time

	// checking is held by whoever checks Jenkins: one check at a time.
	checking chan struct{}
	mu       sync.Mutex
	health   error        // why stages cannot run; nil once a check passed
	checks   uint64       // how many rechecks have ended
	waiting  atomic.Int32 // stages waiting for a check, for tests
	lastTry  time.Time    // when the last check started
	warned   bool         // the missing parameters were logged
	closed   bool
	bgStop   context.CancelFunc
	bgCtx    context.Context
	bg       sync.WaitGroup
}

var (
	_ Runner         = (*Jenkins)(nil)
	_ Reattacher     = (*Jenkins)(nil)
	_ HealthReporter = (*Jenkins)(nil)
	_ Closer         = (*Jenkins)(nil)
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

// NewJenkins returns the jenkins runner of pipeline p, having checked
// Jenkins and the job (Check); ctx bounds that check. A job that is not
// found or does not define GITMON_RUN_ID, or a Jenkins that refuses the
// credentials, is an error. A Jenkins that cannot be reached is not: the
// runner is returned, the problem is logged as a warning and reported by
// Health, and its stages fail with it until Jenkins answers. Parameters
// the job does not define are logged as a warning.
func NewJenkins(ctx context.Context, p Pipeline, env Env) (*Jenkins, error) {
	j, err := newJenkins(p.Job, env)
	if err != nil {
		return nil, err
	}
	j.pipeline = p.Name
	j.log = env.logger().With("pipeline", p.Name, "job", j.Job)
	if env.Now != nil {
		j.now = env.Now
	}
	j.lastTry = j.now()
	missing, err := j.Check(ctx)
	var ue *UnreachableError
	switch {
	case errors.As(err, &ue):
		j.health = err
		j.logDown(err)
	case err != nil:
		j.httpClient.CloseIdleConnections()
		return nil, err
	default:
		j.warnMissing(missing)
	}
	j.bgCtx, j.bgStop = context.WithCancel(context.Background())
	return j, nil
}

// newJenkins returns a runner for job, unchecked.
func newJenkins(job string, env Env) (*Jenkins, error) {
	if env.Jenkins == nil || env.Jenkins.URL == "" {
		return nil, errors.New("jenkins: integrations.jenkins is not configured")
	}
	if strings.Trim(job, "/") == "" {
		return nil, errors.New("jenkins: the pipeline has no job")
	}
	u, err := url.Parse(env.Jenkins.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New(Redact(fmt.Sprintf("jenkins: integrations.jenkins.url %q is not an http(s) URL", env.Jenkins.URL), env.Secrets))
	}
	j := &Jenkins{
		Job:          strings.Trim(job, "/"),
		PollInterval: DefaultJenkinsPollInterval,
		base:         strings.TrimSuffix(env.Jenkins.URL, "/"),
		user:         env.Jenkins.User,
		token:        env.Jenkins.Token,
		httpClient:   newJenkinsHTTPClient(),
		log:          env.logger(),
		now:          time.Now,
		checking:     make(chan struct{}, 1),
	}
	j.secrets = append(append([]string(nil), env.Secrets...), j.token)
	if j.user != "" || j.token != "" {
		j.client = gojenkins.CreateJenkins(j.httpClient, j.base, j.user, j.token)
	} else {
		j.client = gojenkins.CreateJenkins(j.httpClient, j.base)
	}
	initGojenkins(j.client)
	return j, nil
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
// stage fails with "cancelled: ". While Jenkins cannot be reached, or the
// job check fails (Health), the stage fails at once with that reason.
// Errors are for Jenkins refusing or failing the requests.
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
	if err := j.ready(ctx); err != nil {
		if ctx.Err() != nil {
			return cancelled(ctx), nil
		}
		fmt.Fprintf(out, "%s\n", err)
		return Result{Message: err.Error()}, nil
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
		j.markDown(err)
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
				hd.URL = fmt.Sprintf("%s%s/%d/", j.display(), j.jobPath(hd.Job), hd.Build)
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
