package test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/internal/store"
	"github.com/gitmon-dev/gitmon/test/gitserver"
)

// Scenarios B: end-to-end runs of the real `gitmon serve` against real Git
// servers (git daemon, smart HTTP, sshd), asserting on `gitmon history
// --json` and on what the pipelines' scripts write.

// bNewDaemon is NewDaemon (kept as the file's own entry point).
func bNewDaemon(t *testing.T, o ConfigOptions) *Daemon {
	t.Helper()
	return NewDaemon(t, o)
}

// bGitDaemon is a fresh repository served by `git daemon`, and a daemon
// config for it with opts' other fields.
func bGitDaemon(t *testing.T, o ConfigOptions) (*gitserver.Repo, *Daemon) {
	t.Helper()
	repo := NewGitRepo(t)
	o.URL, o.Insecure = gitserver.Daemon(t, repo), true
	return repo, bNewDaemon(t, o)
}

// bRecords returns the records of env/service, newest first.
func bRecords(d *Daemon, env, service string) []Record {
	d.t.Helper()
	return d.Records("--env", env, "--service", service)
}

// bStage returns the stage called name of r, failing the test if absent.
func bStage(t *testing.T, r Record, name string) (status, message, output string) {
	t.Helper()
	for _, s := range r.Stages {
		if s.Name == name {
			return s.Status, s.Message, s.Output
		}
	}
	t.Fatalf("record %s has no stage %q: %+v", r.ID, name, r.Stages)
	return
}

// bReadPID reads a PID a script wrote; 0 while the file is missing or
// not yet complete.
func bReadPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	s := strings.TrimSpace(string(b))
	if !strings.HasSuffix(string(b), "\n") {
		return 0 // still being written
	}
	pid, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return pid
}

// bGone reports whether process pid has ended: kill -0 fails, or it is a
// zombie waiting for a parent to reap it (an orphan's parent here is PID
// 1, which need not reap), which runs nothing any more.
func bGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b)[i+1:])
	return len(f) > 0 && (f[0] == "Z" || f[0] == "X")
}

// bLinesFor counts the lines of deployed.log that mention commit.
func bLinesFor(d *Daemon, commit string) int {
	n := 0
	for _, l := range d.Deployed() {
		if strings.HasSuffix(l, " "+commit) {
			n++
		}
	}
	return n
}

// bPlanEntry is the part of a `gitmon plan --json` entry the tests read.
type bPlanEntry struct {
	Service   string `json:"service"`
	Decision  string `json:"decision"`
	LastGood  string `json:"last_good"`
	Requested string `json:"requested"`
	Commits   []struct {
		Commit    string   `json:"commit"`
		Committer string   `json:"committer"`
		Fields    []string `json:"fields"`
	} `json:"commits"`
	Reasons []struct {
		Rule    string `json:"rule"`
		Message string `json:"message"`
		Commit  string `json:"commit"`
	} `json:"reasons"`
}

// bPlan runs `gitmon plan --json` with d's config and returns its exit
// code and entries.
func bPlan(t *testing.T, d *Daemon, args ...string) (int, []bPlanEntry) {
	t.Helper()
	r := d.Gitmon(append([]string{"plan", "--config", d.Config, "--json"}, args...)...)
	if r.code != 0 && r.code != 3 && r.code != 4 {
		t.Fatalf("gitmon plan %v: %v", args, r)
	}
	var entries []bPlanEntry
	if err := json.Unmarshal([]byte(r.stdout), &entries); err != nil {
		t.Fatalf("gitmon plan %v: not a JSON array: %v\n%v", args, err, r)
	}
	return r.code, entries
}

// bHandleSaved reports whether stage 0 of the running record of
// env/service at commit has its runner handle (the exec process group)
// saved in the state. The CLI does not show handles, so this reads the
// state folder through the store, read-only, as `gitmon history` does.
func bHandleSaved(t *testing.T, d *Daemon, env, service, commit string) bool {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(d.Dir, "state"), store.Options{ReadOnly: true})
	if err != nil {
		return false
	}
	defer st.Close()
	recs, err := st.Records(context.Background(), store.Filter{Environment: env, Service: service})
	if err != nil {
		return false
	}
	for _, r := range recs {
		if r.Commit == commit && len(r.Stages) > 0 && len(r.Stages[0].Handle) > 0 {
			return true
		}
	}
	return false
}

// bMetric returns the sum of the samples of a metric on /metrics.
func bMetric(d *Daemon, name string) float64 {
	resp, err := http.Get("http://" + d.Addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var sum float64
	for _, l := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(l, name+"{") && !strings.HasPrefix(l, name+" ") {
			continue
		}
		f := strings.Fields(l)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// bReadyErrors returns the errors /readyz reports.
func bReadyErrors(d *Daemon) map[string]string {
	resp, err := http.Get("http://" + d.Addr + "/readyz")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var body struct {
		Errors map[string]string `json:"errors"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return body.Errors
}

// 1. Promotion: a real three-way merge of qa into staging carries the
// version and keeps staging's own domain.
func TestScenarioB_PromotionMergeKeepsDomains(t *testing.T) {
	repo, d := bGitDaemon(t, ConfigOptions{
		Envs:      "  - {name: qa, branch: qa, release: [deploy]}\n  - {name: staging, branch: staging, release: [deploy]}\n",
		Pipelines: "  deploy: {runner: exec, command: [./deploy.sh], timeout: 30s}\n",
	})
	d.Script("deploy.sh", `#!/bin/sh
echo "$GITMON_ENV $GITMON_SERVICE $GITMON_VERSION $GITMON_COMMIT" >> deployed.log
cp "$GITMON_DESCRIPTOR" "seen-$GITMON_ENV-$GITMON_VERSION.json"
`)
	// Version and domain are lines apart, so a three-way merge takes one
	// branch's version and keeps the other's domain without a conflict.
	payments := func(version, domain string) string {
		return Descriptor("payments", version, "maintainer: alice@example.com", "port: 8080", "domain: "+domain)
	}
	const qaDomain, stDomain = "payments.qa.example.com", "payments.staging.example.com"
	repo.WriteFile("services/payments.yaml", payments("1.0.0", qaDomain))
	repo.Commit("qa", "add payments", Alice, Alice)
	repo.Branch("staging", "qa")
	repo.WriteFile("services/payments.yaml", payments("1.0.0", stDomain))
	repo.Commit("staging", "staging has its own domain", Bob, Bob)
	d.Start()

	repo.WriteFile("services/payments.yaml", payments("1.0.1", qaDomain))
	bump := repo.Commit("qa", "payments 1.0.1", Alice, Alice)
	if r := d.RecordFor("qa", "payments", bump); r.Status != "succeeded" || r.Version != "1.0.1" {
		t.Fatalf("qa record: %s %s, want succeeded 1.0.1: %+v", r.Status, r.Version, r)
	}

	merge := repo.Merge("staging", "qa", "Merge qa into staging", Bob)
	r := d.RecordFor("staging", "payments", merge)
	if r.Status != "succeeded" || r.Version != "1.0.1" || r.PreviousVersion != "1.0.0" {
		t.Fatalf("staging record: %s %s → %s, want succeeded 1.0.0 → 1.0.1: %+v", r.Status, r.PreviousVersion, r.Version, r)
	}
	if r.Committer != "bob@platform.example.com" {
		t.Errorf("the merge is judged by its own identity: committer %q", r.Committer)
	}
	// Only the version changed in staging, and along staging's
	// first-parent history it was the merge that changed it.
	if len(r.Commits) != 1 || r.Commits[0].Commit != merge || strings.Join(r.Commits[0].Fields, ",") != "version" {
		t.Errorf("staging record commits: want only the merge %.10s with [version], got %+v", merge, r.Commits)
	}
	if n := len(bRecords(d, "staging", "payments")); n != 1 {
		t.Errorf("staging has %d payments records, want 1 (the merge)", n)
	}

	// What the staging deploy saw, and what the staging branch holds.
	var seen struct{ Version, Domain string }
	b, err := os.ReadFile(filepath.Join(d.Dir, "seen-staging-1.0.1.json"))
	if err != nil {
		t.Fatalf("the staging deploy did not run with 1.0.1: %v", err)
	}
	if err := json.Unmarshal(b, &seen); err != nil {
		t.Fatalf("descriptor JSON: %v\n%s", err, b)
	}
	if seen.Version != "1.0.1" || seen.Domain != stDomain {
		t.Errorf("the staging deploy saw version %q domain %q, want 1.0.1 and %s", seen.Version, seen.Domain, stDomain)
	}
	file := repo.Git("show", "staging:services/payments.yaml")
	if !strings.Contains(file, "domain: "+stDomain) || !strings.Contains(file, "version: 1.0.1") {
		t.Errorf("staging's file after the merge:\n%s", file)
	}
	want := []string{"qa payments 1.0.1 " + bump, "staging payments 1.0.1 " + merge}
	if got := d.Deployed(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("deployed.log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// 2. Fifty commits pushed at once: the last version wins, nothing starts
// out of order, every record ends, and only the last is last good.
func TestScenarioB_BurstOfFiftyCommits(t *testing.T) {
	repo, d := bGitDaemon(t, ConfigOptions{})
	d.Script("deploy.sh", "#!/bin/sh\necho \"$GITMON_SERVICE $GITMON_VERSION $GITMON_PREVIOUS_VERSION $GITMON_COMMIT\" >> deployed.log\n")
	repo.WriteFile("services/api.yaml", Descriptor("api", "1.0.0"))
	repo.Commit("qa", "add api", Alice, Alice)
	d.Start()

	const n = 50
	repo.AutoPush = false
	shas := make([]string, n)
	order := map[string]int{}
	for i := 1; i <= n; i++ {
		repo.WriteFile("services/api.yaml", Descriptor("api", fmt.Sprintf("1.0.%d", i)))
		shas[i-1] = repo.Commit("qa", fmt.Sprintf("api 1.0.%d", i), Alice, Alice)
		order[shas[i-1]] = i
	}
	repo.Push("qa")
	repo.AutoPush = true

	last := d.RecordFor("qa", "api", shas[n-1])
	if last.Status != "succeeded" || last.Version != "1.0.50" {
		t.Fatalf("the last commit's record: %s %s, want succeeded 1.0.50", last.Status, last.Version)
	}
	var recs []Record
	d.Eventually(60*time.Second, "every burst record ended", func() bool {
		recs = bRecords(d, "qa", "api")
		for _, r := range recs {
			if r.FinishedAt == nil {
				return false
			}
		}
		return len(recs) == n
	})
	if len(recs) != n {
		t.Fatalf("%d records, want one per commit (%d)", len(recs), n)
	}
	succeeded := 0
	var lastStart time.Time
	lastSeq := 0
	for i := len(recs) - 1; i >= 0; i-- { // oldest first
		r := recs[i]
		seq, ok := order[r.Commit]
		if !ok {
			t.Errorf("record of an unknown commit %.10s", r.Commit)
			continue
		}
		switch r.Status {
		case "succeeded":
			succeeded++
			if seq <= lastSeq {
				t.Errorf("record of commit #%d listed after #%d", seq, lastSeq)
			}
			st := r.Stages[0].StartedAt
			if st == nil || st.Before(lastStart) {
				t.Errorf("commit #%d's deploy started at %v, before an earlier commit's at %v", seq, st, lastStart)
			} else {
				lastStart = *st
			}
			lastSeq = seq
		case "superseded":
			if len(r.Stages) != 0 && r.Stages[0].StartedAt != nil {
				t.Errorf("superseded record of commit #%d has a started stage: %+v", seq, r.Stages)
			}
		default:
			t.Errorf("record of commit #%d ended %s, want succeeded or superseded", seq, r.Status)
		}
	}
	t.Logf("%d of %d burst records ran; the rest were superseded", succeeded, n)
	if recs[0].Commit != shas[n-1] {
		t.Errorf("the newest record is for %.10s, want the last commit", recs[0].Commit)
	}

	// deployed.log: versions strictly increasing, ending at 1.0.50, one
	// line per succeeded record; each deploy's GITMON_PREVIOUS_VERSION is
	// the last attempted one (SPEC §4): the deploy before it.
	lines := d.Deployed()
	prev := 0
	for _, l := range lines {
		f := strings.Fields(l) // service version previous commit
		if len(f) != 4 || !strings.HasPrefix(f[1], "1.0.") {
			t.Fatalf("deployed.log line %q", l)
		}
		v, _ := strconv.Atoi(strings.TrimPrefix(f[1], "1.0."))
		if v <= prev {
			t.Errorf("deployed.log is not strictly increasing: %s after 1.0.%d\n%s", f[1], prev, strings.Join(lines, "\n"))
		}
		if want := fmt.Sprintf("1.0.%d", prev); f[2] != want {
			t.Errorf("the deploy of %s got GITMON_PREVIOUS_VERSION %s; the last attempted version was %s", f[1], f[2], want)
		}
		prev = v
	}
	if prev != n || len(lines) != succeeded {
		t.Errorf("deployed.log ends at 1.0.%d with %d lines; want 1.0.%d and %d lines (one per succeeded record)", prev, len(lines), n, succeeded)
	}

	// Last good is 1.0.50: plan (beside serve, from the state) of one more
	// bump shows it as what it starts from.
	repo.Branch("next", "qa")
	repo.WriteFile("services/api.yaml", Descriptor("api", "1.0.51"))
	repo.Commit("next", "api 1.0.51", Alice, Alice)
	code, entries := bPlan(t, d, "--env", "qa", "--ref", "next")
	if code != 3 || len(entries) != 1 || entries[0].LastGood != "1.0.50" || entries[0].Requested != "1.0.51" {
		t.Errorf("plan of 1.0.51: exit %d %+v; want exit 3, last good 1.0.50 → 1.0.51", code, entries)
	}
}

// 3a. A failing stage fails the record; the stages after it are skipped.
func TestScenarioB_FailingStageSkipsTheRest(t *testing.T) {
	repo, d := bGitDaemon(t, ConfigOptions{
		Envs: "  - {name: qa, branch: qa, release: [deploy, verify, announce]}\n",
		Pipelines: "  deploy: {runner: exec, command: [./deploy.sh], timeout: 30s}\n" +
			"  verify: {runner: exec, command: [./verify.sh], timeout: 30s}\n" +
			"  announce: {runner: exec, command: [./announce.sh], timeout: 30s}\n",
	})
	d.Script("deploy.sh", DeployScript)
	d.Script("verify.sh", "#!/bin/sh\necho \"verifying $GITMON_VERSION\"\necho 'verification failed' >&2\nexit 1\n")
	d.Script("announce.sh", "#!/bin/sh\ntouch announced\n")
	repo.WriteFile("services/api.yaml", Descriptor("api", "1.0.0"))
	repo.Commit("qa", "add api", Alice, Alice)
	d.Start()

	repo.WriteFile("services/api.yaml", Descriptor("api", "1.1.0"))
	c := repo.Commit("qa", "api 1.1.0", Alice, Alice)
	r := d.RecordFor("qa", "api", c)
	if r.Status != "failed" {
		t.Fatalf("record %s, want failed: %+v", r.Status, r)
	}
	if len(r.Stages) != 3 {
		t.Fatalf("stages: %+v", r.Stages)
	}
	if st, _, _ := bStage(t, r, "deploy"); st != "succeeded" {
		t.Errorf("deploy %s, want succeeded", st)
	}
	st, msg, out := bStage(t, r, "verify")
	if st != "failed" || !strings.Contains(msg, "exit status 1") || !strings.Contains(out, "verification failed") {
		t.Errorf("verify: %s %q output %q; want failed, exit status 1, its stderr kept", st, msg, out)
	}
	if st, _, _ := bStage(t, r, "announce"); st != "skipped" {
		t.Errorf("announce %s, want skipped (not reached)", st)
	}
	if r.Stages[2].StartedAt != nil {
		t.Errorf("the skipped stage has a start time")
	}
	if _, err := os.Stat(filepath.Join(d.Dir, "announced")); err == nil {
		t.Errorf("the stage after the failing one ran")
	}
	if got := bLinesFor(d, c); got != 1 {
		t.Errorf("deploy ran %d times, want 1", got)
	}
}

// 3b. A stage past its timeout is killed with its process group and fails.
func TestScenarioB_StageTimeoutKillsTheGroup(t *testing.T) {
	repo, d := bGitDaemon(t, ConfigOptions{
		Pipelines: "  deploy: {runner: exec, command: [./slow.sh], timeout: 1s}\n",
	})
	// A background child and the leader itself sleep; both are in the
	// stage's process group.
	d.Script("slow.sh", "#!/bin/sh\nsleep 60 &\necho $! > child.pid\necho $$ > slow.pid\nexec sleep 60\n")
	repo.WriteFile("services/api.yaml", Descriptor("api", "1.0.0"))
	repo.Commit("qa", "add api", Alice, Alice)
	d.Start()

	repo.WriteFile("services/api.yaml", Descriptor("api", "1.0.1"))
	c := repo.Commit("qa", "api 1.0.1", Alice, Alice)
	r := d.RecordFor("qa", "api", c)
	if r.Status != "failed" {
		t.Fatalf("record %s, want failed: %+v", r.Status, r)
	}
	s := r.Stages[0]
	if s.Status != "failed" || !strings.Contains(s.Message, "timed out") {
		t.Errorf("stage %s %q, want failed with a message saying it timed out", s.Status, s.Message)
	}
	if s.StartedAt == nil || s.FinishedAt == nil {
		t.Fatalf("stage times missing: %+v", s)
	}
	if took := s.FinishedAt.Sub(*s.StartedAt); took < time.Second || took > 4*time.Second {
		t.Errorf("the 1s stage took %s to end", took)
	}
	leader, child := bReadPID(filepath.Join(d.Dir, "slow.pid")), bReadPID(filepath.Join(d.Dir, "child.pid"))
	if leader == 0 || child == 0 {
		t.Fatalf("slow.sh did not record its PIDs (%d, %d)", leader, child)
	}
	d.Eventually(10*time.Second, "the timed-out stage's processes to end", func() bool {
		return bGone(leader) && bGone(child)
	})
}

// 4. The http healthcheck retries until healthy, and fails after exactly
// `retries` attempts of an endpoint that never is.
func TestScenarioB_HealthcheckRetries(t *testing.T) {
	var webHits, downHits atomic.Int64
	var mu sync.Mutex
	var paths []string
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		if webHits.Add(1) <= 3 {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer web.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		downHits.Add(1)
		http.Error(w, "never", http.StatusServiceUnavailable)
	}))
	defer down.Close()
	port := func(s *httptest.Server) string { return s.URL[strings.LastIndexByte(s.URL, ':')+1:] }

	repo, d := bGitDaemon(t, ConfigOptions{
		Envs: "  - {name: qa, branch: qa, release: [deploy, healthcheck]}\n",
		Pipelines: "  deploy: {runner: exec, command: [./deploy.sh], timeout: 30s}\n" +
			"  healthcheck: {runner: http, timeout: 30s}\n",
	})
	d.Script("deploy.sh", DeployScript)
	desc := func(name, version, port string, retries int) string {
		return Descriptor(name, version, "domain: 127.0.0.1", "port: "+port,
			fmt.Sprintf("healthcheck: {scheme: http, endpoints: [/healthz], retries: %d, interval: 50ms, timeout: 1s}", retries))
	}
	repo.WriteFile("services/web.yaml", desc("web", "1.0.0", port(web), 5))
	repo.WriteFile("services/down.yaml", desc("down", "1.0.0", port(down), 2))
	repo.Commit("qa", "add web and down", Alice, Alice)
	d.Start()

	repo.WriteFile("services/web.yaml", desc("web", "1.0.1", port(web), 5))
	repo.WriteFile("services/down.yaml", desc("down", "1.0.1", port(down), 2))
	c := repo.Commit("qa", "web and down 1.0.1", Alice, Alice)

	r := d.RecordFor("qa", "web", c)
	if r.Status != "succeeded" {
		t.Errorf("web: %s, want succeeded: %+v", r.Status, r.Stages)
	}
	if st, _, _ := bStage(t, r, "healthcheck"); st != "succeeded" {
		t.Errorf("web healthcheck %s", st)
	}
	if n := webHits.Load(); n != 4 {
		t.Errorf("web saw %d requests, want 4 (3 × 503, then 200)", n)
	}
	mu.Lock()
	for _, p := range paths {
		if p != "/healthz" {
			t.Errorf("web was asked for %q, want /healthz", p)
		}
	}
	mu.Unlock()

	r = d.RecordFor("qa", "down", c)
	if r.Status != "failed" {
		t.Errorf("down: %s, want failed: %+v", r.Status, r.Stages)
	}
	st, msg, _ := bStage(t, r, "healthcheck")
	if st != "failed" {
		t.Errorf("down healthcheck %s %q, want failed", st, msg)
	}
	if n := downHits.Load(); n != 2 {
		t.Errorf("down saw %d requests, want exactly retries = 2", n)
	}
}

// 5. gitmon is SIGKILLed while a stage runs; a commit arrives while it is
// down; on restart the stage is interrupted and its group killed, the new
// commit deploys, and nothing ran twice.
func TestScenarioB_KillMidStageThenRestart(t *testing.T) {
	repo, d := bGitDaemon(t, ConfigOptions{})
	// Each version blocks until its own release file exists, so the one
	// in flight at the crash can only end by being killed.
	d.Script("deploy.sh", `#!/bin/sh
echo "$GITMON_SERVICE $GITMON_VERSION $GITMON_ACTION $GITMON_COMMIT" >> deployed.log
echo $$ > "pid-$GITMON_VERSION"
while [ ! -f "release-$GITMON_VERSION" ]; do sleep 0.1; done
echo "released $GITMON_VERSION"
`)
	repo.WriteFile("services/api.yaml", Descriptor("api", "1.0.0"))
	repo.Commit("qa", "add api", Alice, Alice)
	d.Start()

	repo.WriteFile("services/api.yaml", Descriptor("api", "1.0.1"))
	first := repo.Commit("qa", "api 1.0.1", Alice, Alice)
	pidFile := filepath.Join(d.Dir, "pid-1.0.1")
	var pid int
	d.Eventually(60*time.Second, "the 1.0.1 deploy to block with its process group recorded", func() bool {
		pid = bReadPID(pidFile)
		return pid != 0 && bHandleSaved(t, d, "qa", "api", first)
	})
	d.Kill()
	t.Cleanup(func() {
		// Whatever the outcome, do not leave the blocked script (started
		// by this test's gitmon) behind.
		if !bGone(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if bGone(pid) {
		t.Fatalf("the deploy script (pid %d) died with gitmon; it is in its own process group and should outlive it", pid)
	}

	repo.WriteFile("services/api.yaml", Descriptor("api", "1.0.2"))
	second := repo.Commit("qa", "api 1.0.2 while gitmon is down", Alice, Alice)
	if err := os.WriteFile(filepath.Join(d.Dir, "release-1.0.2"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	d.Start()

	r1 := d.RecordFor("qa", "api", first)
	if r1.Status != "failed" {
		t.Errorf("the interrupted record ended %s, want failed", r1.Status)
	}
	if st, msg, _ := bStage(t, r1, "deploy"); st != "interrupted" {
		t.Errorf("the stage in flight ended %s %q, want interrupted", st, msg)
	}
	d.Eventually(10*time.Second, fmt.Sprintf("the blocked deploy script (pid %d) to be killed", pid), func() bool { return bGone(pid) })

	r2 := d.RecordFor("qa", "api", second)
	if r2.Status != "succeeded" || r2.Version != "1.0.2" || r2.PreviousVersion != "1.0.1" {
		t.Errorf("the commit pushed while gitmon was down: %s %s → %s, want succeeded 1.0.1 (last attempted) → 1.0.2: %+v",
			r2.Status, r2.PreviousVersion, r2.Version, r2)
	}
	if n1, n2 := bLinesFor(d, first), bLinesFor(d, second); n1 != 1 || n2 != 1 {
		t.Errorf("deploys per commit: 1.0.1 ran %d times, 1.0.2 %d times; want once each\n%s", n1, n2, strings.Join(d.Deployed(), "\n"))
	}
	if n := len(bRecords(d, "qa", "api")); n != 2 {
		t.Errorf("%d records, want 2", n)
	}
}

// 6. The Git server goes down and comes back: the commit pushed meanwhile
// is not lost.
func TestScenarioB_GitServerDownThenBack(t *testing.T) {
	repo := NewGitRepo(t)
	srv := gitserver.StartHTTP(t, repo, "", "")
	d := bNewDaemon(t, ConfigOptions{URL: srv.URL, Insecure: true})
	repo.WriteFile("services/api.yaml", Descriptor("api", "1.0.0"))
	repo.WriteFile("services/web.yaml", Descriptor("web", "2.0.0"))
	repo.Commit("qa", "add api and web", Alice, Alice)
	d.Start()

	srv.Stop()
	// The work clone pushes to the bare repository itself, not through
	// the server, so these land while the server is down.
	repo.WriteFile("services/api.yaml", Descriptor("api", "1.0.1"))
	c1 := repo.Commit("qa", "api 1.0.1", Alice, Alice)
	repo.WriteFile("services/web.yaml", Descriptor("web", "2.0.1"))
	c2 := repo.Commit("qa", "web 2.0.1", Bob, Bob)
	d.Eventually(30*time.Second, "a poll error while the Git server is down", func() bool {
		return len(bReadyErrors(d)) > 0 && bMetric(d, "gitmon_poll_errors_total") > 0
	})
	if recs := d.Records(); len(recs) != 0 {
		t.Fatalf("records while the server was down: %+v", recs)
	}
	srv.Start()

	if r := d.RecordFor("qa", "api", c1); r.Status != "succeeded" || r.Version != "1.0.1" {
		t.Errorf("api: %s %s, want succeeded 1.0.1", r.Status, r.Version)
	}
	if r := d.RecordFor("qa", "web", c2); r.Status != "succeeded" || r.Version != "2.0.1" {
		t.Errorf("web: %s %s, want succeeded 2.0.1", r.Status, r.Version)
	}
	if n1, n2 := bLinesFor(d, c1), bLinesFor(d, c2); n1 != 1 || n2 != 1 {
		t.Errorf("deploys: %d of %.10s, %d of %.10s; want one each", n1, c1, n2, c2)
	}
	d.Eventually(30*time.Second, "/readyz to clear the error", func() bool { return len(bReadyErrors(d)) == 0 })

	// SPEC §0: a poll error is one of the events (history --events).
	t.Run("poll_error event", func(t *testing.T) {
		var kinds []string
		for _, e := range d.Events() {
			kinds = append(kinds, e.Kind)
			if e.Kind == "poll_error" {
				return
			}
		}
		t.Errorf("the outage left no poll_error event; events: %v", kinds)
	})
}

// 7. A descriptor that does not parse is rejected on its own; the good one
// in the same commit deploys.
func TestScenarioB_MalformedDescriptorBesideAGoodOne(t *testing.T) {
	repo, d := bGitDaemon(t, ConfigOptions{})
	repo.WriteFile("services/good.yaml", Descriptor("good", "1.0.0"))
	repo.WriteFile("services/bad.yaml", Descriptor("bad", "1.0.0", "ports: [8080]"))
	repo.Commit("qa", "add good and bad", Alice, Alice)
	d.Start()

	repo.WriteFile("services/good.yaml", Descriptor("good", "1.0.1"))
	repo.WriteFile("services/bad.yaml", Descriptor("bad", "1.0.1", "ports: [8080"))
	c := repo.Commit("qa", "good 1.0.1, bad broken", Alice, Alice)

	if r := d.RecordFor("qa", "good", c); r.Status != "succeeded" || r.Version != "1.0.1" {
		t.Errorf("good: %s %s, want succeeded 1.0.1: %+v", r.Status, r.Version, r)
	}
	r := d.RecordFor("qa", "bad", c)
	if r.Status != "rejected" || len(r.Reasons) != 1 || r.Reasons[0].Rule != "descriptor" {
		t.Fatalf("bad: %s %v, want rejected with rule descriptor: %+v", r.Status, r.Rules(), r.Reasons)
	}
	// The unclosed "[" is on line 3 and the input ends on line 4: the
	// error must point at one of them, not at "version:" on line 2.
	msg := r.Reasons[0].Message
	if m := regexp.MustCompile(`services/bad\.yaml:(\d+)`).FindStringSubmatch(msg); m == nil {
		t.Errorf("the descriptor error does not name services/bad.yaml and a line: %q", msg)
	} else if m[1] != "3" && m[1] != "4" {
		t.Errorf("the descriptor error names line %s, want 3 (the unclosed flow sequence) or 4 (where it ends): %q", m[1], msg)
	}
	if len(r.Stages) != 0 && r.Stages[0].StartedAt != nil {
		t.Errorf("the rejected record ran stages: %+v", r.Stages)
	}
	if got := d.Deployed(); len(got) != 1 || !strings.HasPrefix(got[0], "good 1.0.1 ") {
		t.Errorf("deployed.log: %q, want only good 1.0.1", got)
	}
}

// 8. The ssh:// transport with a key file and a known_hosts file.
func TestScenarioB_DeployOverSSH(t *testing.T) {
	repo := NewGitRepo(t)
	url, key, knownHosts := gitserver.SSH(t, repo)
	d := bNewDaemon(t, ConfigOptions{URL: url, Auth: fmt.Sprintf("ssh_key_file: %s\nknown_hosts_file: %s\n", key, knownHosts)})
	repo.WriteFile("services/api.yaml", Descriptor("api", "1.0.0"))
	repo.Commit("qa", "add api", Alice, Alice)
	d.Start()

	repo.WriteFile("services/api.yaml", Descriptor("api", "1.0.1"))
	c := repo.Commit("qa", "api 1.0.1", Alice, Alice)
	if r := d.RecordFor("qa", "api", c); r.Status != "succeeded" || r.Version != "1.0.1" || r.PreviousVersion != "1.0.0" {
		t.Fatalf("record over ssh: %s %s → %s, want succeeded 1.0.0 → 1.0.1", r.Status, r.PreviousVersion, r.Version)
	}
	if got := d.Deployed(); len(got) != 1 || got[0] != "api 1.0.1 deploy "+c {
		t.Errorf("deployed.log: %q", got)
	}
}

// 9. `gitmon plan` with a config whose state folder does not exist, as in
// CI on a pull request: the branch tip stands in for the last good.
func TestScenarioB_PlanWithoutState(t *testing.T) {
	repo := NewGitRepo(t)
	url := gitserver.Daemon(t, repo)
	repo.WriteFile("services/payments.yaml", Descriptor("payments", "1.0.0"))
	tip := repo.Commit("qa", "add payments", Alice, Alice)
	repo.Branch("pr-evil", "qa")
	repo.WriteFile("services/payments.yaml", Descriptor("payments", "1.0.1"))
	evil := repo.Commit("pr-evil", "payments 1.0.1", Mallory, Mallory)
	repo.Branch("pr-good", "qa")
	repo.WriteFile("services/payments.yaml", Descriptor("payments", "1.0.2"))
	repo.Commit("pr-good", "payments 1.0.2", Alice, Alice)

	// A serve runs on the repository meanwhile; plan takes no lock.
	serve := bNewDaemon(t, ConfigOptions{URL: url, Insecure: true})
	serve.Start()
	d := bNewDaemon(t, ConfigOptions{URL: url, Insecure: true}) // never started: no state folder
	if _, err := os.Stat(filepath.Join(d.Dir, "state")); err == nil {
		t.Fatal("the plan config has a state folder")
	}

	code, entries := bPlan(t, d, "--env", "qa", "--ref", "pr-evil")
	if code != 4 || len(entries) != 1 || entries[0].Decision != "reject" {
		t.Fatalf("plan of Mallory's bump: exit %d %+v; want exit 4 and a reject", code, entries)
	}
	named := false
	for _, r := range entries[0].Reasons {
		if r.Rule == "committers" && r.Commit == evil {
			named = true
		}
	}
	if !named {
		t.Errorf("the rejection does not name rule committers for %.10s: %+v", evil, entries[0].Reasons)
	}

	code, entries = bPlan(t, d, "--env", "qa", "--ref", "pr-good")
	if code != 3 || len(entries) != 1 || entries[0].Decision != "deploy" || entries[0].LastGood != "1.0.0" || entries[0].Requested != "1.0.2" {
		t.Errorf("plan of an allowed bump: exit %d %+v; want exit 3, deploy 1.0.0 → 1.0.2", code, entries)
	}

	for _, ref := range [][]string{{"--ref", tip}, {"--ref", "qa"}, nil} {
		if code, entries := bPlan(t, d, append([]string{"--env", "qa"}, ref...)...); code != 0 || len(entries) != 0 {
			t.Errorf("plan %v at the branch tip: exit %d %+v; want exit 0 and no change", ref, code, entries)
		}
	}
	if _, err := os.Stat(filepath.Join(d.Dir, "state")); err == nil {
		t.Error("plan created a state folder")
	}
	// Beside the running serve, with its state: the same answers.
	if code, _ := bPlan(t, serve, "--env", "qa", "--ref", "pr-evil"); code != 4 {
		t.Errorf("plan beside serve of Mallory's bump: exit %d, want 4", code)
	}
	if code, _ := bPlan(t, serve, "--env", "qa", "--ref", "pr-good"); code != 3 {
		t.Errorf("plan beside serve of an allowed bump: exit %d, want 3", code)
	}
}
