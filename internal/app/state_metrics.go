package app

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gitmon-dev/gitmon/internal/store"
)

// stateCollector reports what runs where from the store at each scrape
// (SPEC §9): gitmon_service_info (1 per deployed version) and
// gitmon_environment_paused / gitmon_environment_frozen. Two light
// queries a scrape, whatever the history's size.
type stateCollector struct {
	store store.Store
	envs  []string
	log   func(err error)
}

var (
	serviceInfoDesc = prometheus.NewDesc("gitmon_service_info", "The last good version of each service: 1 per deployed version.",
		[]string{"repository", "environment", "service", "version"}, nil)
	pausedDesc = prometheus.NewDesc("gitmon_environment_paused", "1 while an environment is paused (force-push or deleted branch) in some repository.",
		[]string{"environment"}, nil)
	frozenDesc = prometheus.NewDesc("gitmon_environment_frozen", "1 while an environment is frozen or halted.",
		[]string{"environment"}, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- serviceInfoDesc
	ch <- pausedDesc
	ch <- frozenDesc
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	deployed, err := c.store.Deployed(ctx)
	if err != nil {
		c.log(err)
	}
	for _, d := range deployed {
		ch <- prometheus.MustNewConstMetric(serviceInfoDesc, prometheus.GaugeValue, 1, d.Repository, d.Environment, d.Service, d.Version)
	}
	branches, err := c.store.Branches(ctx)
	if err != nil {
		c.log(err)
	}
	paused := map[string]bool{}
	for _, b := range branches {
		if b.Paused != "" {
			paused[b.Environment] = true
		}
	}
	freezes, err := c.store.Freezes(ctx)
	if err != nil {
		c.log(err)
	}
	now := time.Now()
	for _, env := range c.envs {
		ch <- prometheus.MustNewConstMetric(pausedDesc, prometheus.GaugeValue, gaugeOf(paused[env]), env)
		_, frozen := activeFreeze(freezes, env, now)
		ch <- prometheus.MustNewConstMetric(frozenDesc, prometheus.GaugeValue, gaugeOf(frozen), env)
	}
}

func gaugeOf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
