package descriptors

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// Quantity is a Kubernetes resource quantity such as "500m", "2", "512Mi"
// or "1e3". It keeps the text it was written as and compares by value, so
// "512Mi" equals "536870912". The zero Quantity is unset.
//
// gitmon parses quantities itself rather than importing
// k8s.io/apimachinery: it needs only parse-and-compare, and that module
// would triple the binary's dependencies.
type Quantity struct {
	text  string
	value *big.Rat
	// milli is the value in thousandths when that is a whole number that
	// fits an int64 (exact is then true), so most comparisons need no
	// big-number arithmetic.
	milli int64
	exact bool
}

func newQuantity(text string, v *big.Rat) Quantity {
	q := Quantity{text: text, value: v}
	// v is in lowest terms, so v×1000 is whole when the denominator
	// divides 1000.
	num, den := v.Num(), v.Denom()
	if num.IsInt64() && den.IsInt64() && 1000%den.Int64() == 0 {
		n, f := num.Int64(), 1000/den.Int64()
		if n <= math.MaxInt64/f {
			q.milli, q.exact = n*f, true
		}
	}
	return q
}

var suffixes = map[string]*big.Rat{
	"n": big.NewRat(1, 1_000_000_000), "u": big.NewRat(1, 1_000_000), "m": big.NewRat(1, 1000),
	"":  big.NewRat(1, 1),
	"k": big.NewRat(1_000, 1), "M": big.NewRat(1_000_000, 1), "G": big.NewRat(1_000_000_000, 1),
	"T": new(big.Rat).SetInt64(1_000_000_000_000), "P": new(big.Rat).SetInt64(1_000_000_000_000_000),
	"E":  new(big.Rat).SetInt64(1_000_000_000_000_000_000),
	"Ki": big.NewRat(1<<10, 1), "Mi": big.NewRat(1<<20, 1), "Gi": big.NewRat(1<<30, 1),
	"Ti": new(big.Rat).SetInt64(1 << 40), "Pi": new(big.Rat).SetInt64(1 << 50), "Ei": new(big.Rat).SetInt64(1 << 60),
}

// ParseQuantity parses s in Kubernetes quantity syntax: a non-negative
// decimal number followed by a binary suffix (Ki Mi Gi Ti Pi Ei), a
// decimal suffix (n u m k M G T P E), or an exponent (e3, E-2).
func ParseQuantity(s string) (Quantity, error) {
	if s == "" {
		return Quantity{}, fmt.Errorf("empty quantity")
	}
	if len(s) > 64 {
		return Quantity{}, fmt.Errorf("quantity %.20q… is too long", s)
	}
	body := strings.TrimPrefix(s, "+")
	if strings.HasPrefix(body, "-") {
		return Quantity{}, fmt.Errorf("quantity %q must not be negative", s)
	}
	// Split the number from its suffix.
	i := 0
	dot := false
	for i < len(body) && (body[i] >= '0' && body[i] <= '9' || body[i] == '.' && !dot) {
		if body[i] == '.' {
			dot = true
		}
		i++
	}
	num, suffix := body[:i], body[i:]
	if num == "" || num == "." {
		return Quantity{}, fmt.Errorf("quantity %q does not start with a number", s)
	}
	v, ok := new(big.Rat).SetString(num)
	if !ok {
		return Quantity{}, fmt.Errorf("quantity %q: bad number", s)
	}
	if mult, ok := suffixes[suffix]; ok {
		v.Mul(v, mult)
	} else if suffix[0] == 'e' || suffix[0] == 'E' {
		// At most two decimal digits after one optional sign.
		exp := suffix[1:]
		neg := strings.HasPrefix(exp, "-")
		if neg || strings.HasPrefix(exp, "+") {
			exp = exp[1:]
		}
		if exp == "" || len(exp) > 2 || strings.Trim(exp, "0123456789") != "" {
			return Quantity{}, fmt.Errorf("quantity %q: bad exponent", s)
		}
		n, _ := strconv.Atoi(exp)
		p := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
		if neg {
			v.Quo(v, new(big.Rat).SetInt(p))
		} else {
			v.Mul(v, new(big.Rat).SetInt(p))
		}
	} else {
		return Quantity{}, fmt.Errorf("quantity %q: unknown suffix %q (want one of n u m k M G T P E Ki Mi Gi Ti Pi Ei)", s, suffix)
	}
	return newQuantity(s, v), nil
}

// MustParseQuantity is ParseQuantity for constants; it panics on error.
func MustParseQuantity(s string) Quantity {
	q, err := ParseQuantity(s)
	if err != nil {
		panic(err)
	}
	return q
}

// IsZero reports whether q is unset.
func (q Quantity) IsZero() bool { return q.value == nil }

// String returns the text q was written as.
func (q Quantity) String() string { return q.text }

// Cmp compares q and o by value: -1, 0 or +1. Unset sorts first.
func (q Quantity) Cmp(o Quantity) int {
	switch {
	case q.value == nil && o.value == nil:
		return 0
	case q.value == nil:
		return -1
	case o.value == nil:
		return 1
	case q.exact && o.exact:
		switch {
		case q.milli < o.milli:
			return -1
		case q.milli > o.milli:
			return 1
		}
		return 0
	}
	return q.value.Cmp(o.value)
}

// Sign reports whether q is zero (0) or positive (1); unset is 0.
func (q Quantity) Sign() int {
	if q.value == nil {
		return 0
	}
	return q.value.Sign()
}

// Canonical renders the value in base units without a suffix, rounded
// to the nearest thousandth, for messages that compare two quantities.
func (q Quantity) Canonical() string {
	if q.value == nil {
		return ""
	}
	if q.value.IsInt() {
		return q.value.Num().String()
	}
	return strings.TrimRight(strings.TrimRight(q.value.FloatString(3), "0"), ".")
}

// UnmarshalYAMLScalar reads q from YAML.
func (q *Quantity) UnmarshalYAMLScalar(value, tag string) error {
	p, err := ParseQuantity(value)
	if err != nil {
		return err
	}
	*q = p
	return nil
}

// MarshalJSON renders q as its text.
func (q Quantity) MarshalJSON() ([]byte, error) { return json.Marshal(q.text) }

// UnmarshalJSON reads q from a JSON string or number.
func (q *Quantity) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		s = string(b)
	}
	if s == "" || s == "null" {
		*q = Quantity{}
		return nil
	}
	p, err := ParseQuantity(s)
	if err != nil {
		return err
	}
	*q = p
	return nil
}
