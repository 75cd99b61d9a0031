package config

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ByteSize is a number of bytes, written in the config as a plain
// integer or with a unit: "64KiB", "64MiB", "1GiB", "512KB" (decimal
// units are powers of 1000, binary ones powers of 1024). One space may
// separate the number from its unit.
type ByteSize int64

// Byte size units.
const (
	B   ByteSize = 1
	KiB          = 1 << 10 * B
	MiB          = 1 << 20 * B
	GiB          = 1 << 30 * B
	TiB          = 1 << 40 * B
	KB           = 1000 * B
	MB           = 1000 * KB
	GB           = 1000 * MB
	TB           = 1000 * GB
)

var byteUnits = map[string]ByteSize{
	"": B, "B": B,
	"KiB": KiB, "MiB": MiB, "GiB": GiB, "TiB": TiB,
	"KB": KB, "MB": MB, "GB": GB, "TB": TB,
}

// ParseByteSize reads a size such as "64KiB" or "1048576".
func ParseByteSize(s string) (ByteSize, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	num, unit := s[:i], strings.TrimPrefix(s[i:], " ")
	if num == "" {
		return 0, fmt.Errorf("expected a size such as 64KiB, 512MB or 1048576, found %q", s)
	}
	mult, ok := byteUnits[unit]
	if strings.HasPrefix(unit, ".") {
		return 0, fmt.Errorf("%q: write a whole number, with a smaller unit if needed (such as 1536MiB)", s)
	}
	if !ok {
		return 0, fmt.Errorf("%q: unknown unit %q (want B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)", s, unit)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/int64(mult) {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return ByteSize(n) * mult, nil
}

// UnmarshalYAMLScalar reads b from YAML.
func (b *ByteSize) UnmarshalYAMLScalar(value, tag string) error {
	if tag != "!!int" && tag != "!!str" {
		return fmt.Errorf("expected a size such as 64KiB, 512MB or 1048576, found %q", value)
	}
	v, err := ParseByteSize(value)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// String renders b with the largest unit that divides it, binary units
// first: "64KiB", "512MB", or in bytes.
func (b ByteSize) String() string {
	for _, u := range []struct {
		name string
		size ByteSize
	}{{"TiB", TiB}, {"TB", TB}, {"GiB", GiB}, {"GB", GB}, {"MiB", MiB}, {"MB", MB}, {"KiB", KiB}, {"KB", KB}} {
		if b != 0 && b%u.size == 0 {
			return strconv.FormatInt(int64(b/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// Int64 returns b in bytes.
func (b ByteSize) Int64() int64 { return int64(b) }

// MarshalJSON renders b as a string such as "64KiB".
func (b ByteSize) MarshalJSON() ([]byte, error) { return json.Marshal(b.String()) }
