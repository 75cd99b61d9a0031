package test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/test/gitserver"
)

// TestSoak_SIGKILLAtRandomMoments kills the real daemon at random moments
// while commits release two services through two exec stages, restarts
// it, and checks SPEC §5 Crashes once everything settled: every commit
// has one record per service it changed, no stage ran twice for a commit,
// a record succeeded only when both its stages ran, and each service's
// last commit was decided.
//
// Where strace can inject faults, every fsync and fdatasync of serve takes
// 20 ms longer (GITMON_SOAK_SYNC_DELAY_US), which widens the windows between writes (the way wave 1's
// crash was found). GITMON_SOAK_KILLS sets the number of kills (default 12).
func TestSoak_SIGKILLAtRandomMoments(t *testing.T) {
	kills := 12
	if v := os.Getenv("GITMON_SOAK_KILLS"); v != "" {
		fmt.Sscan(v, &kills)
	}
	repo := NewGitRepo(t)
	url := gitserver.Daemon(t, repo)
	repo.WriteFile(aPath("a"), Descriptor("a", "1.0.0"))
	repo.WriteFile(aPath("b"), Descriptor("b", "1.0.0"))
	base := repo.Commit("qa", "two services", Alice, Alice)
	d := aNewDaemon(t, ConfigOptions{URL: url, Insecure: true,
		Envs:      "  - {name: qa, branch: qa, release: [deploy, smoke]}\n",
		Pipelines: "  deploy: {runner: exec, command: [./stage.sh], timeout: 30s}\n  smoke: {runner: exec, command: [./stage.sh], timeout: 30s}\n"})
	// Each stage run appends "commit service stage" when it starts and
	// "... done" when it ends, with a short random pause in between.
	d.Script("stage.sh", `#!/bin/sh
echo "$GITMON_COMMIT $GITMON_SERVICE $GITMON_STAGE start" >> ran.log
sleep 0.0$(( $$ % 9 ))
echo "$GITMON_COMMIT $GITMON_SERVICE $GITMON_STAGE done" >> ran.log
`)
	if slow := slowSyncs(); slow != nil {
		d.Wrap = slow
		t.Logf("disk syncs slowed: %v", slow)
	}
	aStart(t, d, base)

	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	var commits []string
	for i := range kills {
		repo.WriteFile(aPath("a"), Descriptor("a", fmt.Sprintf("1.%d.0", i+1)))
		repo.WriteFile(aPath("b"), Descriptor("b", fmt.Sprintf("1.%d.0", i+1)))
		commits = append(commits, repo.Commit("qa", fmt.Sprintf("both 1.%d.0", i+1), Alice, Alice))
		// Let it get somewhere: decided, a stage or two, the end.
		time.Sleep(time.Duration(rnd.IntN(600)) * time.Millisecond) // a random kill moment, not synchronisation
		d.Kill()
		d.Start()
	}
	last := commits[len(commits)-1]
	for _, svc := range []string{"a", "b"} {
		d.RecordFor("qa", svc, last)
	}
	d.Eventually(60*time.Second, "no record pending or running", func() bool {
		for _, r := range d.Records() {
			if r.Status == "pending" || r.Status == "running" {
				return false
			}
		}
		return true
	})

	data, _ := os.ReadFile(filepath.Join(d.Dir, "ran.log"))
	starts, dones := map[string]int{}, map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 {
			continue
		}
		key := f[0] + " " + f[1] + " " + f[2]
		if f[3] == "start" {
			starts[key]++
		} else {
			dones[key]++
		}
	}
	records := map[string]int{}
	var wrong int
	for _, r := range d.Records() {
		records[r.Commit+" "+r.Service]++
		for _, st := range r.Stages {
			key := r.Commit + " " + r.Service + " " + st.Name
			if starts[key] > 1 {
				wrong++
				t.Errorf("%s ran %d times", key, starts[key])
			}
			if st.Status == "succeeded" && dones[key] != 1 {
				wrong++
				t.Errorf("%s is succeeded but ended %d times", key, dones[key])
			}
			if r.Status == "succeeded" && st.Status != "succeeded" {
				wrong++
				t.Errorf("record %s %s succeeded with stage %s %s", r.Service, r.Version, st.Name, st.Status)
			}
		}
		if r.Status == "failed" {
			interrupted := false
			for _, st := range r.Stages {
				interrupted = interrupted || st.Status == "interrupted"
			}
			if !interrupted {
				wrong++
				t.Errorf("record %s %s failed without an interrupted stage: %+v", r.Service, r.Version, r.Stages)
			}
		}
	}
	for _, c := range commits {
		for _, svc := range []string{"a", "b"} {
			if n := records[c+" "+svc]; n != 1 {
				wrong++
				t.Errorf("commit %.10s has %d records of %s, want 1", c, n, svc)
			}
		}
	}
	t.Logf("%d kills, %d wrong outcomes", kills, wrong)
}

// slowSyncs returns the strace command line that delays every disk sync,
// or nil where strace is missing or may not trace here.
func slowSyncs() []string {
	delay := "20000" // µs
	if v := os.Getenv("GITMON_SOAK_SYNC_DELAY_US"); v != "" {
		delay = v
	}
	argv := []string{"strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=fsync,fdatasync", "-e", "inject=fsync,fdatasync:delay_exit=" + delay}
	if err := exec.Command(argv[0], append(argv[1:], "true")...).Run(); err != nil {
		return nil
	}
	return argv
}
