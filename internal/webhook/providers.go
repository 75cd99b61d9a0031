package webhook

import "net/http"

// provider is how one Git host signs and identifies its deliveries.
type provider struct {
	// header carries the signature: prefix and the hex HMAC-SHA256 of the
	// body under the secret, or (token) the secret itself.
	header, prefix string
	token          bool
	// delivery lists the headers that may carry the delivery's id, the
	// same when it is redelivered, in order of preference.
	delivery []string
	// ping reports a delivery that only tests the hook.
	ping func(http.Header) bool
}

// deliveryID is the delivery's id: the first of the provider's headers
// that is set.
func (p provider) deliveryID(h http.Header) string {
	for _, name := range p.delivery {
		if v := h.Get(name); v != "" {
			return v
		}
	}
	return ""
}

func never(http.Header) bool { return false }

func headerIs(name, value string) func(http.Header) bool {
	return func(h http.Header) bool { return h.Get(name) == value }
}

// providers are the hosts of SPEC §8. Gitea and GitLab send their test
// deliveries as ordinary push events: they are accepted and poll once.
// GitLab keeps Idempotency-Key across a delivery's retries (and sends
// X-Gitlab-Event-UUID on older versions); Bitbucket Cloud names the
// delivery X-Request-UUID, Bitbucket Data Center X-Request-Id.
var providers = map[string]provider{
	"github":    {header: "X-Hub-Signature-256", prefix: "sha256=", delivery: []string{"X-GitHub-Delivery"}, ping: headerIs("X-GitHub-Event", "ping")},
	"gitea":     {header: "X-Gitea-Signature", delivery: []string{"X-Gitea-Delivery"}, ping: never},
	"gitlab":    {header: "X-Gitlab-Token", token: true, delivery: []string{"Idempotency-Key", "X-Gitlab-Event-UUID"}, ping: never},
	"bitbucket": {header: "X-Hub-Signature", prefix: "sha256=", delivery: []string{"X-Request-UUID", "X-Request-Id"}, ping: headerIs("X-Event-Key", "diagnostics:ping")},
	"generic":   {header: "X-Gitmon-Signature", prefix: "sha256=", delivery: []string{"X-Gitmon-Delivery"}, ping: headerIs("X-Gitmon-Event", "ping")},
}
