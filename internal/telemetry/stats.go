package telemetry

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/budget"
)

// Metric names of the figures read at scrape time: the quota budgets (Telemetry.Upstream) and the
// watch hub (collected by package server from watch.Hub.Stats).
const (
	MetricBudgetLimit     = "qingcloud_quota_budget_limit"
	MetricBudgetRemaining = "qingcloud_quota_budget_remaining"
	MetricBudgetClassLeft = "qingcloud_quota_budget_class_remaining"
	MetricBudgetRefused   = "qingcloud_quota_budget_refused_total"
	MetricWatchStreams    = "qingcloud_watch_streams"
	MetricWatchPollers    = "qingcloud_watch_pollers"
	MetricWatchTargets    = "qingcloud_watch_targets"
	MetricWatchCalls      = "qingcloud_watch_upstream_calls_total"
	MetricWatchFailures   = "qingcloud_watch_upstream_failures_total"
	MetricWatchSaved      = "qingcloud_watch_upstream_calls_saved_total"
	MetricWatchEvents     = "qingcloud_watch_events_total"
)

var (
	descBudgetLimit = prometheus.NewDesc(MetricBudgetLimit, "Requests allowed per quota budget window.", []string{"profile"}, nil)
	descBudgetLeft  = prometheus.NewDesc(MetricBudgetRemaining, "Requests left in the current quota budget window.", []string{"profile"}, nil)
	descBudgetClass = prometheus.NewDesc(MetricBudgetClassLeft, "Requests of a call class (user, poll) the quota budget would admit now.", []string{"profile", "class"}, nil)
	descBudgetRef   = prometheus.NewDesc(MetricBudgetRefused, "Requests refused by the quota budget, by call class.", []string{"profile", "class"}, nil)
)

// budgets is a prometheus.Collector of the quota budgets of the profiles, read at scrape time.
type budgets struct {
	mu        sync.Mutex
	byProfile map[string]*budget.Budget
}

// add makes the budget of profile b; the first budget given for a profile stays.
func (c *budgets) add(profile string, b *budget.Budget) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byProfile == nil {
		c.byProfile = map[string]*budget.Budget{}
	}
	if c.byProfile[profile] == nil {
		c.byProfile[profile] = b
	}
}

// Describe implements prometheus.Collector.
func (c *budgets) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBudgetLimit, descBudgetLeft, descBudgetClass, descBudgetRef} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. Unlimited budgets are left out.
func (c *budgets) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p, b := range c.byProfile {
		st := b.Stats()
		if st.Limit < 0 {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descBudgetLimit, prometheus.GaugeValue, float64(st.Limit), p)
		ch <- prometheus.MustNewConstMetric(descBudgetLeft, prometheus.GaugeValue, float64(st.Remaining), p)
		for class, cs := range st.Classes {
			if class != "user" && class != "poll" {
				continue // bounded label set
			}
			ch <- prometheus.MustNewConstMetric(descBudgetClass, prometheus.GaugeValue, float64(cs.Remaining), p, class)
			ch <- prometheus.MustNewConstMetric(descBudgetRef, prometheus.CounterValue, float64(cs.Refused), p, class)
		}
	}
}
