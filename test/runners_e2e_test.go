package test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/runners"
	"github.com/gitmon-dev/gitmon/test/fakejenkins"
	"github.com/gitmon-dev/gitmon/test/gitserver"
)

// rReadyz returns /readyz's status and its failing runners.
func rReadyz(t *testing.T, d *Daemon) (int, map[string]string) {
	t.Helper()
	resp, err := http.Get("http://" + d.Addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Runners map[string]string `json:"runners"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body.Runners
}

// rJobParams are JenkinsParameters without GITMON_TICKETS.
func rJobParams() []string {
	return slices.DeleteFunc(slices.Clone(runners.JenkinsParameters), func(p string) bool { return p == "GITMON_TICKETS" })
}

// rJenkinsDaemon is a daemon whose qa runs an exec deploy and whose
// staging runs the jenkins job regression-suite on jk.
func rJenkinsDaemon(t *testing.T, jk *fakejenkins.Server) (*gitserver.Repo, *Daemon) {
	repo := NewGitRepo(t)
	repo.WriteFile("services/payments.yaml", Descriptor("payments", "1.0.0"))
	repo.Commit("qa", "baseline", Alice, Alice)
	repo.WriteFile("services/payments.yaml", Descriptor("payments", "1.0.0"))
	repo.Commit("staging", "baseline", Alice, Alice)
	url := gitserver.Daemon(t, repo)
	d := NewDaemon(t, ConfigOptions{URL: url, Insecure: true,
		Envs: "  - {name: qa, branch: qa, release: [deploy]}\n  - {name: staging, branch: staging, release: [regression]}\n",
		Pipelines: "  deploy: {runner: exec, command: [./deploy.sh], timeout: 30s}\n" +
			"  regression: {runner: jenkins, job: regression-suite, timeout: 2m}\n",
		Extra: fJenkinsExtra(jk.URL)})
	d.Script("deploy.sh", DeployScript)
	d.Env = append(d.Env, "JENKINS_USER=gitmon", "JENKINS_TOKEN=jenkins-token")
	return repo, d
}

// Issue 7 point 10: serve would not start while Jenkins was unreachable,
// which stopped qa deployments that never touch Jenkins. SPEC §4: it
// starts with a warning and a /readyz entry; the Jenkins stages fail with
// the reason until Jenkins answers, then run.
func TestRunners_JenkinsUnreachableAtStart(t *testing.T) {
	jk := fakejenkins.New("gitmon", "jenkins-token")
	defer jk.Close()
	jk.AddJob("regression-suite", rJobParams()...)
	jk.SetDown(true)
	repo, d := rJenkinsDaemon(t, jk)
	d.Start() // waits for /readyz 200

	code, failing := rReadyz(t, d)
	if code != http.StatusOK || !strings.Contains(failing["regression"], "cannot be reached") {
		t.Fatalf("/readyz %d, runners %v; want 200 with regression failing", code, failing)
	}
	if !strings.Contains(d.Logs(), "level=WARN") || !strings.Contains(d.Logs(), "jenkins cannot be reached") {
		t.Errorf("no warning about Jenkins in the log:\n%s", d.Logs())
	}

	repo.WriteFile("services/payments.yaml", Descriptor("payments", "2.0.0"))
	qa := repo.Commit("qa", "Release payments 2.0.0", Alice, Alice)
	if rec := d.RecordFor("qa", "payments", qa); rec.Status != "succeeded" {
		t.Fatalf("qa record %s %+v, want succeeded while Jenkins is down", rec.Status, rec.Stages)
	}

	repo.WriteFile("services/payments.yaml", Descriptor("payments", "2.0.0"))
	staging := repo.Commit("staging", "Release payments 2.0.0", Alice, Alice)
	rec := d.RecordFor("staging", "payments", staging)
	if rec.Status != "failed" || len(rec.Stages) != 1 || !strings.Contains(rec.Stages[0].Message, "cannot be reached") {
		t.Fatalf("staging record %s %+v, want failed saying Jenkins cannot be reached", rec.Status, rec.Stages)
	}

	jk.SetDown(false)
	repo.WriteFile("services/payments.yaml", Descriptor("payments", "2.0.1"))
	staging = repo.Commit("staging", "Release payments 2.0.1", Alice, Alice)
	if rec := d.RecordFor("staging", "payments", staging); rec.Status != "succeeded" {
		t.Fatalf("staging record %s %+v once Jenkins answers, want succeeded\n%s", rec.Status, rec.Stages, d.Logs())
	}
	if _, failing := rReadyz(t, d); len(failing) != 0 {
		t.Errorf("/readyz still lists %v", failing)
	}
	if !strings.Contains(d.Logs(), "GITMON_TICKETS") {
		t.Errorf("no warning about the missing GITMON_TICKETS parameter:\n%s", d.Logs())
	}
	if bs := jk.Builds("regression-suite"); len(bs) != 1 || bs[0].Params["GITMON_VERSION"] != "2.0.1" {
		t.Errorf("builds %+v, want one of 2.0.1", bs)
	}
	d.Stop()
}

// SPEC §4: without GITMON_RUN_ID serve refuses to start, naming the
// pipeline and the job; validate says so too, and warns about the other
// missing parameters.
func TestRunners_JenkinsJobParameters(t *testing.T) {
	jk := fakejenkins.New("gitmon", "jenkins-token")
	defer jk.Close()
	jk.AddJob("regression-suite", rJobParams()...)
	_, d := rJenkinsDaemon(t, jk)

	r := d.Gitmon("validate", "--config", d.Config)
	if r.code != 0 || !strings.Contains(r.stdout, "warning: ") || !strings.Contains(r.stdout, "GITMON_TICKETS") || !strings.Contains(r.stdout, "pipelines.regression") {
		t.Errorf("validate with a job lacking GITMON_TICKETS: %v; want exit 0 and a warning naming it", r)
	}

	jk.SetJobParams("regression-suite", slices.DeleteFunc(rJobParams(), func(p string) bool { return p == runners.JenkinsRunIDParameter })...)
	r = d.Gitmon("validate", "--config", d.Config)
	if r.code != 1 || !strings.Contains(r.stdout, runners.JenkinsRunIDParameter) {
		t.Errorf("validate with a job lacking GITMON_RUN_ID: %v; want exit 1 naming it", r)
	}
	r = d.Gitmon("serve", "--config", d.Config)
	if r.code != 2 || !strings.Contains(r.stderr, "pipeline regression") || !strings.Contains(r.stderr, `"regression-suite"`) || !strings.Contains(r.stderr, runners.JenkinsRunIDParameter) {
		t.Errorf("serve with a job lacking GITMON_RUN_ID: %v; want exit 2 naming the pipeline, the job and the parameter", r)
	}

	jk.SetDown(true)
	r = d.Gitmon("validate", "--config", d.Config)
	if r.code != 0 || !strings.Contains(r.stdout, "warning: ") || !strings.Contains(r.stdout, "cannot be reached") {
		t.Errorf("validate with Jenkins down: %v; want exit 0 and a warning", r)
	}
}

// Issue 7 point 8: the exec runner's descriptor file is in the state's
// run folder, never in /tmp, and the one a killed gitmon left behind is
// removed at the next start.
func TestRunners_DescriptorFileAfterACrash(t *testing.T) {
	repo := NewGitRepo(t)
	repo.WriteFile("services/payments.yaml", Descriptor("payments", "1.0.0"))
	repo.Commit("qa", "baseline", Alice, Alice)
	url := gitserver.Daemon(t, repo)
	d := NewDaemon(t, ConfigOptions{URL: url, Insecure: true,
		Pipelines: "  deploy: {runner: exec, command: [./deploy.sh], timeout: 2m}\n"})
	// The first run blocks until the test kills gitmon; later runs pass.
	d.Script("deploy.sh", `#!/bin/sh
echo "$GITMON_DESCRIPTOR" >> descriptors.log
if [ ! -e blocked ]; then
  touch blocked
  echo $$ > stage.pid.tmp && mv stage.pid.tmp stage.pid
  exec sleep 600
fi
`)
	d.Start()
	repo.WriteFile("services/payments.yaml", Descriptor("payments", "2.0.0"))
	sha := repo.Commit("qa", "Release payments 2.0.0", Alice, Alice)

	var pgid int
	d.Eventually(30*time.Second, "the stage running", func() bool {
		b, _ := os.ReadFile(filepath.Join(d.Dir, "stage.pid"))
		pgid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return pgid > 0
	})
	t.Cleanup(func() { syscall.Kill(-pgid, syscall.SIGKILL) })
	b, _ := os.ReadFile(filepath.Join(d.Dir, "descriptors.log"))
	desc := strings.TrimSpace(string(b))
	runDir, _ := filepath.EvalSymlinks(filepath.Join(d.Dir, "state", "run"))
	if real, _ := filepath.EvalSymlinks(filepath.Dir(desc)); real != runDir {
		t.Fatalf("GITMON_DESCRIPTOR is %s, want a file in %s", desc, runDir)
	}
	fi, err := os.Stat(desc)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the descriptor file: %v, %v; want 0600", fi, err)
	}
	if fi, _ := os.Stat(runDir); fi.Mode().Perm() != 0o700 {
		t.Errorf("the run folder is %v, want 0700", fi.Mode().Perm())
	}

	d.Kill()
	if _, err := os.Stat(desc); err != nil {
		t.Fatalf("the descriptor file is gone after SIGKILL (%v): the test did not crash mid-stage", err)
	}
	d.Start()
	if _, err := os.Stat(desc); !os.IsNotExist(err) {
		t.Errorf("the file a killed gitmon left, %s, is still there after the restart: %v", desc, err)
	}
	d.RecordFor("qa", "payments", sha)
	d.Stop()
	if ents, _ := os.ReadDir(runDir); len(ents) != 0 {
		t.Errorf("the run folder holds %v after a clean stop", ents)
	}
}
