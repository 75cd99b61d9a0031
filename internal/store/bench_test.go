package store

import (
	"context"
	"os"
	"testing"
)

// BenchmarkRecordLifecycle measures one record through serve's writes:
// Apply with one record, StartRecord, two UpdateStage and FinishRecord,
// five transactions. GITMON_BENCH_DIR puts the database on another disk.
func BenchmarkRecordLifecycle(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		b.Run("synchronous="+sync, func(b *testing.B) {
			dir := b.TempDir()
			if d := os.Getenv("GITMON_BENCH_DIR"); d != "" {
				var err error
				if dir, err = os.MkdirTemp(d, "bench"); err != nil {
					b.Fatal(err)
				}
				defer os.RemoveAll(dir)
			}
			ctx := context.Background()
			s, err := Open(ctx, dir, Options{Lock: true, synchronous: sync})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				n++
				if err := lifecycle(ctx, s, n, func(string) {}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
