package app

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gitmon-dev/gitmon/internal/webhook"
)

// serveHTTP starts /healthz, /readyz, /metrics and the webhooks.
func (a *App) serveHTTP() (*http.Server, error) {
	ln := a.opts.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", a.cfg.Listen); err != nil {
			return nil, err
		}
		a.opts.Listener = ln
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	// /readyz: 200 once every repository was polled; "errors" are the
	// failing repositories, "runners" the pipelines whose stages fail
	// now, such as those of a Jenkins that cannot be reached. A failing
	// runner does not make gitmon unready: every other pipeline runs.
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ready, errs := a.Ready()
		w.Header().Set("Content-Type", "application/json")
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(map[string]any{"ready": ready, "errors": errs, "runners": a.runnerErrors()})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{}))
	// Every method reaches the handler, which answers 405 itself.
	mux.Handle("/webhooks/{repository}", a.webhooks())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("http server", keyErr, err)
		}
	}()
	return srv, nil
}

// webhooks is the handler of POST /webhooks/{repository}: a genuine
// delivery asks for a poll of that repository now (Trigger coalesces it
// with any poll pending or running).
func (a *App) webhooks() http.Handler {
	hooks := map[string]webhook.Hook{}
	for _, r := range a.cfg.Repositories {
		if r.Webhook != nil {
			hooks[r.Name] = webhook.Hook{Provider: r.Webhook.Provider, Secret: []byte(r.Webhook.Secret.Value())}
		}
	}
	return webhook.New(hooks, webhook.Options{
		Trigger: a.Trigger,
		Observe: func(repo, result string) { a.metrics.webhooks.WithLabelValues(repo, result).Inc() },
	})
}
