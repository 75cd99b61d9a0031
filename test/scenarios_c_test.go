package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/test/gitserver"
)

// Scenarios C: the daemon under several repositories (collisions, bad
// input beside good), branches that disappear or appear while gitmon
// watches, initial: deploy, graceful shutdown, and the HTTP endpoints.
// Every test runs the real `gitmon serve` against real Git servers.

// cCanary is a wrong Git password: it must never show anywhere.
const cCanary = "wr0ng-passw0rd-canary"

// cRepo is one entry of a config's repositories list.
type cRepo struct {
	Name, URL string
	Insecure  bool
	// Extra is YAML of more keys of the entry (ca_file, auth...),
	// without indentation.
	Extra string
}

// cSetRepos replaces the repositories list of d's config (NewDaemon
// writes one entry) with repos, before Start.
func cSetRepos(t *testing.T, d *Daemon, repos ...cRepo) {
	t.Helper()
	b, err := os.ReadFile(d.Config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	i, j := strings.Index(cfg, "\nrepositories:\n"), strings.Index(cfg, "\nenvironments:\n")
	if i < 0 || j < i {
		t.Fatalf("cannot find the repositories list in:\n%s", cfg)
	}
	var sb strings.Builder
	for _, r := range repos {
		fmt.Fprintf(&sb, "  - name: %s\n    url: %q\n    insecure: %v\n", r.Name, r.URL, r.Insecure)
		if r.Extra != "" {
			sb.WriteString(indent(r.Extra, "    "))
		}
	}
	cfg = cfg[:i] + "\nrepositories:\n" + sb.String() + cfg[j+1:]
	if err := os.WriteFile(d.Config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// cEditConfig replaces old (which must occur once) with new in d's config.
func cEditConfig(t *testing.T, d *Daemon, old, new string) {
	t.Helper()
	b, err := os.ReadFile(d.Config)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), old); n != 1 {
		t.Fatalf("%q occurs %d times in the config:\n%s", old, n, b)
	}
	if err := os.WriteFile(d.Config, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// cValidate fails the test at once when serve would refuse the config.
func cValidate(t *testing.T, d *Daemon) {
	t.Helper()
	if r := d.Gitmon("validate", "--config", d.Config); r.code != 0 {
		t.Fatalf("the test's config is invalid: %v", r)
	}
}

// cStartUnready starts `gitmon serve` like Daemon.Start, but waits only
// for /healthz: with a repository that never polls, /readyz stays 503.
func cStartUnready(t *testing.T, d *Daemon) {
	t.Helper()
	d.cmd = exec.Command(gitmonBin, "serve", "--config", d.Config)
	d.cmd.Dir = d.Dir
	d.cmd.Env = d.Env
	d.cmd.Stdout = &lockedWriter{d: d}
	d.cmd.Stderr = &lockedWriter{d: d}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.done = make(chan struct{})
	go func() {
		err := d.cmd.Wait()
		d.mu.Lock()
		d.exitErr = err
		d.mu.Unlock()
		close(d.done)
	}()
	t.Cleanup(func() { d.Kill() })
	d.Eventually(30*time.Second, "gitmon serving /healthz", func() bool {
		select {
		case <-d.done:
			t.Fatalf("gitmon serve exited: %v\n%s", d.exitErr, d.Logs())
		default:
		}
		code, _ := cGet(d, "/healthz")
		return code == 200
	})
}

// cSIGTERM sends SIGTERM to the serve this test started and returns when
// it was sent.
func cSIGTERM(t *testing.T, d *Daemon) time.Time {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	return time.Now()
}

// cWaitExit waits for serve to exit, at most within, and returns its
// exit error (nil for exit 0). It fails the test (after killing serve)
// when serve is still running.
func cWaitExit(t *testing.T, d *Daemon, within time.Duration) error {
	t.Helper()
	select {
	case <-d.done:
	case <-time.After(within):
		d.Kill()
		t.Fatalf("gitmon did not exit within %s of SIGTERM\n%s", within, d.Logs())
	}
	d.mu.Lock()
	err := d.exitErr
	d.mu.Unlock()
	d.cmd = nil
	return err
}

// cGet fetches a path of the daemon's HTTP server.
func cGet(d *Daemon, path string) (int, string) {
	resp, err := http.Get("http://" + d.Addr + path)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// cReadyz returns /readyz's status code, body and reported errors.
func cReadyz(d *Daemon) (int, string, map[string]string) {
	code, body := cGet(d, "/readyz")
	var v struct {
		Errors map[string]string `json:"errors"`
	}
	_ = json.Unmarshal([]byte(body), &v)
	return code, body, v.Errors
}

// cMetric sums the samples of metric name on /metrics whose labels
// contain every one of labels (such as `repository="locked"`); -1 when
// no sample matches.
func cMetric(d *Daemon, name string, labels ...string) float64 {
	_, body := cGet(d, "/metrics")
	sum, found := 0.0, false
	for _, l := range strings.Split(body, "\n") {
		if !strings.HasPrefix(l, name+"{") && !strings.HasPrefix(l, name+" ") {
			continue
		}
		ok := true
		for _, lb := range labels {
			ok = ok && strings.Contains(l, lb)
		}
		f := strings.Fields(l)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); ok && err == nil {
			sum, found = sum+v, true
		}
	}
	if !found {
		return -1
	}
	return sum
}

// cEvents returns the events of kind about repository (any when "") and
// environment (any when "").
func cEvents(d *Daemon, kind, repository, env string) []Event {
	var out []Event
	for _, e := range d.Events() {
		if e.Kind == kind && (repository == "" || e.Repository == repository) && (env == "" || e.Environment == env) {
			out = append(out, e)
		}
	}
	return out
}

// cWaitEvent waits for an event of kind about repository and env.
func cWaitEvent(d *Daemon, kind, repository, env string) Event {
	d.t.Helper()
	var found Event
	d.Eventually(30*time.Second, fmt.Sprintf("a %s event of %s/%s", kind, repository, env), func() bool {
		if evs := cEvents(d, kind, repository, env); len(evs) > 0 {
			found = evs[0]
			return true
		}
		return false
	})
	return found
}

// cWaitPolls waits until repository was polled n more times, so that
// whatever those polls would do has been done.
func cWaitPolls(d *Daemon, repository string, n float64) {
	d.t.Helper()
	from := cMetric(d, "gitmon_polls_total", `repository="`+repository+`"`)
	d.Eventually(30*time.Second, fmt.Sprintf("%v more polls of %s", n, repository), func() bool {
		return cMetric(d, "gitmon_polls_total", `repository="`+repository+`"`) >= from+n
	})
}

// cRecordOf waits for the finished record of (env, service, commit) in
// repository.
func cRecordOf(d *Daemon, repository, env, service, commit string) Record {
	d.t.Helper()
	var found Record
	d.Eventually(60*time.Second, fmt.Sprintf("a finished record of %s %s/%s at %.10s", repository, env, service, commit), func() bool {
		for _, r := range d.Records() {
			if r.Repository == repository && r.Environment == env && r.Service == service && r.Commit == commit && r.FinishedAt != nil {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

// cSummary renders records one line each, for failure messages.
func cSummary(recs []Record) string {
	var lines []string
	for _, r := range recs {
		lines = append(lines, fmt.Sprintf("%s %s/%s %s at %.10s: %s %v", r.Repository, r.Environment, r.Service, r.Version, r.Commit, r.Status, r.Rules()))
	}
	return strings.Join(lines, "\n")
}

// TestScenarioC_CollisionRejectedOnBoth: two repositories both hold
// services/payments.yaml on qa. One (environment, service) claimed by two
// repositories is a collision: a bump in either is rejected, and the
// reason names the other repository. A service only one of them holds
// deploys as usual.
func TestScenarioC_CollisionRejectedOnBoth(t *testing.T) {
	repoA, repoB := NewGitRepo(t), NewGitRepo(t)
	urlA, urlB := gitserver.Daemon(t, repoA), gitserver.Daemon(t, repoB)
	repoA.WriteFile(aPath("payments"), Descriptor("payments", "1.0.0"))
	repoA.WriteFile(aPath("search"), Descriptor("search", "2.0.0"))
	baseA := repoA.Commit("qa", "payments and search", Alice, Alice)
	repoB.WriteFile(aPath("payments"), Descriptor("payments", "1.0.0"))
	baseB := repoB.Commit("qa", "payments too", Bob, Bob)

	d := NewDaemon(t, ConfigOptions{URL: urlA, Insecure: true})
	cSetRepos(t, d, cRepo{Name: "alpha", URL: urlA, Insecure: true}, cRepo{Name: "beta", URL: urlB, Insecure: true})
	cValidate(t, d)
	d.Start()
	for repo, base := range map[string]string{"alpha": baseA, "beta": baseB} {
		if ev := cWaitEvent(d, "baseline", repo, "qa"); ev.Commit != base {
			t.Errorf("%s's baseline event is at %.10s, want %.10s", repo, ev.Commit, base)
		}
	}
	if recs := d.Records(); len(recs) != 0 {
		t.Fatalf("baselines make no records, got:\n%s", aJSON(recs))
	}

	repoB.WriteFile(aPath("payments"), Descriptor("payments", "1.1.0"))
	bumpB := repoB.Commit("qa", "payments 1.1.0 from beta", Bob, Bob)
	r := cRecordOf(d, "beta", "qa", "payments", bumpB)
	aWantStatus(t, r, "rejected", "deploy")
	aWantReason(t, r, "collision", "", "")
	aWantNoStages(t, r)
	for _, rs := range r.Reasons {
		if rs.Rule == "collision" && !strings.Contains(rs.Message, "alpha") {
			t.Errorf("beta's collision does not name the other repository, alpha: %q", rs.Message)
		}
	}

	repoA.WriteFile(aPath("payments"), Descriptor("payments", "1.2.0"))
	repoA.WriteFile(aPath("search"), Descriptor("search", "2.1.0"))
	bumpA := repoA.Commit("qa", "payments 1.2.0, search 2.1.0 from alpha", Alice, Alice)
	r = cRecordOf(d, "alpha", "qa", "payments", bumpA)
	aWantStatus(t, r, "rejected", "deploy")
	aWantReason(t, r, "collision", "", "")
	aWantNoStages(t, r)
	for _, rs := range r.Reasons {
		if rs.Rule == "collision" && !strings.Contains(rs.Message, "beta") {
			t.Errorf("alpha's collision does not name the other repository, beta: %q", rs.Message)
		}
	}
	// search is alpha's alone.
	aWantStatus(t, cRecordOf(d, "alpha", "qa", "search", bumpA), "succeeded", "deploy")
	aWantDeployed(t, d, aDeployLine("search", "2.1.0", "deploy", bumpA))
	if recs := d.Records(); len(recs) != 3 {
		t.Errorf("want 3 records (two collisions, one deploy), got:\n%s", aJSON(recs))
	}
}

// TestScenarioC_BadInputNeverStopsTheDaemon: of three repositories, one
// is unreachable and one refuses gitmon's (wrong) password. The healthy
// one deploys as usual, /readyz says what is wrong with the other two
// without leaking the password, and each outage is one poll_error event,
// not one per poll. A descriptor over the size limit is rejected on its
// own; the other service in the same commit deploys.
func TestScenarioC_BadInputNeverStopsTheDaemon(t *testing.T) {
	healthy, locked := NewGitRepo(t), NewGitRepo(t)
	healthyURL := gitserver.Daemon(t, healthy)
	srv := gitserver.StartHTTPS(t, locked, "git", "the-right-password")
	unreachableURL := "git://" + freeAddr(t) + "/deployments.git" // closed loopback port

	healthy.WriteFile(aPath("payments"), Descriptor("payments", "1.0.0"))
	healthy.WriteFile(aPath("search"), Descriptor("search", "2.0.0"))
	base := healthy.Commit("qa", "payments and search", Alice, Alice)
	locked.WriteFile(aPath("orders"), Descriptor("orders", "1.0.0"))
	locked.Commit("qa", "orders", Alice, Alice)

	d := NewDaemon(t, ConfigOptions{URL: healthyURL, Insecure: true})
	cSetRepos(t, d,
		cRepo{Name: "healthy", URL: healthyURL, Insecure: true},
		cRepo{Name: "unreachable", URL: unreachableURL, Insecure: true},
		cRepo{Name: "locked", URL: srv.URL, Extra: fmt.Sprintf("ca_file: %q\nauth:\n  username_env: C_GIT_USER\n  password_env: C_GIT_TOKEN\n", srv.CAFile)})
	d.Env = append(d.Env, "C_GIT_USER=git", "C_GIT_TOKEN="+cCanary)
	cValidate(t, d)
	cStartUnready(t, d)

	if ev := cWaitEvent(d, "baseline", "healthy", "qa"); ev.Commit != base {
		t.Errorf("the healthy repository's baseline is at %.10s, want %.10s", ev.Commit, base)
	}
	// Several failed polls of each bad repository (backoff_max is 1s).
	d.Eventually(30*time.Second, "3 failed polls of each bad repository", func() bool {
		return cMetric(d, "gitmon_poll_errors_total", `repository="unreachable"`) >= 3 &&
			cMetric(d, "gitmon_poll_errors_total", `repository="locked"`) >= 3
	})
	if srv.Requests.Load() == 0 {
		t.Errorf("the HTTPS server saw no request: gitmon never tried the password")
	}

	healthy.WriteFile(aPath("payments"), Descriptor("payments", "1.0.1"))
	bump := healthy.Commit("qa", "payments 1.0.1", Alice, Alice)
	r := cRecordOf(d, "healthy", "qa", "payments", bump)
	aWantStatus(t, r, "succeeded", "deploy")
	if r.Version != "1.0.1" || r.PreviousVersion != "1.0.0" {
		t.Errorf("version %q previous %q, want 1.0.1 after 1.0.0", r.Version, r.PreviousVersion)
	}

	// A 300 KiB descriptor beside a normal bump of another service.
	healthy.WriteFile(aPath("huge"), Descriptor("huge", "1.0.0", "params:\n  pad: "+strings.Repeat("a", 300<<10)))
	healthy.WriteFile(aPath("search"), Descriptor("search", "2.0.1"))
	mixed := healthy.Commit("qa", "huge, and search 2.0.1", Alice, Alice)
	r = cRecordOf(d, "healthy", "qa", "huge", mixed)
	aWantStatus(t, r, "rejected", "deploy")
	aWantNoStages(t, r)
	if len(r.Reasons) != 1 || r.Reasons[0].Rule != "descriptor" {
		t.Errorf("huge: want one reason with rule descriptor, got %s", aJSON(r.Reasons))
	} else if msg := r.Reasons[0].Message; !strings.Contains(msg, "services/huge.yaml") || !strings.Contains(msg, "256 KiB") {
		t.Errorf("huge's reason does not name the file and the 256 KiB limit: %q", msg)
	}
	aWantStatus(t, cRecordOf(d, "healthy", "qa", "search", mixed), "succeeded", "deploy")
	aWantDeployed(t, d,
		aDeployLine("payments", "1.0.1", "deploy", bump),
		aDeployLine("search", "2.0.1", "deploy", mixed))

	// /readyz: an error for each bad repository and none for the healthy
	// one. SPEC names /readyz without its status codes; README documents
	// "/readyz turns 200 once every repository has been polled and shows
	// the last error of each failing one", so every repository having been
	// polled (failing or not) makes it 200, and the errors tell what fails.
	code, body, errs := cReadyz(d)
	if code != http.StatusOK || !strings.Contains(body, `"ready":true`) {
		t.Errorf("/readyz answers %d once every repository was polled, want 200 (README): %s", code, body)
	}
	if _, ok := errs["healthy"]; ok || len(errs) != 2 {
		t.Errorf("/readyz errors: want exactly unreachable and locked: %s", body)
	}
	if msg := strings.ToLower(errs["unreachable"]); !strings.Contains(msg, "refused") && !strings.Contains(msg, "connect") {
		t.Errorf("the unreachable repository's error does not say the connection failed: %q", errs["unreachable"])
	}
	if msg := strings.ToLower(errs["locked"]); !strings.Contains(msg, "auth") {
		t.Errorf("the locked repository's error does not say authentication failed: %q", errs["locked"])
	}

	// One poll_error event per outage, not one per poll.
	for _, repo := range []string{"unreachable", "locked"} {
		evs := cEvents(d, "poll_error", repo, "")
		if len(evs) != 1 {
			t.Errorf("%s: %d poll_error events after %v failed polls, want exactly 1: %s",
				repo, len(evs), cMetric(d, "gitmon_poll_errors_total", `repository="`+repo+`"`), aJSON(evs))
		} else if evs[0].Message == "" {
			t.Errorf("%s's poll_error event has no message", repo)
		}
	}
	if evs := cEvents(d, "poll_error", "healthy", ""); len(evs) != 0 {
		t.Errorf("poll_error events for the healthy repository: %s", aJSON(evs))
	}

	for what, text := range map[string]string{
		"/readyz":          body,
		"daemon logs":      d.Logs(),
		"history --events": d.Gitmon("history", "--config", d.Config, "--events", "--json").stdout,
		"history --json":   d.Gitmon("history", "--config", d.Config, "--json").stdout,
	} {
		if strings.Contains(text, cCanary) {
			t.Errorf("the wrong password shows in %s", what)
		}
	}
}

// TestScenarioC_DeletedBranchPausesNeverRemoves: deleting an environment
// branch pauses the environment and removes nothing, even where deletions
// are allowed; when the branch comes back with a new commit on top of the
// old tip, that commit is processed and deploys.
func TestScenarioC_DeletedBranchPausesNeverRemoves(t *testing.T) {
	repo := NewGitRepo(t)
	url := gitserver.Daemon(t, repo)
	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.0.0"))
	repo.WriteFile(aPath("search"), Descriptor("search", "2.0.0"))
	base := repo.Commit("qa", "payments and search", Alice, Alice)
	// Deletions are allowed and have a remove pipeline: only the rule
	// "a deleted branch never removes anything" keeps them from running.
	d := NewDaemon(t, ConfigOptions{URL: url, Insecure: true,
		Envs:   "  - {name: qa, branch: qa, release: [deploy], remove: [deploy]}\n",
		Policy: "  committers: [\"*@example.com\", \"*@platform.example.com\"]\n  changes: {allow_delete: true}\n",
	})
	aStart(t, d, base)

	repo.DeleteBranch("qa")
	ev := cWaitEvent(d, "branch_deleted", "deployments", "qa")
	if ev.Commit != base {
		t.Errorf("branch_deleted event at %.10s, want the last processed commit %.10s", ev.Commit, base)
	}
	if !strings.Contains(ev.Message, "paused") {
		t.Errorf("the branch_deleted event does not say qa is paused: %q", ev.Message)
	}
	cWaitPolls(d, "deployments", 3)
	if recs := d.Records(); len(recs) != 0 {
		t.Errorf("a deleted branch made records:\n%s", aJSON(recs))
	}
	aWantDeployed(t, d)
	if n := len(cEvents(d, "branch_deleted", "", "")); n != 1 {
		t.Errorf("%d branch_deleted events, want 1 (not one per poll)", n)
	}

	// The branch comes back: the old tip plus a new commit, in one push.
	repo.AutoPush = false
	repo.Branch("qa", base)
	repo.AutoPush = true
	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.1.0"))
	back := repo.Commit("qa", "payments 1.1.0", Alice, Alice)
	r := d.RecordFor("qa", "payments", back)
	aWantStatus(t, r, "succeeded", "deploy")
	if r.Version != "1.1.0" || r.PreviousVersion != "1.0.0" {
		t.Errorf("version %q previous %q, want 1.1.0 after 1.0.0", r.Version, r.PreviousVersion)
	}
	aWantCommits(t, r, map[string][]string{back: {"version"}})
	if ev := cWaitEvent(d, "unpaused", "deployments", "qa"); ev.Commit != back {
		t.Errorf("unpaused event at %.10s, want the new tip %.10s", ev.Commit, back)
	}
	aWantDeployed(t, d, aDeployLine("payments", "1.1.0", "deploy", back))
	if recs := d.Records(); len(recs) != 1 {
		t.Errorf("want only payments' record, got:\n%s", aJSON(recs))
	}
}

// TestScenarioC_BranchAppearsWhileWatching: an environment branch created
// after gitmon started is not a silent baseline: every descriptor at the
// first tip gitmon sees is requested, attributed to that tip, and must
// pass policy; the first sight is an event that says so.
func TestScenarioC_BranchAppearsWhileWatching(t *testing.T) {
	repo := NewGitRepo(t)
	url := gitserver.Daemon(t, repo)
	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.0.0", "domain: payments.qa.example.com"))
	repo.WriteFile(aPath("search"), Descriptor("search", "2.0.0"))
	base := repo.Commit("qa", "payments and search", Alice, Alice)
	d := NewDaemon(t, ConfigOptions{URL: url, Insecure: true,
		Envs: "  - {name: qa, branch: qa, release: [deploy]}\n" +
			"  - {name: staging, branch: staging, release: [deploy]}\n" +
			"  - {name: prod, branch: prod, release: [deploy]}\n"})
	d.Script("deploy.sh", "#!/bin/sh\necho \"$GITMON_ENV $GITMON_SERVICE $GITMON_VERSION $GITMON_COMMIT\" >> deployed.log\n")
	aStart(t, d, base) // staging and prod do not exist yet

	// staging appears: qa's tip plus staging's own domain, in one push.
	repo.AutoPush = false
	repo.Branch("staging", "qa")
	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.0.0", "domain: payments.staging.example.com"))
	tip := repo.Commit("staging", "staging domain", Bob, Bob)
	repo.AutoPush = true
	repo.Push("staging")

	for svc, version := range map[string]string{"payments": "1.0.0", "search": "2.0.0"} {
		r := d.RecordFor("staging", svc, tip)
		aWantStatus(t, r, "succeeded", "deploy")
		if r.Version != version || r.PreviousVersion != "" {
			t.Errorf("staging/%s: version %q previous %q, want %s on a first deployment", svc, r.Version, r.PreviousVersion, version)
		}
		if len(r.Commits) != 1 || r.Commits[0].Commit != tip || !slices.Contains(r.Commits[0].Fields, "version") {
			t.Errorf("staging/%s: want every field attributed to the tip %.10s, got %s", svc, tip, aJSON(r.Commits))
		}
	}
	ev := cWaitEvent(d, "baseline", "deployments", "staging")
	if ev.Commit != tip || !strings.Contains(ev.Message, "appeared") || !strings.Contains(ev.Message, "requested") {
		t.Errorf("staging's first-sight event: %s; want it at the tip, saying the branch appeared and every descriptor is requested", aJSON(ev))
	}
	got := d.Deployed()
	slices.Sort(got)
	if want := []string{"staging payments 1.0.0 " + tip, "staging search 2.0.0 " + tip}; !slices.Equal(got, want) {
		t.Errorf("deployed.log:\n got %q\nwant %q", got, want)
	}

	// prod appears, pushed by someone outside the allowlist: its tip must
	// pass policy, so nothing deploys.
	repo.AutoPush = false
	repo.Branch("prod", "qa")
	repo.WriteFile(aPath("search"), Descriptor("search", "2.0.0", "ports: [22]"))
	evil := repo.Commit("prod", "prod", Mallory, Mallory)
	repo.AutoPush = true
	repo.Push("prod")
	for _, svc := range []string{"payments", "search"} {
		r := d.RecordFor("prod", svc, evil)
		aWantStatus(t, r, "rejected", "deploy")
		aWantReason(t, r, "committers", evil, "")
		aWantNoStages(t, r)
	}
	if n := len(d.Deployed()); n != 2 {
		t.Errorf("prod's rejected first sight deployed something: %q", d.Deployed())
	}
}

// TestScenarioC_InitialDeploy: with initial: deploy, the first sight of an
// existing branch requests every descriptor, attributed to the tip; a
// restart does not request them again.
func TestScenarioC_InitialDeploy(t *testing.T) {
	repo := NewGitRepo(t)
	url := gitserver.Daemon(t, repo)
	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.0.0"))
	repo.WriteFile(aPath("search"), Descriptor("search", "2.0.0"))
	tip := repo.Commit("qa", "payments and search", Alice, Alice)
	d := NewDaemon(t, ConfigOptions{URL: url, Insecure: true,
		Envs: "  - {name: qa, branch: qa, release: [deploy], initial: deploy}\n"})
	cValidate(t, d)
	d.Start()

	for svc, version := range map[string]string{"payments": "1.0.0", "search": "2.0.0"} {
		r := d.RecordFor("qa", svc, tip)
		aWantStatus(t, r, "succeeded", "deploy")
		if r.Version != version || r.PreviousVersion != "" {
			t.Errorf("%s: version %q previous %q, want %s on a first deployment", svc, r.Version, r.PreviousVersion, version)
		}
		if len(r.Commits) != 1 || r.Commits[0].Commit != tip {
			t.Errorf("%s: want every field attributed to the tip %.10s, got %s", svc, tip, aJSON(r.Commits))
		}
		aWantStage(t, r, 0, "deploy", "succeeded")
	}
	ev := cWaitEvent(d, "baseline", "deployments", "qa")
	if ev.Commit != tip || !strings.Contains(ev.Message, "initial: deploy") {
		t.Errorf("the first-sight event: %s; want it at the tip, naming initial: deploy", aJSON(ev))
	}
	got := d.Deployed()
	slices.Sort(got)
	want := []string{aDeployLine("payments", "1.0.0", "deploy", tip), aDeployLine("search", "2.0.0", "deploy", tip)}
	if !slices.Equal(got, want) {
		t.Errorf("deployed.log:\n got %q\nwant %q", got, want)
	}

	// Only the first sight: after a restart nothing is requested again.
	d.Stop()
	d.Start()
	cWaitPolls(d, "deployments", 2)
	if recs := d.Records(); len(recs) != 2 {
		t.Errorf("after a restart: want the 2 first-sight records, got:\n%s", aJSON(recs))
	}
	if got := d.Deployed(); len(got) != 2 {
		t.Errorf("after a restart deployed.log has %q", got)
	}
}

// cBlockingDeploy blocks until a file named release exists in the
// daemon's folder (for at most a minute, so a failed test leaves nothing
// behind for long), after writing its PID to stage.pid.
const cBlockingDeploy = `#!/bin/sh
echo "$GITMON_SERVICE $GITMON_VERSION $GITMON_ACTION $GITMON_COMMIT" >> deployed.log
echo $$ > stage.pid
i=0
while [ ! -e release ]; do
  i=$((i+1))
  if [ $i -gt 600 ]; then echo "never released" >&2; exit 9; fi
  sleep 0.1
done
echo "released $GITMON_VERSION"
`

// cBlockedStage starts d with cBlockingDeploy, pushes a bump of api and
// waits until its deploy stage runs; it returns the commit and the
// script's PID.
func cBlockedStage(t *testing.T, d *Daemon, repo *gitserver.Repo, base string) (string, int) {
	t.Helper()
	d.Script("deploy.sh", cBlockingDeploy)
	aStart(t, d, base)
	repo.WriteFile(aPath("api"), Descriptor("api", "1.0.1"))
	c := repo.Commit("qa", "api 1.0.1", Alice, Alice)
	var pid int
	d.Eventually(30*time.Second, "the api deploy to block", func() bool {
		pid = bReadPID(filepath.Join(d.Dir, "stage.pid"))
		return pid != 0 && aRecord(d, "api", c).Status == "running"
	})
	t.Cleanup(func() {
		if !bGone(pid) { // whatever happened, leave no script behind
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return c, pid
}

// TestScenarioC_SIGTERMWaitsForRunningStage: SIGTERM lets a running
// stage finish within shutdown_grace; serve then exits 0 and the record
// is succeeded.
func TestScenarioC_SIGTERMWaitsForRunningStage(t *testing.T) {
	repo := NewGitRepo(t)
	url := gitserver.Daemon(t, repo)
	repo.WriteFile(aPath("api"), Descriptor("api", "1.0.0"))
	base := repo.Commit("qa", "api", Alice, Alice)
	d := NewDaemon(t, ConfigOptions{URL: url, Insecure: true}) // shutdown_grace: 10s
	c, pid := cBlockedStage(t, d, repo, base)

	cSIGTERM(t, d)
	d.Eventually(10*time.Second, "gitmon to start shutting down", func() bool {
		return strings.Contains(d.Logs(), "shutting down")
	})
	select {
	case <-d.done:
		t.Fatalf("gitmon exited while a stage ran, within its 10s grace: %v\n%s", d.exitErr, d.Logs())
	default:
	}
	if bGone(pid) {
		t.Fatalf("the running stage was killed by SIGTERM, within the grace")
	}
	if err := os.WriteFile(filepath.Join(d.Dir, "release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cWaitExit(t, d, 20*time.Second); err != nil {
		t.Fatalf("serve exited with %v after SIGTERM, want 0\n%s", err, d.Logs())
	}

	r := d.RecordFor("qa", "api", c)
	aWantStatus(t, r, "succeeded", "deploy")
	aWantStage(t, r, 0, "deploy", "succeeded")
	if out := r.Stages[0].Output; !strings.Contains(out, "released 1.0.1") {
		t.Errorf("stage output %q, want the script's last line", out)
	}
	aWantDeployed(t, d, aDeployLine("api", "1.0.1", "deploy", c))
}

// TestScenarioC_SIGTERMInterruptsAfterGrace: a stage still running when
// shutdown_grace ends is cancelled: serve exits 0 within a few seconds,
// the stage is interrupted, the record failed, and the script is gone.
func TestScenarioC_SIGTERMInterruptsAfterGrace(t *testing.T) {
	repo := NewGitRepo(t)
	url := gitserver.Daemon(t, repo)
	repo.WriteFile(aPath("api"), Descriptor("api", "1.0.0"))
	base := repo.Commit("qa", "api", Alice, Alice)
	d := NewDaemon(t, ConfigOptions{URL: url, Insecure: true})
	cEditConfig(t, d, "shutdown_grace: 10s", "shutdown_grace: 1s")
	c, pid := cBlockedStage(t, d, repo, base)

	sent := cSIGTERM(t, d)
	err := cWaitExit(t, d, 20*time.Second)
	took := time.Since(sent)
	if err != nil {
		t.Errorf("serve exited with %v after SIGTERM, want 0\n%s", err, d.Logs())
	}
	if took < time.Second || took > 8*time.Second {
		t.Errorf("serve exited %s after SIGTERM; want after the 1s grace, within a few seconds", took.Round(time.Millisecond))
	}
	if !bGone(pid) {
		t.Errorf("the blocked deploy script (pid %d) outlived gitmon", pid)
	}

	r := d.RecordFor("qa", "api", c)
	aWantStatus(t, r, "failed", "deploy")
	aWantStage(t, r, 0, "deploy", "interrupted")
	if msg := r.Stages[0].Message; !strings.Contains(msg, "interrupted") {
		t.Errorf("the interrupted stage's message %q does not say so", msg)
	}
	if strings.Contains(r.Stages[0].Output, "released") {
		t.Errorf("the stage was released: %q", r.Stages[0].Output)
	}
}

// TestScenarioC_MetricsAndHealth: after a deploy, /metrics counts polls,
// fetches, the detection latency, the records by status and the stage
// durations, and /healthz answers 200.
func TestScenarioC_MetricsAndHealth(t *testing.T) {
	repo := NewGitRepo(t)
	url := gitserver.Daemon(t, repo)
	repo.WriteFile(aPath("api"), Descriptor("api", "1.0.0"))
	base := repo.Commit("qa", "api", Alice, Alice)
	d := NewDaemon(t, ConfigOptions{URL: url, Insecure: true})
	aStart(t, d, base)

	repo.WriteFile(aPath("api"), Descriptor("api", "1.0.1"))
	c := repo.Commit("qa", "api 1.0.1", Alice, Alice)
	aWantStatus(t, d.RecordFor("qa", "api", c), "succeeded", "deploy")

	if code, body := cGet(d, "/healthz"); code != 200 {
		t.Errorf("/healthz: %d %q, want 200", code, body)
	}
	code, body := cGet(d, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, m := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"gitmon_polls_total", []string{`repository="deployments"`}, 2},
		{"gitmon_fetches_total", []string{`repository="deployments"`}, 2}, // the baseline's and the bump's
		{"gitmon_detection_latency_seconds_count", nil, 1},
		{"gitmon_records_total", []string{`environment="qa"`, `status="succeeded"`}, 1},
		{"gitmon_stage_duration_seconds_count", []string{`pipeline="deploy"`, `status="succeeded"`}, 1},
	} {
		if v := cMetric(d, m.name, m.labels...); v < m.min {
			t.Errorf("%s%v = %v, want at least %v", m.name, m.labels, v, m.min)
		}
	}
	if !strings.Contains(body, "gitmon_stage_duration_seconds_bucket{") {
		t.Errorf("gitmon_stage_duration_seconds is not a histogram on /metrics")
	}
	if v := cMetric(d, "gitmon_records_total", `environment="qa"`, `status="failed"`); v > 0 {
		t.Errorf("gitmon_records_total counts %v failed records; none failed", v)
	}
}

// TestScenarioC_FirstSightAfterFailedFetchIsBaseline: the branch exists
// when gitmon starts, but gitmon's first fetch of it fails (the server
// lists refs, then answers 500 to the pack request). The branch did not
// appear while gitmon watched: once the fetch works, its first sight must
// still be a baseline that runs nothing (SPEC §5 Baseline).
func TestScenarioC_FirstSightAfterFailedFetchIsBaseline(t *testing.T) {
	repo := NewGitRepo(t)
	handler, err := gitserver.NewHTTPHandler(repo.Bare, "", "", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var failPacks atomic.Bool
	failPacks.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Ref listing is a GET of info/refs; a fetch POSTs git-upload-pack.
		if r.Method == http.MethodPost && failPacks.Load() {
			http.Error(w, "pack service unavailable", http.StatusInternalServerError)
			return
		}
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	repo.WriteFile(aPath("payments"), Descriptor("payments", "1.0.0"))
	repo.WriteFile(aPath("search"), Descriptor("search", "2.0.0"))
	base := repo.Commit("qa", "payments and search", Alice, Alice)

	d := NewDaemon(t, ConfigOptions{URL: srv.URL + "/deployments.git", Insecure: true})
	cValidate(t, d)
	cStartUnready(t, d)
	d.Eventually(30*time.Second, "a failed fetch of qa", func() bool {
		return cMetric(d, "gitmon_poll_errors_total") >= 1
	})
	failPacks.Store(false)

	ev := cWaitEvent(d, "baseline", "deployments", "qa")
	cWaitPolls(d, "deployments", 2)
	if ev.Commit != base || strings.Contains(ev.Message, "requested") {
		t.Errorf("first sight of qa, which existed when gitmon started: %s; want a baseline at %.10s that runs nothing", aJSON(ev), base)
	}
	if recs := d.Records(); len(recs) != 0 {
		t.Errorf("the first sight of an existing branch made records, because an earlier fetch of it failed:\n%s", cSummary(recs))
	}
	aWantDeployed(t, d)
}
