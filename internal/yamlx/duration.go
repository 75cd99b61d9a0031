package yamlx

import (
	"fmt"
	"math/big"
	"strings"
	"time"
)

// Day is the unit d of ParseDuration: 24 hours of elapsed time.
const Day = 24 * time.Hour

// ParseDuration reads a duration as time.ParseDuration does, with d for
// days where a period is meant (SPEC §3): "7d", "1d12h", "1.5d", "90s".
func ParseDuration(s string) (time.Duration, error) {
	if !strings.Contains(s, "d") {
		return time.ParseDuration(s)
	}
	// Write each <number>d as hours, exactly, and let time.ParseDuration
	// read the rest (and catch overflow).
	var b strings.Builder
	rest := s
	if rest != "" && (rest[0] == '-' || rest[0] == '+') {
		b.WriteByte(rest[0])
		rest = rest[1:]
	}
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] == '.' || ('0' <= rest[i] && rest[i] <= '9')) {
			i++
		}
		j := i
		for j < len(rest) && rest[j] != '.' && (rest[j] < '0' || rest[j] > '9') {
			j++
		}
		num, unit := rest[:i], rest[i:j]
		rest = rest[j:]
		if unit != "d" {
			b.WriteString(num + unit)
			continue
		}
		days, ok := new(big.Rat).SetString(num)
		if !ok || len(num) > 30 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		b.WriteString(days.Mul(days, big.NewRat(24, 1)).FloatString(12) + "h")
	}
	d, err := time.ParseDuration(b.String())
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	return d, nil
}
