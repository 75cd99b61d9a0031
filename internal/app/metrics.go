package app

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/gitmon-dev/gitmon/internal/buildinfo"
)

// metrics are the daemon's Prometheus metrics, on a registry of its own so
// several Apps can run in one test process.
type metrics struct {
	reg           *prometheus.Registry
	polls         *prometheus.CounterVec
	pollErrors    *prometheus.CounterVec
	fetches       *prometheus.CounterVec
	detection     prometheus.Histogram
	records       *prometheus.CounterVec
	stageDuration *prometheus.HistogramVec
	deadLetters   *prometheus.CounterVec
	webhooks      *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gitmon_polls_total",
			Help: "Ref listings of a repository."}, []string{"repository"}),
		pollErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gitmon_poll_errors_total",
			Help: "Polls of a repository that failed, and branches that could not be processed."}, []string{"repository"}),
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gitmon_fetches_total",
			Help: "Incremental fetches of a branch whose tip moved."}, []string{"repository"}),
		detection: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gitmon_detection_latency_seconds",
			Help:    "From a moved tip seen by a poll to the first stage of its release started.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gitmon_records_total",
			Help: "Records by environment and terminal status, each counted once when it ends."}, []string{"environment", "status"}),
		stageDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gitmon_stage_duration_seconds",
			Help: "Stage durations by pipeline and status.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 18)}, []string{"pipeline", "status"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gitmon_outbox_dead_letters_total",
			Help: "Notifications the outbox gave up on (a permanent error, or 24h of failures), by kind."}, []string{"kind"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gitmon_webhooks_total",
			Help: "Webhook deliveries by repository (empty when not one with a webhook) and result: accepted, redelivery, ping, unauthorized, unknown, too_large, method, bad_request."},
			[]string{"repository", "result"}),
	}
	m.reg.MustRegister(m.polls, m.pollErrors, m.fetches, m.detection, m.records, m.stageDuration, m.deadLetters, m.webhooks,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(buildInfoGauge(buildinfo.Get()))
	return m
}

// buildInfoGauge is gitmon_build_info: 1, labelled with which gitmon runs.
func buildInfoGauge(bi buildinfo.Info) prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gitmon_build_info",
		Help: "Always 1; its labels say which gitmon runs, as `gitmon version` does."}, []string{"version", "commit"})
	g.WithLabelValues(bi.Version, bi.Commit).Set(1)
	return g
}
