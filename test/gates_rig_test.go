package test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/test/gitserver"
)

// The rig of the gate tests (promotion, freezes, halts, retries): qa feeds
// staging and staging feeds prod, each a branch of one repository that
// git daemon serves on loopback, watched by a real `gitmon serve`. Each
// test has its own repository and daemon. The descriptors are on all three
// branches before the daemon starts, so its first sight is a baseline and
// only the test's commits make records. staging and prod have their own
// domains, so promotion is a real `git merge` that carries the version and
// keeps each branch's domain. Every wait is on a condition read from
// `gitmon history --json`, with a deadline.

// pmRecord is a record with the SPEC §7 fields of the gates, which the
// harness's Record leaves out.
type pmRecord struct {
	Record
	Trigger   string     `json:"trigger"`
	Actor     string     `json:"actor"`
	StartedAt *time.Time `json:"started_at"`
	Evidence  struct {
		Upstream *struct {
			Environment string    `json:"environment"`
			Record      string    `json:"record"`
			SucceededAt time.Time `json:"succeeded_at"`
		} `json:"upstream"`
		BreakGlass bool `json:"break_glass"`
	} `json:"evidence"`
}

// Promotion policies: staging is fed by qa, prod by staging.
const (
	pmStagingGated = "{promotion: {required: true, from: qa, wait: 1m}}"
	pmProdGated    = "{promotion: {required: true, from: staging, wait: 1m}}"
)

// pmDeployScript appends "env service version commit" to deployed.log,
// and "env service commit sha256-of-the-descriptor-JSON" to
// descriptors.log.
// While hold-<env> exists in its folder, a run waits for the test to
// create release-<env>-<service>-<version> (or abort, which the rig
// creates at cleanup; or 60 s pass). While fail-<env> exists, it fails.
const pmDeployScript = `#!/bin/sh
echo "$GITMON_ENV $GITMON_SERVICE $GITMON_VERSION $GITMON_COMMIT" >> deployed.log
echo "$GITMON_ENV $GITMON_SERVICE $GITMON_COMMIT $(sha256sum < "$GITMON_DESCRIPTOR" | cut -c1-64)" >> descriptors.log
if [ -e "hold-$GITMON_ENV" ]; then
  n=0
  while [ ! -e "release-$GITMON_ENV-$GITMON_SERVICE-$GITMON_VERSION" ]; do
    if [ -e abort ] || [ $n -ge 3000 ]; then echo "not released" >&2; exit 9; fi
    n=$((n+1))
    sleep 0.02
  done
fi
if [ -e "fail-$GITMON_ENV" ]; then echo "boom" >&2; exit 3; fi
echo "deployed $GITMON_SERVICE $GITMON_VERSION to $GITMON_ENV"
`

// pmRig is one repository with qa, staging and prod, and its daemon.
type pmRig struct {
	t    *testing.T
	repo *gitserver.Repo
	d    *Daemon
}

// pmPath is a service's descriptor path.
func pmPath(service string) string { return "services/" + service + ".yaml" }

// pmDesc is a service's descriptor in env: the version on its own line,
// apart from env's own domain, so that a merge carries one and keeps the
// other.
func pmDesc(service, version, env string, port int) string {
	return fmt.Sprintf("service: %s\nversion: %s\nmaintainer: alice@example.com\ndomain: %s.%s.example.com\nport: %d\n",
		service, version, service, env, port)
}

// pmNewRig commits services at 1.0.0 (port 8080) on qa, staging and prod,
// configures staging's and prod's policy (YAML flow maps, "" for none),
// starts the daemon and checks its baselines.
func pmNewRig(t *testing.T, stagingPolicy, prodPolicy string, services ...string) *pmRig {
	t.Helper()
	repo := NewGitRepo(t)
	url := gitserver.Daemon(t, repo)
	base := map[string]string{}
	for i, env := range []string{"qa", "staging", "prod"} {
		if i > 0 {
			repo.Branch(env, []string{"qa", "staging"}[i-1])
		}
		for _, s := range services {
			repo.WriteFile(pmPath(s), pmDesc(s, "1.0.0", env, 8080))
		}
		base[env] = repo.Commit(env, env+"'s own domains", Alice, Alice)
	}
	envLine := func(name, pol string) string {
		s := fmt.Sprintf("  - {name: %s, branch: %s, release: [deploy]", name, name)
		if pol != "" {
			s += ", policy: " + pol
		}
		return s + "}\n"
	}
	d := NewDaemon(t, ConfigOptions{URL: url, Insecure: true,
		Envs:      envLine("qa", "") + envLine("staging", stagingPolicy) + envLine("prod", prodPolicy),
		Pipelines: "  deploy: {runner: exec, command: [./deploy.sh], timeout: 90s}\n"})
	d.Script("deploy.sh", pmDeployScript)
	// Whatever happens, no held script outlives the test.
	t.Cleanup(func() { os.WriteFile(filepath.Join(d.Dir, "abort"), nil, 0o644) })
	if r := d.Gitmon("validate", "--config", d.Config); r.code != 0 {
		t.Fatalf("the test's config is invalid: %v", r)
	}
	d.Start()
	d.Eventually(30*time.Second, "baselines of qa, staging and prod", func() bool {
		seen := 0
		for _, e := range d.Events() {
			if e.Kind == "baseline" && e.Commit == base[e.Environment] {
				seen++
			}
		}
		return seen == 3
	})
	if recs := d.Records(); len(recs) != 0 {
		t.Fatalf("a baseline makes no records, got %d:\n%s", len(recs), aJSON(recs))
	}
	return &pmRig{t: t, repo: repo, d: d}
}

// bump commits service at version (and port) on env's branch, with env's
// own domain: a hand edit.
func (r *pmRig) bump(env, service, version string, port int, msg string) string {
	r.t.Helper()
	r.repo.WriteFile(pmPath(service), pmDesc(service, version, env, port))
	return r.repo.Commit(env, msg, Alice, Alice)
}

// merge promotes from into into with `git merge --no-ff`.
func (r *pmRig) merge(into, from string) string {
	r.t.Helper()
	return r.repo.Merge(into, from, "promote "+from+" to "+into, Alice)
}

// cherryPick applies commit onto branch with `git cherry-pick` (committed
// by Bob, authored as the original) and pushes it.
func (r *pmRig) cherryPick(branch, commit string) string {
	r.t.Helper()
	r.repo.Git("checkout", "-q", "-f", branch)
	r.repo.Git("-c", "user.name=Bob", "-c", "user.email=bob@platform.example.com", "cherry-pick", "-x", commit)
	r.repo.Push(branch)
	return r.repo.Git("rev-parse", "HEAD")
}

// touch creates a marker file in the daemon's folder (see pmDeployScript).
func (r *pmRig) touch(name string) {
	r.t.Helper()
	if err := os.WriteFile(filepath.Join(r.d.Dir, name), nil, 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// rm removes a marker file.
func (r *pmRig) rm(name string) {
	r.t.Helper()
	if err := os.Remove(filepath.Join(r.d.Dir, name)); err != nil {
		r.t.Fatal(err)
	}
}

// records returns `gitmon history --json --env env --service service`.
func (r *pmRig) records(env, service string) []pmRecord {
	r.t.Helper()
	res := r.d.Gitmon("history", "--config", r.d.Config, "--json", "--env", env, "--service", service)
	if res.code != 0 {
		r.t.Fatalf("gitmon history: %v", res)
	}
	var recs []pmRecord
	if err := json.Unmarshal([]byte(res.stdout), &recs); err != nil {
		r.t.Fatalf("history --json is not a record array: %v\n%s", err, res.stdout)
	}
	return recs
}

// wait waits until the newest record of (env, service, commit) with
// trigger (any when "") satisfies ok, and returns it.
func (r *pmRig) wait(what, env, service, commit, trigger string, ok func(pmRecord) bool) pmRecord {
	r.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		var newest *pmRecord
		for _, rec := range r.records(env, service) {
			if rec.Commit == commit && (trigger == "" || rec.Trigger == trigger) {
				newest = &rec
				break // the newest one decides
			}
		}
		if newest != nil && ok(*newest) {
			return *newest
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s/%s at %.10s: %s; its newest record:\n%s\nlogs:\n%s",
				env, service, commit, what, aJSON(newest), r.d.Logs())
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
}

// ended waits until the record of (env, service, commit) has ended.
func (r *pmRig) ended(env, service, commit string) pmRecord {
	r.t.Helper()
	return r.wait("ended", env, service, commit, "", func(rec pmRecord) bool { return rec.FinishedAt != nil })
}

// pending waits until the record of (env, service, commit) is pending
// with a reason of rule.
func (r *pmRig) pending(env, service, commit, rule string) pmRecord {
	r.t.Helper()
	return r.wait("pending, rule "+rule, env, service, commit, "", func(rec pmRecord) bool {
		return rec.Status == "pending" && pmReason(rec, rule) != ""
	})
}

// running waits until the record of (env, service, commit) runs.
func (r *pmRig) running(env, service, commit string) pmRecord {
	r.t.Helper()
	return r.wait("running", env, service, commit, "", func(rec pmRecord) bool { return rec.Status == "running" })
}

// deployed returns the lines of deployed.log for env and service.
func (r *pmRig) deployed(env, service string) []string {
	var out []string
	for _, l := range r.d.Deployed() {
		if strings.HasPrefix(l, env+" "+service+" ") {
			out = append(out, l)
		}
	}
	return out
}

// pmReason returns the message of rec's first reason of rule, or "".
func pmReason(rec pmRecord, rule string) string {
	for _, rs := range rec.Reasons {
		if rs.Rule == rule {
			if rs.Message == "" {
				return "(a reason without a message)"
			}
			return rs.Message
		}
	}
	return ""
}

// pmWant checks a record's status and that it has a reason of each rule.
func pmWant(t *testing.T, rec pmRecord, status string, rules ...string) {
	t.Helper()
	ok := rec.Status == status
	for _, rule := range rules {
		ok = ok && slices.Contains(rec.Rules(), rule)
	}
	if !ok {
		t.Fatalf("record of %s/%s at %.10s: status %q rules %v, want %q with %v\n%s",
			rec.Environment, rec.Service, rec.Commit, rec.Status, rec.Rules(), status, rules, aJSON(rec))
	}
}

// pmWantMessage checks that rec's reason of rule names every word.
func pmWantMessage(t *testing.T, rec pmRecord, rule string, words ...string) {
	t.Helper()
	msg := pmReason(rec, rule)
	for _, w := range words {
		if !strings.Contains(msg, w) {
			t.Errorf("the %s reason of %s/%s at %.10s does not name %q: %q", rule, rec.Environment, rec.Service, rec.Commit, w, msg)
		}
	}
}

// pmWantNoRun checks that a record decided at a gate ran nothing.
func pmWantNoRun(t *testing.T, rec pmRecord) {
	t.Helper()
	if len(rec.Stages) != 0 || rec.StartedAt != nil {
		t.Errorf("record %s of %s/%s ran: started_at %v stages %s", rec.Status, rec.Environment, rec.Service, rec.StartedAt, aJSON(rec.Stages))
	}
}

// pmWantUpstream checks that rec succeeded on the evidence of up.
func pmWantUpstream(t *testing.T, rec, up pmRecord) {
	t.Helper()
	u := rec.Evidence.Upstream
	if u == nil || u.Environment != up.Environment || u.Record != up.ID || up.FinishedAt == nil || !u.SucceededAt.Equal(*up.FinishedAt) {
		t.Errorf("evidence.upstream of %s/%s at %.10s: %s, want %s record %s succeeded at %v",
			rec.Environment, rec.Service, rec.Commit, aJSON(u), up.Environment, up.ID, up.FinishedAt)
	}
}

// pmFigure summarises durations as a parseable line: median, max, n.
func pmFigure(name string, ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }
	if len(s) == 0 {
		return "FIGURE " + name + " n=0"
	}
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + med) / 2
	}
	return fmt.Sprintf("FIGURE %s median=%s max=%s n=%d", name, ms(med), ms(s[len(s)-1]), len(s))
}
