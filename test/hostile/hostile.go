// Package hostile makes descriptor files built to hurt a parser: oversized,
// alias bombs, deep nesting, broken encodings and binary junk. The
// end-to-end tests and scripts/hostile-timing.sh feed them to
// `gitmon validate`; every one must be rejected quickly and clearly.
package hostile

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Files returns each hostile descriptor by file name. Each file's stem is
// a valid service name, so only the hostile property can reject it.
func Files() map[string][]byte {
	fs := map[string][]byte{}

	// Over the 256 KiB limit, yet otherwise valid YAML.
	fs["too-big.yaml"] = []byte("service: too-big\nversion: 1.0.0\nparams:\n  blob: \"" + strings.Repeat("A", 300<<10) + "\"\n")

	// The billion laughs: 9 levels of 9 aliases, 9^9 nodes once expanded.
	var b strings.Builder
	b.WriteString("service: billion-laughs\nversion: 1.0.0\nparams:\n  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "  l%d: &l%d [", i, i)
		for j := 0; j < 9; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*l%d", i-1)
		}
		b.WriteString("]\n")
	}
	fs["billion-laughs.yaml"] = []byte(b.String())

	// Nesting one level past the limit of 64, in block style.
	b.Reset()
	b.WriteString("service: deep-65\nversion: 1.0.0\nparams:\n")
	for i := 0; i < 64; i++ {
		fmt.Fprintf(&b, "%sk%d:\n", strings.Repeat(" ", 2*(i+1)), i)
	}
	fmt.Fprintf(&b, "%sleaf: x\n", strings.Repeat(" ", 2*65))
	fs["deep-65.yaml"] = []byte(b.String())

	// Ten thousand levels of flow sequences.
	fs["deep-10000.yaml"] = []byte("service: deep-10000\nversion: 1.0.0\nparams:\n  p: " + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + "\n")

	fs["duplicate-keys.yaml"] = []byte("service: duplicate-keys\nversion: 1.0.0\nport: 80\nport: 443\n")
	fs["invalid-utf8.yaml"] = []byte("service: invalid-utf8\nversion: 1.0.0\nmaintainer: \"\xff\xfe@example.com\"\n")
	fs["latin1.yaml"] = []byte("service: latin1\nversion: 1.0.0\nparams: {owner: \"Jos\xe9\"}\n")

	r := rand.New(rand.NewPCG(1, 2))
	junk := make([]byte, 4096)
	for i := range junk {
		junk[i] = byte(r.IntN(256))
	}
	fs["binary.yaml"] = junk

	// Printable junk without NUL bytes or broken UTF-8: only the YAML
	// parser and the schema can reject it.
	const printable = "abc:-[]{}&*!|>'\"%@`#,? \n\t01"
	text := make([]byte, 8192)
	for i := range text {
		text[i] = printable[r.IntN(len(printable))]
	}
	fs["text-junk.yaml"] = text

	// Keys repeated at the same level thousands of times, just under the
	// token bound: the duplicate check must stay linear.
	b.Reset()
	b.WriteString("service: many-keys\nversion: 1.0.0\nparams:\n")
	for i := 0; i < 9900; i++ {
		fmt.Fprintf(&b, "  k%d: %d\n", i%1000, i)
	}
	fs["many-keys.yaml"] = []byte(b.String())

	// A flow list of tiny items filling the size limit: the YAML library
	// parses such input at a few MB/s, so it is refused before parsing.
	fs["too-complex.yaml"] = []byte("service: too-complex\nversion: 1.0.0\nports: [" + strings.Repeat("1,", 120<<10) + "1]\n")
	return fs
}

// Write writes every hostile file into dir and returns their paths, sorted.
func Write(dir string) ([]string, error) {
	var paths []string
	for name, data := range Files() {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths, nil
}
