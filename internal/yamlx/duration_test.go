package yamlx_test

import (
	"testing"
	"time"

	"github.com/gitmon-dev/gitmon/internal/yamlx"
)

func TestParseDuration(t *testing.T) {
	day := 24 * time.Hour
	good := map[string]time.Duration{
		"0": 0, "90s": 90 * time.Second, "1h30m": 90 * time.Minute, "500ms": 500 * time.Millisecond,
		"7d": 7 * day, "1d12h": 36 * time.Hour, "1.5d": 36 * time.Hour, "0.25d": 6 * time.Hour, ".5d": 12 * time.Hour,
		"2d3h4m5s": 2*day + 3*time.Hour + 4*time.Minute + 5*time.Second, "0d": 0, "1d1d": 2 * day,
		"-1d": -day, "+2d": 2 * day, "1h1d": 25 * time.Hour, "100000d": 100000 * day,
	}
	for in, want := range good {
		if got, err := yamlx.ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "7", "7days", "1dd", "1.2.3d", "d1", "1d-", "-", "7D", "1e3d", "1000000d", "99999999999999999999999999999999d", " 1d", "1d "} {
		if got, err := yamlx.ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, got)
		}
	}
}

// Durations read from YAML take days too.
func TestDecodeDays(t *testing.T) {
	var v struct {
		Soak time.Duration `yaml:"soak"`
		Wait time.Duration `yaml:"wait"`
	}
	root, err := yamlx.Parse([]byte("soak: 7d\nwait: 1d12h\n"), yamlx.Limits{MaxBytes: 1 << 10, MaxDepth: 8})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := yamlx.Decode(root, &v); err != nil || v.Soak != 7*24*time.Hour || v.Wait != 36*time.Hour {
		t.Errorf("decoded %+v, %v", v, err)
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"7d", "1d12h", "1.5d", "90s", "-1d", "1dd", ".d", "1e3d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := yamlx.ParseDuration(s)
		if want, werr := time.ParseDuration(s); werr == nil && (err != nil || d != want) {
			t.Fatalf("ParseDuration(%q) = %v, %v; Go says %v", s, d, err, want)
		}
	})
}
