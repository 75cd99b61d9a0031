package config

import (
	"encoding/json"
	"testing"
)

func TestParseByteSize(t *testing.T) {
	good := []struct {
		in   string
		want ByteSize
	}{
		{"0", 0},
		{"1048576", 1 << 20},
		{"64KiB", 64 << 10},
		{"64MiB", 64 << 20},
		{"1GiB", 1 << 30},
		{"2TiB", 2 << 40},
		{"512KB", 512_000},
		{"3MB", 3_000_000},
		{"1GB", 1_000_000_000},
		{"1TB", 1_000_000_000_000},
		{"100B", 100},
		{"64 KiB", 64 << 10},
		{"9223372036854775807", 1<<63 - 1},
	}
	for _, tt := range good {
		got, err := ParseByteSize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	bad := []string{"", "KiB", "-1", "+1", "1.5GiB", "64kib", "64 k", "64  KiB", "64KiB ", "10PiB", "9223372036854775808", "8388608TiB", "0x10", "1e6", " 64KiB"}
	for _, in := range bad {
		if got, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestByteSizeYAML(t *testing.T) {
	var b ByteSize
	if err := b.UnmarshalYAMLScalar("4096", "!!int"); err != nil || b != 4096 {
		t.Errorf("!!int: %d %v", b, err)
	}
	if err := b.UnmarshalYAMLScalar("1.5", "!!float"); err == nil {
		t.Error("!!float: want an error")
	}
	if err := b.UnmarshalYAMLScalar("true", "!!bool"); err == nil {
		t.Error("!!bool: want an error")
	}
}

func TestByteSizeString(t *testing.T) {
	tests := []struct {
		in   ByteSize
		want string
	}{
		{0, "0B"}, {100, "100B"}, {64 * KiB, "64KiB"}, {64 * MiB, "64MiB"}, {1 * GiB, "1GiB"},
		{512 * KB, "500KiB"}, {999 * KB, "999KB"}, {512 * MB, "512MB"}, {1536 * MiB, "1536MiB"}, {1000 * KiB, "1000KiB"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("%d.String() = %q, want %q", int64(tt.in), got, tt.want)
		}
		back, err := ParseByteSize(tt.in.String())
		if err != nil || back != tt.in {
			t.Errorf("%q does not parse back: %d %v", tt.in.String(), back, err)
		}
	}
	j, _ := json.Marshal(64 * KiB)
	if string(j) != `"64KiB"` {
		t.Errorf("JSON %s", j)
	}
}
