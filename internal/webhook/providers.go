package webhook

import "net/http"

// provider is how one Git host signs and identifies its deliveries.
type provider struct {
	// header carries the signature: prefix and the hex HMAC-SHA256 of the
	// body under the secret, or (token) the secret itself.
	header, prefix string
	token          bool
	// delivery carries the delivery's id, the same when it is redelivered.
	delivery string
	// ping reports a delivery that only tests the hook.
	ping func(http.Header) bool
}

func never(http.Header) bool { return false }

func headerIs(name, value string) func(http.Header) bool {
	return func(h http.Header) bool { return h.Get(name) == value }
}

// providers are the hosts of SPEC §8. Gitea and GitLab send their test
// deliveries as ordinary push events: they are accepted and poll once.
var providers = map[string]provider{
	"github":    {header: "X-Hub-Signature-256", prefix: "sha256=", delivery: "X-GitHub-Delivery", ping: headerIs("X-GitHub-Event", "ping")},
	"gitea":     {header: "X-Gitea-Signature", delivery: "X-Gitea-Delivery", ping: never},
	"gitlab":    {header: "X-Gitlab-Token", token: true, delivery: "X-Gitlab-Event-UUID", ping: never},
	"bitbucket": {header: "X-Hub-Signature", prefix: "sha256=", delivery: "X-Request-UUID", ping: headerIs("X-Event-Key", "diagnostics:ping")},
	"generic":   {header: "X-Gitmon-Signature", prefix: "sha256=", delivery: "X-Gitmon-Delivery", ping: headerIs("X-Gitmon-Event", "ping")},
}
