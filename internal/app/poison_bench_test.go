package app

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// BenchmarkPoisonousCommit decides, on an in-memory Git and the real
// store, a commit with a 1 MiB message that changes a descriptor of 1,100
// leaf fields (rejected: more than 1,000) and one of 900 (kept). The
// baseline, in the same run, is an ordinary commit: a short message and a
// version bump. It reports the time, the bytes allocated, and how much the
// heap still holds once the commit is stored.
func BenchmarkPoisonousCommit(b *testing.B) {
	params := func(n int) string {
		var sb strings.Builder
		sb.WriteString("params:\n")
		for i := range n {
			fmt.Fprintf(&sb, "  k%04d: %d\n", i, i)
		}
		return sb.String()
	}
	cases := []struct {
		name  string
		msg   string
		files map[string]string
	}{
		{"ordinary", "bump", map[string]string{"services/a.yaml": "service: a\nversion: 1.1.0\n", "services/b.yaml": "service: b\nversion: 1.1.0\n"}},
		{"poisonous", strings.Repeat("0123456789abcdef", 1<<16), map[string]string{
			"services/a.yaml": "service: a\nversion: 1.1.0\n" + params(1100),
			"services/b.yaml": "service: b\nversion: 1.1.0\n" + params(900)}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var retained uint64
			for range b.N {
				b.StopTimer()
				r := newBranchRig(b, "")
				r.git.commit("qa", "alice@example.com", map[string]string{"services/a.yaml": "service: a\nversion: 1.0.0\n", "services/b.yaml": "service: b\nversion: 1.0.0\n"})
				r.poll()
				sha := r.git.commit("qa", "alice@example.com", c.files)
				r.git.commits[sha] = func() fakeCommit { fc := r.git.commits[sha]; fc.Message = c.msg; return fc }()
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				b.StartTimer()
				r.poll()
				b.StopTimer()
				r.git = nil
				runtime.GC()
				runtime.ReadMemStats(&after)
				if after.HeapAlloc > before.HeapAlloc {
					retained += after.HeapAlloc - before.HeapAlloc
				}
				r.a.store.Close()
			}
			b.ReportMetric(float64(retained)/float64(b.N), "heap-B-retained")
		})
	}
}
