package descriptors_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gitmon-dev/gitmon/descriptors"
)

func TestQuantityCompare(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"500m", "1", -1},
		{"512Mi", "536870912", 0},
		{"1Gi", "1G", 1},
		{"1e3", "1k", 0},
		{"1E3", "1000", 0},
		{"0.5", "500m", 0},
		{".5", "0.5", 0},
		{"+2", "2", 0},
		{"1Ki", "1024", 0},
		{"1Ei", "1E", 1},
		{"1500m", "1.5", 0},
		{"100n", "100u", -1},
		{"1e-3", "1m", 0},
		{"1e+3", "1k", 0},
		{"2e08", "200M", 0}, // a leading zero in the exponent is still decimal
		{"1e10", "10G", 0},
		{"999Ti", "1Pi", -1},
		{"0.1", "100m", 0},
		{"1.0", "1", 0},
	}
	for _, tc := range cases {
		t.Run(tc.a+" vs "+tc.b, func(t *testing.T) {
			a, b := descriptors.MustParseQuantity(tc.a), descriptors.MustParseQuantity(tc.b)
			if got := a.Cmp(b); got != tc.want {
				t.Errorf("Cmp = %d, want %d", got, tc.want)
			}
			if got := b.Cmp(a); got != -tc.want {
				t.Errorf("reversed Cmp = %d, want %d", got, -tc.want)
			}
			if a.String() != tc.a {
				t.Errorf("String = %q, want the text as written", a.String())
			}
		})
	}
}

func TestQuantityBad(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"empty", "", "empty quantity"},
		{"bad suffix", "500x", `unknown suffix "x"`},
		{"lower-case binary suffix", "1gi", `unknown suffix "gi"`},
		{"space", "1 Gi", `unknown suffix " Gi"`},
		{"negative", "-1", "must not be negative"},
		{"negative with suffix", "-512Mi", "must not be negative"},
		{"double sign", "+-1", "must not be negative"},
		{"no number", "Mi", "does not start with a number"},
		{"only a dot", ".", "does not start with a number"},
		{"two dots", "1.2.3", "unknown suffix"},
		{"exponent without digits", "1e", "bad exponent"},
		{"exponent with two signs", "1e+-3", "bad exponent"},
		{"exponent too large", "1e100", "bad exponent"},
		{"exponent not a number", "1e3x", "bad exponent"},
		{"hex", "0x10", "unknown suffix"},
		{"too long", "1" + strings.Repeat("0", 64), "too long"},
		{"suffix and exponent", "1Mie3", "unknown suffix"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q, err := descriptors.ParseQuantity(tc.in)
			if err == nil {
				t.Fatalf("ParseQuantity(%q) = %v, want an error", tc.in, q)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestQuantityZeroAndUnset(t *testing.T) {
	var unset descriptors.Quantity
	zero := descriptors.MustParseQuantity("0")
	one := descriptors.MustParseQuantity("1m")
	switch {
	case !unset.IsZero() || unset.String() != "" || unset.Sign() != 0:
		t.Error("the zero Quantity is not unset")
	case zero.IsZero() || zero.Sign() != 0:
		t.Error(`"0" is a set quantity of value zero`)
	case unset.Cmp(zero) != -1 || zero.Cmp(unset) != 1 || unset.Cmp(unset) != 0:
		t.Error("unset does not sort first")
	case one.Sign() != 1:
		t.Error("1m is positive")
	}
}

func TestQuantityCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"512Mi": "536870912",
		"500m":  "0.5",
		"1k":    "1000",
		"1n":    "0",
		"1.5Gi": "1610612736",
		"2":     "2",
	} {
		if got := descriptors.MustParseQuantity(in).Canonical(); got != want {
			t.Errorf("Canonical(%s) = %q, want %q", in, got, want)
		}
	}
	var unset descriptors.Quantity
	if unset.Canonical() != "" {
		t.Error("unset has a canonical form")
	}
}

func TestQuantityJSON(t *testing.T) {
	for _, in := range []string{"500m", "512Mi", "1e3", ""} {
		var q descriptors.Quantity
		if in != "" {
			q = descriptors.MustParseQuantity(in)
		}
		b, err := json.Marshal(q)
		if err != nil {
			t.Fatal(err)
		}
		var back descriptors.Quantity
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if back.String() != in || back.Cmp(q) != 0 || back.IsZero() != q.IsZero() {
			t.Errorf("%q round-tripped to %q", in, back)
		}
	}
	// A stored number reads back too.
	var q descriptors.Quantity
	if err := json.Unmarshal([]byte("2"), &q); err != nil || q.Cmp(descriptors.MustParseQuantity("2000m")) != 0 {
		t.Errorf("number: %v, %v", q, err)
	}
	if err := json.Unmarshal([]byte(`"-1"`), &q); err == nil {
		t.Error("a negative quantity was read from JSON")
	}
}

func TestMustParseQuantityPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	descriptors.MustParseQuantity("lots")
}
