package notify

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/gitmon-dev/gitmon/runners"
)

// NewRedactor returns a func that replaces every secret in a text by
// "<redacted>": runners.Redact, the one redaction gitmon has, which also
// hides overlapping secrets whole. Empty secrets are ignored.
func NewRedactor(secrets []string) func(string) string {
	ss := append([]string(nil), secrets...)
	return func(s string) string { return runners.Redact(s, ss) }
}

// errText is the text of a delivery error as the outbox stores and logs
// it: redacted, and at most maxErrText bytes.
func errText(err error, secrets []string) string {
	s := runners.Redact(err.Error(), secrets)
	if len(s) > maxErrText {
		n := maxErrText
		for n > 0 && !isRuneStart(s[n]) {
			n--
		}
		s = s[:n] + "…"
	}
	return s
}

const maxErrText = 2000

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// decodeRedacted decodes an outbox payload into v with every string in
// it redacted first, so that what a sender sends is redacted whatever
// wrote the payload. It works on the decoded strings, not on the JSON
// text, where escaping could hide a secret.
func decodeRedacted(payload []byte, secrets []string, v any) error {
	if len(secrets) == 0 {
		return json.Unmarshal(payload, v)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the JSON value")
	}
	b, err := json.Marshal(redactTree(tree, secrets))
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func redactTree(v any, secrets []string) any {
	switch x := v.(type) {
	case string:
		return runners.Redact(x, secrets)
	case []any:
		for i := range x {
			x[i] = redactTree(x[i], secrets)
		}
	case map[string]any:
		for k := range x {
			x[k] = redactTree(x[k], secrets)
		}
	}
	return v
}
