package runners

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/test/fakejenkins"
)

// without returns JenkinsParameters without the given ones.
func without(drop ...string) []string {
	var out []string
	for _, p := range JenkinsParameters {
		if !slices.Contains(drop, p) {
			out = append(out, p)
		}
	}
	return out
}

// triggers counts the buildWithParameters requests the fake received.
func triggers(f *fakejenkins.Server) int {
	n := 0
	for _, r := range f.Requests() {
		if strings.HasPrefix(r, "POST ") && strings.HasSuffix(r, "/buildWithParameters") {
			n++
		}
	}
	return n
}

// SPEC §4: a job must define GITMON_RUN_ID; every other missing GITMON_
// parameter is a warning, and the job gets the rest.
func TestJenkinsJobParameters(t *testing.T) {
	f := fakejenkins.New(fakeJenkinsUser, fakeJenkinsToken)
	t.Cleanup(f.Close)
	tg := &jenkinsTarget{url: f.URL, user: fakeJenkinsUser, token: fakeJenkinsToken, fake: f}
	f.AddJob("complete", JenkinsParameters...)
	f.AddJob("partial", without("GITMON_TICKETS", "GITMON_DESCRIPTOR")...)
	f.AddJob("no-run-id", without(JenkinsRunIDParameter)...)
	f.AddJob("no-params")

	tests := []struct {
		job     string
		refused string   // what the error must name; "" for a runner
		warned  []string // the parameters the warning must name
	}{
		{job: "complete"},
		{job: "partial", warned: []string{"GITMON_TICKETS", "GITMON_DESCRIPTOR"}},
		{job: "no-run-id", refused: JenkinsRunIDParameter},
		{job: "no-params", refused: JenkinsRunIDParameter},
		{job: "nope", refused: `"nope" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.job, func(t *testing.T) {
			var logs logBuffer
			env := tg.env(tg.token)
			env.Logger = logs.logger()
			j, err := NewJenkins(t.Context(), Pipeline{Name: "regression", Job: tt.job}, env)
			if tt.refused != "" {
				if err == nil || !strings.Contains(err.Error(), tt.refused) || !strings.Contains(err.Error(), tt.job) {
					t.Fatalf("NewJenkins = %v, want an error naming %s and the job", err, tt.refused)
				}
				missing, cerr := CheckJenkinsJob(t.Context(), tt.job, env)
				if cerr == nil || cerr.Error() != err.Error() {
					t.Errorf("CheckJenkinsJob = %v, %v; want the same refusal as serve", missing, cerr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { j.Close() })
			j.PollInterval = time.Millisecond
			if h := j.Health(); h != nil {
				t.Fatalf("Health = %v", h)
			}
			warning := ""
			for l := range strings.Lines(logs.String()) {
				if strings.Contains(l, "level=WARN") {
					warning += l
				}
			}
			for _, p := range tt.warned {
				if !strings.Contains(warning, p) || !strings.Contains(warning, "pipeline=regression") {
					t.Errorf("the warning %q does not name %s and the pipeline", warning, p)
				}
			}
			if len(tt.warned) == 0 && warning != "" {
				t.Errorf("unexpected warning %q", warning)
			}
			missing, err := CheckJenkinsJob(t.Context(), tt.job, env)
			if err != nil || !slices.Equal(missing, tt.warned) {
				t.Errorf("CheckJenkinsJob = %v, %v; want %v", missing, err, tt.warned)
			}

			res, err := j.Run(t.Context(), jenkinsRequest("p-"+tt.job), nil, &memHandle{})
			if err != nil || !res.OK {
				t.Fatalf("Run = %+v, %v", res, err)
			}
			b := f.Builds(tt.job)
			if len(b) != 1 {
				t.Fatalf("%d builds, want 1", len(b))
			}
			for _, p := range JenkinsParameters {
				_, got := b[0].Params[p]
				if want := !slices.Contains(tt.warned, p); got != want {
					t.Errorf("the build has %s: %v, want %v", p, got, want)
				}
			}
		})
	}
}

// closedURL is a loopback URL nothing listens on.
func closedURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// SPEC §4: a Jenkins that cannot be reached when serve starts is a
// warning and a Health failure, not a refusal; its stages fail with that
// reason until it answers, and then run.
func TestJenkinsUnreachableAtStart(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		var logs logBuffer
		url := closedURL(t)
		env := Env{Jenkins: &JenkinsOptions{URL: url, User: "gitmon", Token: fakeJenkinsToken}, Secrets: []string{fakeJenkinsToken}, Logger: logs.logger()}
		j, err := NewJenkins(t.Context(), Pipeline{Name: "regression", Job: "regression-suite"}, env)
		if err != nil {
			t.Fatalf("NewJenkins = %v, want a runner", err)
		}
		t.Cleanup(func() { j.Close() })
		var ue *UnreachableError
		if h := j.Health(); !errors.As(h, &ue) || ue.URL != url {
			t.Fatalf("Health = %v, want an *UnreachableError for %s", h, url)
		}
		if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "cannot be reached") {
			t.Errorf("no warning logged:\n%s", logs.String())
		}
		res, err := j.Run(t.Context(), jenkinsRequest("u-1"), nil, &memHandle{})
		if err != nil || res.OK || !strings.Contains(res.Message, "cannot be reached") || !strings.Contains(res.Message, url) {
			t.Fatalf("Run = %+v, %v; want a failed stage saying Jenkins at %s cannot be reached", res, err, url)
		}
		if strings.Contains(logs.String(), fakeJenkinsToken) || strings.Contains(res.Message, fakeJenkinsToken) {
			t.Fatal("the token leaked")
		}
		_, cerr := CheckJenkinsJob(t.Context(), "regression-suite", env)
		if !errors.As(cerr, &ue) {
			t.Errorf("CheckJenkinsJob = %v, want an *UnreachableError", cerr)
		}
	})

	t.Run("down, then up", func(t *testing.T) {
		f := fakejenkins.New(fakeJenkinsUser, fakeJenkinsToken)
		t.Cleanup(f.Close)
		f.AddJob(fakeJenkinsJob, without("GITMON_TICKETS")...)
		f.SetDown(true)
		tg := &jenkinsTarget{url: f.URL, user: fakeJenkinsUser, token: fakeJenkinsToken, fake: f}
		var logs logBuffer
		env := tg.env(tg.token)
		env.Logger = logs.logger()
		j, err := NewJenkins(t.Context(), Pipeline{Name: "regression", Job: fakeJenkinsJob}, env)
		if err != nil {
			t.Fatalf("NewJenkins = %v, want a runner", err)
		}
		t.Cleanup(func() { j.Close() })
		j.PollInterval = time.Millisecond
		j.RecheckInterval = time.Hour // only stages check again here

		// Concurrent stages while it is down all fail, and trigger nothing.
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				res, err := j.Run(t.Context(), jenkinsRequest(fmt.Sprint("d-", i)), nil, &memHandle{})
				if err != nil || res.OK || !strings.Contains(res.Message, "cannot be reached") {
					t.Errorf("Run while down = %+v, %v", res, err)
				}
			})
		}
		wg.Wait()
		if n := triggers(f); n != 0 {
			t.Fatalf("%d triggers while Jenkins was down", n)
		}
		if strings.Contains(logs.String(), "GITMON_TICKETS") {
			t.Fatal("warned about parameters before Jenkins answered")
		}

		f.SetDown(false)
		res, err := j.Run(t.Context(), jenkinsRequest("d-up"), nil, &memHandle{})
		if err != nil || !res.OK {
			t.Fatalf("Run once Jenkins answers = %+v, %v", res, err)
		}
		if h := j.Health(); h != nil {
			t.Fatalf("Health = %v after a check passed", h)
		}
		if !strings.Contains(logs.String(), "jenkins answers") || !strings.Contains(logs.String(), "GITMON_TICKETS") {
			t.Errorf("want the recovery and the missing parameter logged:\n%s", logs.String())
		}
	})

	t.Run("the job check still refuses once it answers", func(t *testing.T) {
		f := fakejenkins.New(fakeJenkinsUser, fakeJenkinsToken)
		t.Cleanup(f.Close)
		f.AddJob(fakeJenkinsJob, without(JenkinsRunIDParameter)...)
		f.SetDown(true)
		tg := &jenkinsTarget{url: f.URL, user: fakeJenkinsUser, token: fakeJenkinsToken, fake: f}
		j, err := NewJenkins(t.Context(), Pipeline{Name: "regression", Job: fakeJenkinsJob}, tg.env(tg.token))
		if err != nil {
			t.Fatalf("NewJenkins = %v, want a runner", err)
		}
		t.Cleanup(func() { j.Close() })
		f.SetDown(false)
		res, err := j.Run(t.Context(), jenkinsRequest("r-1"), nil, &memHandle{})
		if err != nil || res.OK || !strings.Contains(res.Message, JenkinsRunIDParameter) {
			t.Fatalf("Run = %+v, %v; want a failed stage naming %s", res, err, JenkinsRunIDParameter)
		}
		if h := j.Health(); h == nil || !strings.Contains(h.Error(), JenkinsRunIDParameter) {
			t.Fatalf("Health = %v", h)
		}
		if n := triggers(f); n != 0 {
			t.Fatalf("%d triggers of a job without %s", n, JenkinsRunIDParameter)
		}
	})
}

// Health checks again in the background while it fails, so /readyz
// clears when Jenkins comes back even if no stage runs.
func TestJenkinsHealthRechecks(t *testing.T) {
	f := fakejenkins.New(fakeJenkinsUser, fakeJenkinsToken)
	t.Cleanup(f.Close)
	f.AddJob(fakeJenkinsJob, JenkinsParameters...)
	f.SetFail(503)
	tg := &jenkinsTarget{url: f.URL, user: fakeJenkinsUser, token: fakeJenkinsToken, fake: f}
	now := time.Unix(1_700_000_000, 0)
	var clockMu sync.Mutex
	env := tg.env(tg.token)
	env.Now = func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	j, err := NewJenkins(t.Context(), Pipeline{Name: "regression", Job: fakeJenkinsJob}, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	j.RecheckInterval = time.Minute
	if j.Health() == nil {
		t.Fatal("Health is nil while Jenkins answers 503")
	}
	f.SetFail(0)
	requests := len(f.Requests())
	// Within the interval, Health only reports.
	for range 10 {
		if j.Health() == nil {
			t.Fatal("Health cleared without a check")
		}
	}
	if n := len(f.Requests()); n != requests {
		t.Fatalf("Health sent %d requests within RecheckInterval", n-requests)
	}
	clockMu.Lock()
	now = now.Add(time.Minute)
	clockMu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for j.Health() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("Health = %v 10s after Jenkins came back", j.Health())
		}
		time.Sleep(time.Millisecond) // the polling interval of a deadline loop
	}
	// One background check per interval, however often Health is asked.
	checks := 0
	for _, r := range f.Requests()[requests:] {
		if r == "GET /api/json" {
			checks++
		}
	}
	if checks != 1 {
		t.Errorf("%d background checks, want 1", checks)
	}
}

// A trigger Jenkins does not answer marks the runner down; the next stage
// checks again.
func TestJenkinsDownAfterStart(t *testing.T) {
	tg := newJenkinsTarget(t, "")
	f := tg.needFake(t)
	j := tg.runner(t)
	j.RecheckInterval = time.Hour
	f.SetDown(true)
	if _, err, _, _ := runJenkins(t, j, t.Context(), "a-1"); err == nil {
		t.Fatal("Run while down succeeded")
	}
	var ue *UnreachableError
	if h := j.Health(); !errors.As(h, &ue) {
		t.Fatalf("Health = %v after an unanswered trigger, want an *UnreachableError", h)
	}
	res, err, _, _ := runJenkins(t, j, t.Context(), "a-2")
	if err != nil || res.OK || !strings.Contains(res.Message, "cannot be reached") {
		t.Fatalf("Run while still down = %+v, %v", res, err)
	}
	f.SetDown(false)
	if res, err, _, _ := runJenkins(t, j, t.Context(), "a-3"); err != nil || !res.OK {
		t.Fatalf("Run once up = %+v, %v", res, err)
	}
	if h := j.Health(); h != nil {
		t.Fatalf("Health = %v", h)
	}
}

// A 400 about one stage's request says nothing about Jenkins.
func TestJenkinsMarkDownOnlyForJenkinsProblems(t *testing.T) {
	j := &Jenkins{base: "http://ci.example.com", log: slog.New(slog.DiscardHandler), now: time.Now}
	j.markDown(&HTTPStatusError{Method: "POST", Path: "/job/x/buildWithParameters", Status: 400})
	if h := j.Health(); h != nil {
		t.Fatalf("Health = %v after a 400", h)
	}
	j.markDown(&HTTPStatusError{Method: "POST", Path: "/job/x/buildWithParameters", Status: 404})
	if h := j.Health(); statusOf(h) != 404 {
		t.Fatalf("Health = %v after a 404, want it", h)
	}
}

// Stages that start while Jenkins is silent wait for one check and share
// its outcome: N stages never cost N dial timeouts in a row.
func TestJenkinsConcurrentStagesShareOneCheck(t *testing.T) {
	var mu sync.Mutex
	checks := 0
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.TrimSuffix(r.URL.Path, "/") == "/api/json" {
			mu.Lock()
			checks++
			mu.Unlock()
			<-release // a Jenkins that does not answer, until the test says
		}
		http.Error(w, "restarting", http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
	defer cancel()
	// The startup check times out: unreachable.
	j, err := NewJenkins(ctx, Pipeline{Name: "regression", Job: "x"}, Env{Jenkins: &JenkinsOptions{URL: srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	j.RecheckInterval = time.Hour
	mu.Lock()
	checks = 0
	mu.Unlock()

	const stages = 4
	var wg sync.WaitGroup
	for i := range stages {
		wg.Go(func() {
			res, err := j.Run(t.Context(), jenkinsRequest(fmt.Sprint("s-", i)), nil, &memHandle{})
			if err != nil || res.OK || !strings.Contains(res.Message, "cannot be reached") {
				t.Errorf("Run = %+v, %v", res, err)
			}
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := checks
		mu.Unlock()
		if n == 1 && j.waiting.Load() == stages-1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d checks, %d stages waiting", n, j.waiting.Load())
		}
		time.Sleep(time.Millisecond) // the polling interval of a deadline loop
	}
	close(release)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if checks != 1 {
		t.Errorf("%d stages made %d checks, want 1", stages, checks)
	}
}
