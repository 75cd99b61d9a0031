package runners

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/test/fakejenkins"
)

const (
	fakeJenkinsUser  = "gitmon"
	fakeJenkinsToken = "11aa22bb33cc44dd55ee66ff77889900aa"
	fakeJenkinsJob   = "regression-suite"
)

// jenkinsTarget is the Jenkins the tests run against: the fake, or a
// real one named by GITMON_TEST_JENKINS_URL, _USER, _TOKEN and _JOB (a
// job defining every JenkinsParameters entry and ending in SUCCESS).
type jenkinsTarget struct {
	url, user, token, job string
	fake                  *fakejenkins.Server // nil for a real Jenkins
}

func newJenkinsTarget(t *testing.T, contextPath string) *jenkinsTarget {
	t.Helper()
	if u := os.Getenv("GITMON_TEST_JENKINS_URL"); u != "" {
		return &jenkinsTarget{url: u, user: os.Getenv("GITMON_TEST_JENKINS_USER"),
			token: os.Getenv("GITMON_TEST_JENKINS_TOKEN"), job: os.Getenv("GITMON_TEST_JENKINS_JOB")}
	}
	f := fakejenkins.NewWithContextPath(fakeJenkinsUser, fakeJenkinsToken, contextPath)
	t.Cleanup(f.Close)
	f.AddJob(fakeJenkinsJob, JenkinsParameters...)
	return &jenkinsTarget{url: f.URL, user: fakeJenkinsUser, token: fakeJenkinsToken, job: fakeJenkinsJob, fake: f}
}

// needFake skips a test that drives the fake's controls against a real
// Jenkins.
func (tg *jenkinsTarget) needFake(t *testing.T) *fakejenkins.Server {
	t.Helper()
	if tg.fake == nil {
		t.Skip("needs the fake Jenkins's controls")
	}
	return tg.fake
}

func (tg *jenkinsTarget) env(token string) Env {
	return Env{
		Secrets: []string{tg.user, token},
		Jenkins: &JenkinsOptions{URL: tg.url, User: tg.user, Token: token},
	}
}

func (tg *jenkinsTarget) runner(t *testing.T) *Jenkins {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	j, err := NewJenkins(ctx, Pipeline{Name: "regression", Kind: KindJenkins, Job: tg.job}, tg.env(tg.token))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	if tg.fake != nil {
		j.PollInterval = 5 * time.Millisecond
	} else {
		j.PollInterval = time.Second
	}
	return j
}

// memHandle keeps every saved handle.
type memHandle struct {
	mu    sync.Mutex
	saves []JenkinsHandle
	raw   []json.RawMessage
	// onSave, if set, runs after each save and returns Save's error.
	onSave func(ctx context.Context, h JenkinsHandle) error
}

func (m *memHandle) Save(ctx context.Context, data json.RawMessage) error {
	var h JenkinsHandle
	if err := json.Unmarshal(data, &h); err != nil {
		return err
	}
	m.mu.Lock()
	m.saves = append(m.saves, h)
	m.raw = append(m.raw, append(json.RawMessage(nil), data...))
	f := m.onSave
	m.mu.Unlock()
	if f != nil {
		return f(ctx, h)
	}
	return nil
}

func (m *memHandle) last() (JenkinsHandle, json.RawMessage) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.saves) == 0 {
		return JenkinsHandle{}, nil
	}
	return m.saves[len(m.saves)-1], m.raw[len(m.raw)-1]
}

func jenkinsRequest(runID string) *Request {
	return &Request{
		Repository: "git@example.com:envs.git", Environment: "staging", Service: "payments",
		Version: "1.4.2", PreviousVersion: "1.4.1", Commit: "0123456789abcdef0123456789abcdef01234567",
		Author: "alice@example.com", Committer: "bob@example.com", Tickets: []string{"OPS-1", "OPS-2"},
		Stage: "regression", Action: "deploy", RunID: runID,
		Descriptor: json.RawMessage(`{"service":"payments","version":"1.4.2"}`),
	}
}

func runJenkins(t *testing.T, j *Jenkins, ctx context.Context, runID string) (Result, error, string, *memHandle) {
	t.Helper()
	out := NewOutput(1<<16, nil)
	h := &memHandle{}
	res, err := j.Run(ctx, jenkinsRequest(runID), out, h)
	return res, err, out.String(), h
}

func TestJenkinsParametersAndConcurrentRuns(t *testing.T) {
	tg := newJenkinsTarget(t, "/jenkins") // with a context path
	j := tg.runner(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	results := make([]Result, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i], _, _ = runJenkins(t, j, ctx, fmt.Sprintf("run-%d", i))
		}()
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil || !results[i].OK || results[i].URL == "" {
			t.Fatalf("run %d: %+v, %v", i, results[i], errs[i])
		}
	}
	if results[0].URL == results[1].URL {
		t.Fatalf("both runs followed the same build %s", results[0].URL)
	}
	f := tg.fake
	if f == nil {
		return
	}
	builds := f.Builds(fakeJenkinsJob)
	if len(builds) != 2 {
		t.Fatalf("want 2 builds, got %d", len(builds))
	}
	runIDs := map[string]bool{}
	for _, b := range builds {
		for _, p := range JenkinsParameters {
			if _, ok := b.Params[p]; !ok {
				t.Errorf("build %d lacks %s", b.Number, p)
			}
		}
		runIDs[b.Params["GITMON_RUN_ID"]] = true
		want := map[string]string{
			"GITMON_REPOSITORY": "git@example.com:envs.git", "GITMON_ENV": "staging", "GITMON_SERVICE": "payments",
			"GITMON_VERSION": "1.4.2", "GITMON_PREVIOUS_VERSION": "1.4.1", "GITMON_TICKETS": "OPS-1,OPS-2",
			"GITMON_COMMIT": "0123456789abcdef0123456789abcdef01234567", "GITMON_AUTHOR": "alice@example.com",
			"GITMON_COMMITTER": "bob@example.com", "GITMON_STAGE": "regression", "GITMON_ACTION": "deploy",
			"GITMON_DESCRIPTOR": `{"service":"payments","version":"1.4.2"}`,
		}
		for k, v := range want {
			if b.Params[k] != v {
				t.Errorf("build %d: %s = %q, want %q", b.Number, k, b.Params[k], v)
			}
		}
		if !strings.HasPrefix(fmt.Sprint(results[0].URL), f.URL+"/job/") {
			t.Errorf("URL %s not under %s", results[0].URL, f.URL)
		}
	}
	if !runIDs["run-0"] || !runIDs["run-1"] {
		t.Fatalf("run ids: %v", runIDs)
	}
}

func TestJenkinsResults(t *testing.T) {
	tg := newJenkinsTarget(t, "")
	f := tg.needFake(t)
	j := tg.runner(t)
	f.SetConsole("step 1\nall tests passed\n")
	res, err, out, h := runJenkins(t, j, context.Background(), "ok-1")
	if err != nil || !res.OK {
		t.Fatalf("%+v %v", res, err)
	}
	b := f.Builds(fakeJenkinsJob)[0]
	wantURL := fmt.Sprintf("%s/job/%s/%d/", f.URL, fakeJenkinsJob, b.Number)
	if res.URL != wantURL {
		t.Fatalf("URL %q, want %q", res.URL, wantURL)
	}
	if !strings.Contains(out, "all tests passed") {
		t.Fatalf("console not in output:\n%s", out)
	}
	if last, _ := h.last(); last.Build != b.Number || last.QueueID != b.QueueID || last.URL != wantURL {
		t.Fatalf("saved handle %+v", last)
	}
	if h.saves[0].QueueID == 0 || h.saves[0].Build != 0 {
		t.Fatalf("the queue item was not saved first: %+v", h.saves)
	}

	for _, result := range []string{"FAILURE", "UNSTABLE", "ABORTED"} {
		f.SetResult(result)
		res, err, _, _ = runJenkins(t, j, context.Background(), "r-"+result)
		if err != nil || res.OK || !strings.Contains(res.Message, result) || res.URL == "" {
			t.Fatalf("%s: %+v %v", result, res, err)
		}
	}
}

func TestJenkinsQueuedForeverIsCancelled(t *testing.T) {
	tg := newJenkinsTarget(t, "")
	f := tg.needFake(t)
	f.SetQueuePolls(fakejenkins.Forever)
	j := tg.runner(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err, _, _ := runJenkins(t, j, ctx, "q-1")
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("took %s", took)
	}
	if err != nil || res.OK || !strings.HasPrefix(res.Message, "cancelled") {
		t.Fatalf("%+v %v", res, err)
	}
	b := f.Builds(fakeJenkinsJob)
	if len(b) != 1 || !b[0].Cancelled || b[0].Number != 0 {
		t.Fatalf("queue item not cancelled: %+v", b)
	}
}

func TestJenkinsTimeoutStopsBuild(t *testing.T) {
	tg := newJenkinsTarget(t, "")
	f := tg.needFake(t)
	f.SetBuildPolls(1 << 30)
	j := tg.runner(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err, _, _ := runJenkins(t, j, ctx, "s-1")
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("took %s", took)
	}
	if err != nil || res.OK || !strings.HasPrefix(res.Message, "cancelled") || res.URL == "" {
		t.Fatalf("%+v %v", res, err)
	}
	b := f.Builds(fakeJenkinsJob)
	if len(b) != 1 || !b[0].Stopped || b[0].Result != "ABORTED" {
		t.Fatalf("build not stopped: %+v", b)
	}
}

func TestJenkinsReattach(t *testing.T) {
	tg := newJenkinsTarget(t, "")
	f := tg.needFake(t)
	f.SetBuildPolls(20)
	j1 := tg.runner(t)

	// The first instance "dies" once the build is recorded: its Save
	// blocks until the test is done.
	started := make(chan JenkinsHandle, 1)
	release := make(chan struct{})
	h := &memHandle{onSave: func(ctx context.Context, hd JenkinsHandle) error {
		if hd.Build == 0 {
			return nil
		}
		started <- hd
		<-release
		return errors.New("gitmon died")
	}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = j1.Run(context.Background(), jenkinsRequest("re-1"), nil, h)
	}()
	var hd JenkinsHandle
	select {
	case hd = <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the build never started")
	}
	_, raw := h.last()

	j2 := tg.runner(t) // after the restart
	out := NewOutput(1<<16, nil)
	res, err := j2.Reattach(context.Background(), jenkinsRequest("re-1"), raw, out)
	close(release)
	<-done
	if err != nil || !res.OK || res.URL != hd.URL {
		t.Fatalf("%+v %v\n%s", res, err, out.String())
	}
	if b := f.Builds(fakeJenkinsJob); len(b) != 1 || b[0].Result != "SUCCESS" {
		t.Fatalf("builds: %+v", b)
	}

	// A handle saved while the item was still queued.
	f.SetQueuePolls(3)
	f.SetBuildPolls(2)
	res, err, _, _ = runJenkins(t, j1, context.Background(), "re-2")
	if err != nil || !res.OK {
		t.Fatalf("%+v %v", res, err)
	}
	queued, _ := json.Marshal(JenkinsHandle{Job: fakeJenkinsJob, QueueID: f.Builds(fakeJenkinsJob)[1].QueueID})
	res, err = j2.Reattach(context.Background(), nil, queued, nil)
	if err != nil || !res.OK || res.URL == "" {
		t.Fatalf("reattach from a queue item: %+v %v", res, err)
	}
	var triggers int
	for _, r := range f.Requests() {
		if strings.HasSuffix(r, "/buildWithParameters") {
			triggers++
		}
	}
	if triggers != 2 {
		t.Fatalf("%d triggers, want 2", triggers)
	}
}

func TestJenkinsServerError(t *testing.T) {
	tg := newJenkinsTarget(t, "")
	f := tg.needFake(t)
	j := tg.runner(t)
	f.SetFail(500)
	_, err, _, _ := runJenkins(t, j, context.Background(), "e-1")
	if err == nil || !strings.Contains(err.Error(), "500 Internal Server Error") || !strings.Contains(err.Error(), "buildWithParameters") {
		t.Fatalf("want a clear 500 error, got %v", err)
	}
	// At startup a 500 is a Jenkins that cannot serve now, not a refusal.
	j500, err := NewJenkins(context.Background(), Pipeline{Job: fakeJenkinsJob}, tg.env(tg.token))
	if err != nil {
		t.Fatalf("startup with a 500: %v, want a runner whose Health reports it", err)
	}
	t.Cleanup(func() { j500.Close() })
	var ue *UnreachableError
	if h := j500.Health(); !errors.As(h, &ue) || !strings.Contains(h.Error(), "500") {
		t.Fatalf("Health = %v, want an *UnreachableError naming the 500", h)
	}
	// A failure while following a build fails the stage after a few polls.
	f.SetFail(0)
	f.SetBuildPolls(1 << 30)
	h := &memHandle{onSave: func(ctx context.Context, hd JenkinsHandle) error {
		if hd.Build != 0 {
			f.SetFail(503)
		}
		return nil
	}}
	_, err = j.Run(context.Background(), jenkinsRequest("e-2"), nil, h)
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("want a 503 error, got %v", err)
	}
}

func TestJenkinsWrongToken(t *testing.T) {
	tg := newJenkinsTarget(t, "")
	tg.needFake(t)
	const bad = "wrong-token-0000ffff"
	_, err := NewJenkins(context.Background(), Pipeline{Job: fakeJenkinsJob}, tg.env(bad))
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("want a 401 error, got %v", err)
	}
	if strings.Contains(err.Error(), bad) || strings.Contains(err.Error(), tg.token) {
		t.Fatalf("the token leaked: %v", err)
	}
}

func TestJenkinsCrumb(t *testing.T) {
	tg := newJenkinsTarget(t, "")
	f := tg.needFake(t)
	j := tg.runner(t)
	for _, mode := range []int{fakejenkins.CrumbBroken, fakejenkins.CrumbDisabled, fakejenkins.CrumbOK} {
		f.SetCrumbMode(mode)
		res, err, _, _ := runJenkins(t, j, context.Background(), fmt.Sprint("c-", mode))
		if err != nil || !res.OK {
			t.Fatalf("crumb mode %d: %+v %v", mode, res, err)
		}
	}
}
