package app

import (
	"testing"
)

// TestAttackCrashAtEveryWriteOfARemove: deleting two descriptors with
// allow_delete runs the environment's two remove pipelines for each; a
// crash after any write of it keeps SPEC §5 Crashes.
func TestAttackCrashAtEveryWriteOfARemove(t *testing.T) {
	rig := newCrashRigEnv(t, `{name: qa, branch: qa, release: [deploy], remove: [smoke, deploy]}`,
		`{committers: ["*@example.com"], changes: {allow_delete: true}}`)
	rig.repo.Remove("services/a.yaml")
	rig.repo.Remove("services/b.yaml")
	tip := rig.repo.Commit("qa", "remove a and b", tAlice, tAlice)
	crashEveryWrite(t, rig, tip, "remove", 2, "")
}

// TestAttackCrashAtEveryWriteOfAReleaseOfNoStages: `release: []` runs
// nothing; a crash after any write still ends each record succeeded, once.
func TestAttackCrashAtEveryWriteOfAReleaseOfNoStages(t *testing.T) {
	rig := newCrashRigEnv(t, `{name: qa, branch: qa, release: []}`, `{committers: ["*@example.com"]}`)
	rig.repo.WriteFile("services/a.yaml", tDescriptor("a", "1.1.0"))
	rig.repo.WriteFile("services/b.yaml", tDescriptor("b", "1.1.0"))
	tip := rig.repo.Commit("qa", "bump a and b", tAlice, tAlice)
	crashEveryWrite(t, rig, tip, "deploy", 0, "1.1.0")
}
