package runners

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/bndr/gojenkins"
)

// UnreachableError is a Jenkins that did not answer (a network failure,
// a timeout) or answered that it cannot serve now (5xx, 429). It may
// pass on its own: serve starts anyway, and the stages of its pipelines
// fail with it until Jenkins answers.
type UnreachableError struct {
	URL string // the Jenkins base URL, without credentials
	Err error  // its text holds no secret
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("jenkins at %s cannot be reached: %v", e.URL, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// unreachable reports whether err means Jenkins is not there to answer,
// as opposed to answering no.
func unreachable(err error) bool {
	var na *noAnswerError
	s := statusOf(err)
	return errors.As(err, &na) || s >= 500 || s == http.StatusTooManyRequests
}

var initGojenkinsOnce sync.Once

// initGojenkins calls gojenkins' Init once per process. Init is required
// (it sets the package-level loggers gojenkins' requests use), but it
// writes those globals without a lock, so calling it per runner or per
// check would race with other runners' requests. It runs with a cancelled
// context, so it sends nothing: the connection test is Check's.
func initGojenkins(c *gojenkins.Jenkins) {
	initGojenkinsOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = guard(func() { _, _ = c.Init(ctx) })
	})
}

// CheckJenkinsJob checks a job the way serve does (Check), without
// building a runner: for `gitmon validate`.
func CheckJenkinsJob(ctx context.Context, job string, env Env) (missing []string, err error) {
	j, err := newJenkins(job, env)
	if err != nil {
		return nil, err
	}
	defer j.httpClient.CloseIdleConnections()
	return j.Check(ctx)
}

// Check asks Jenkins whether the credentials work and the job exists and
// defines JenkinsRunIDParameter, and returns the JenkinsParameters the job
// does not define. A Jenkins that cannot be reached is an
// *UnreachableError; any other error is a refusal that does not pass on
// its own (bad credentials, no such job, no GITMON_RUN_ID).
func (j *Jenkins) Check(ctx context.Context) ([]string, error) {
	if _, _, err := j.get(ctx, "/api/json", nil); err != nil {
		return nil, j.classify(err)
	}
	var info struct {
		Property []struct {
			ParameterDefinitions []struct {
				Name string `json:"name"`
			} `json:"parameterDefinitions"`
		} `json:"property"`
	}
	if err := j.getJSON(ctx, j.jobPath(j.Job)+"/api/json", &info); err != nil {
		if statusOf(err) == http.StatusNotFound {
			return nil, fmt.Errorf("jenkins: job %q not found at %s", j.Job, j.display())
		}
		return nil, j.classify(err)
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
	if !defined[JenkinsRunIDParameter] {
		return missing, fmt.Errorf("jenkins: job %q does not define the %s parameter, which keeps two runs apart: add it to the job as a string parameter",
			j.Job, JenkinsRunIDParameter)
	}
	return missing, nil
}

func (j *Jenkins) classify(err error) error {
	if unreachable(err) {
		return &UnreachableError{URL: j.display(), Err: err}
	}
	return err
}

// recheck runs Check again after a failure and records its outcome as
// the runner's health, logging when it changes. The caller holds
// j.checking. A check cut short by ctx changes nothing.
func (j *Jenkins) recheck(ctx context.Context) error {
	j.mu.Lock()
	j.lastTry = j.now()
	j.mu.Unlock()
	missing, err := j.Check(ctx)
	if err != nil && ctx.Err() != nil {
		return err
	}
	j.mu.Lock()
	was := j.health
	j.health = err
	j.checks++
	j.mu.Unlock()
	switch {
	case err == nil && was != nil:
		j.log.Info("jenkins answers; the pipeline's stages run again")
		j.warnMissing(missing)
	case err != nil && was == nil:
		j.logDown(err)
	}
	return err
}

// warnMissing logs, once, the parameters the job does not define.
func (j *Jenkins) warnMissing(missing []string) {
	j.mu.Lock()
	done := j.warned
	j.warned = true
	j.mu.Unlock()
	if done || len(missing) == 0 {
		return
	}
	j.log.Warn("the Jenkins job does not define some GITMON_ parameters; Jenkins drops them, so its builds do not get them",
		"missing", strings.Join(missing, ","))
}

func (j *Jenkins) logDown(err error) {
	var ue *UnreachableError
	if errors.As(err, &ue) {
		j.log.Warn("jenkins cannot be reached; the pipeline's stages fail until it answers", "err", err)
	} else {
		j.log.Warn("jenkins refuses the pipeline's job; its stages fail until that is fixed", "err", err)
	}
}

// ready returns nil when stages can run. After a failed check it checks
// again first, one caller at a time: callers that waited for a check
// share its outcome instead of each checking in turn (with Jenkins
// silent, each check can take a dial timeout).
func (j *Jenkins) ready(ctx context.Context) error {
	j.mu.Lock()
	h, seen := j.health, j.checks
	j.mu.Unlock()
	if h == nil {
		return nil
	}
	j.waiting.Add(1)
	select {
	case j.checking <- struct{}{}:
		j.waiting.Add(-1)
	case <-ctx.Done():
		j.waiting.Add(-1)
		return ctx.Err()
	}
	defer func() { <-j.checking }()
	j.mu.Lock()
	h, done := j.health, j.checks != seen
	j.mu.Unlock()
	if h == nil || done {
		return h // the outcome of the check we waited for
	}
	return j.recheck(ctx)
}

// markDown records that a trigger failed in a way the job check would
// see too (no answer, 5xx, or the job or its permission gone), so that
// the next stage checks Jenkins again and Health reports it meanwhile.
func (j *Jenkins) markDown(err error) {
	switch s := statusOf(err); {
	case unreachable(err):
		err = &UnreachableError{URL: j.display(), Err: err}
	case s == http.StatusUnauthorized || s == http.StatusForbidden || s == http.StatusNotFound:
	default:
		return // about this stage's request, not about Jenkins
	}
	j.mu.Lock()
	was := j.health
	if was == nil {
		j.health = err
	}
	j.mu.Unlock()
	if was == nil {
		j.logDown(err)
	}
}

// Health returns why the pipeline's stages cannot run: the last failed
// check of Jenkins and the job, or a trigger that Jenkins did not answer;
// nil when they can. While it reports a failure, it starts a check in
// the background at most every RecheckInterval, so that the failure
// clears once Jenkins answers even when no stage runs.
func (j *Jenkins) Health() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.health != nil && !j.closed && j.bgCtx != nil && j.now().Sub(j.lastTry) >= j.recheckInterval() {
		j.lastTry = j.now()
		j.bg.Go(j.recheckBackground)
	}
	return j.health
}

func (j *Jenkins) recheckInterval() time.Duration {
	if j.RecheckInterval > 0 {
		return j.RecheckInterval
	}
	return DefaultJenkinsRecheckInterval
}

func (j *Jenkins) recheckBackground() {
	select {
	case j.checking <- struct{}{}:
	default:
		return // a stage is checking
	}
	defer func() { <-j.checking }()
	ctx, cancel := context.WithTimeout(j.bgCtx, DefaultJenkinsStartupTimeout)
	defer cancel()
	j.recheck(ctx)
}

// Close stops the background check, if one runs, and waits for it.
func (j *Jenkins) Close() error {
	j.mu.Lock()
	j.closed = true
	j.mu.Unlock()
	if j.bgStop != nil {
		j.bgStop()
	}
	j.bg.Wait()
	j.httpClient.CloseIdleConnections()
	return nil
}
