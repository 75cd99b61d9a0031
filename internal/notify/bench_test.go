package notify

import (
	"fmt"
	"testing"

	"github.com/gitmon-dev/gitmon/internal/store"
)

// BenchmarkDecodePayload measures what the redaction at the boundary adds
// to a send: decoding a failure alert's Slack payload as a sender does,
// against a plain json.Unmarshal (the baseline), with 20 secrets.
func BenchmarkDecodePayload(b *testing.B) {
	rec := testRecord(store.StatusFailed)
	it, err := SlackItem(rec.ID, EventFinished, "#qa", RecordFinished(rec, Options{Secrets: []string{canary}}))
	if err != nil {
		b.Fatal(err)
	}
	var secrets []string
	for i := range 20 {
		secrets = append(secrets, fmt.Sprintf("secret-value-%02d-%s", i, canary))
	}
	b.Run("baseline=unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var p SlackPayload
			if err := decodeRedacted(it.Payload, nil, &p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("redacted", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var p SlackPayload
			if err := decodeRedacted(it.Payload, secrets, &p); err != nil {
				b.Fatal(err)
			}
		}
	})
}
