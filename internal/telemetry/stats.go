package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
)

// UpstreamStats is a snapshot of one upstream client's cumulative figures (one per credential
// profile), as the backend reports them. The server reads them at every scrape through the function
// in its Config, so this package does not depend on the backend's internals.
type UpstreamStats struct {
	// Profile names the credential profile ("default" for a single-account server). It is a label:
	// never an access key id or anything secret.
	Profile string
	// Calls counts calls asked of the client (before coalescing, retries and the budget).
	Calls int64
	// Retries counts repeated attempts after retryable failures.
	Retries int64
	// Coalesced counts calls that shared another identical in-flight call instead of going upstream.
	Coalesced int64
	// Budget is the client-side quota budget; nil when the client has none.
	Budget *BudgetStats
}

// BudgetStats is the state of a client-side quota budget.
type BudgetStats struct {
	// Remaining is the number of requests left in the current window; Limit the window's size.
	Remaining, Limit float64
	// Rejected counts calls refused locally (RESOURCE_EXHAUSTED) because the budget was spent.
	Rejected int64
}

// WatchStats is a snapshot of the watch hub's figures.
type WatchStats struct {
	// Watches and Pollers are the open watch streams and the pollers serving them now; Jobs and
	// Resources the distinct ids being followed.
	Watches, Pollers, Jobs, Resources int
	// Calls counts the pollers' upstream calls; Failures those that failed.
	Calls, Failures int64
	// Saved counts upstream calls saved by batching: those one call per watcher and round would have
	// made, less Calls. Zero when the hub does not report it.
	Saved int64
	// Events counts messages sent to watchers.
	Events int64
}

// Metric names of the StatsCollector.
const (
	MetricUpstreamCalls     = "qingcloud_upstream_calls_total"
	MetricUpstreamRetries   = "qingcloud_upstream_retries_total"
	MetricUpstreamCoalesced = "qingcloud_upstream_coalesced_calls_total"
	MetricBudgetRemaining   = "qingcloud_quota_budget_remaining"
	MetricBudgetLimit       = "qingcloud_quota_budget_limit"
	MetricBudgetRejected    = "qingcloud_quota_budget_rejected_total"
	MetricWatchStreams      = "qingcloud_watch_streams"
	MetricWatchPollers      = "qingcloud_watch_pollers"
	MetricWatchTargets      = "qingcloud_watch_targets"
	MetricWatchCalls        = "qingcloud_watch_upstream_calls_total"
	MetricWatchFailures     = "qingcloud_watch_upstream_failures_total"
	MetricWatchSaved        = "qingcloud_watch_upstream_calls_saved_total"
	MetricWatchEvents       = "qingcloud_watch_events_total"
)

var (
	descUpCalls     = prometheus.NewDesc(MetricUpstreamCalls, "Calls asked of the upstream client, before coalescing, retries and the quota budget.", []string{"profile"}, nil)
	descUpRetries   = prometheus.NewDesc(MetricUpstreamRetries, "Upstream attempts repeated after a retryable failure.", []string{"profile"}, nil)
	descUpCoalesced = prometheus.NewDesc(MetricUpstreamCoalesced, "Upstream calls saved by coalescing identical concurrent reads.", []string{"profile"}, nil)
	descBudgetLeft  = prometheus.NewDesc(MetricBudgetRemaining, "Requests left in the current quota budget window.", []string{"profile"}, nil)
	descBudgetLimit = prometheus.NewDesc(MetricBudgetLimit, "Requests allowed per quota budget window.", []string{"profile"}, nil)
	descBudgetRej   = prometheus.NewDesc(MetricBudgetRejected, "Calls refused locally with RESOURCE_EXHAUSTED because the quota budget was spent.", []string{"profile"}, nil)
	descWStreams    = prometheus.NewDesc(MetricWatchStreams, "Open watch streams (WatchService).", nil, nil)
	descWPollers    = prometheus.NewDesc(MetricWatchPollers, "Pollers serving the open watch streams.", nil, nil)
	descWTargets    = prometheus.NewDesc(MetricWatchTargets, "Distinct jobs and resources being watched.", []string{"kind"}, nil)
	descWCalls      = prometheus.NewDesc(MetricWatchCalls, "Upstream Describe calls made by the watch pollers.", nil, nil)
	descWFailures   = prometheus.NewDesc(MetricWatchFailures, "Watch poller upstream calls that failed.", nil, nil)
	descWSaved      = prometheus.NewDesc(MetricWatchSaved, "Upstream calls saved by batching watched ids into shared polls.", nil, nil)
	descWEvents     = prometheus.NewDesc(MetricWatchEvents, "Messages sent to watch streams.", nil, nil)
)

// StatsCollector is a prometheus.Collector that reads the upstream and watch figures at scrape time.
// Either function may be nil.
type StatsCollector struct {
	Upstream func() []UpstreamStats
	Watch    func() WatchStats
}

// Describe implements prometheus.Collector.
func (c *StatsCollector) Describe(ch chan<- *prometheus.Desc) {
	if c.Upstream != nil {
		for _, d := range []*prometheus.Desc{descUpCalls, descUpRetries, descUpCoalesced, descBudgetLeft, descBudgetLimit, descBudgetRej} {
			ch <- d
		}
	}
	if c.Watch != nil {
		for _, d := range []*prometheus.Desc{descWStreams, descWPollers, descWTargets, descWCalls, descWFailures, descWSaved, descWEvents} {
			ch <- d
		}
	}
}

// Collect implements prometheus.Collector.
func (c *StatsCollector) Collect(ch chan<- prometheus.Metric) {
	if c.Upstream != nil {
		seen := map[string]bool{}
		for _, s := range c.Upstream() {
			p := s.Profile
			if p == "" {
				p = "default"
			}
			if seen[p] { // a duplicate profile would fail the whole scrape
				continue
			}
			seen[p] = true
			ch <- prometheus.MustNewConstMetric(descUpCalls, prometheus.CounterValue, float64(s.Calls), p)
			ch <- prometheus.MustNewConstMetric(descUpRetries, prometheus.CounterValue, float64(s.Retries), p)
			ch <- prometheus.MustNewConstMetric(descUpCoalesced, prometheus.CounterValue, float64(s.Coalesced), p)
			if b := s.Budget; b != nil {
				ch <- prometheus.MustNewConstMetric(descBudgetLeft, prometheus.GaugeValue, b.Remaining, p)
				ch <- prometheus.MustNewConstMetric(descBudgetLimit, prometheus.GaugeValue, b.Limit, p)
				ch <- prometheus.MustNewConstMetric(descBudgetRej, prometheus.CounterValue, float64(b.Rejected), p)
			}
		}
	}
	if c.Watch != nil {
		w := c.Watch()
		ch <- prometheus.MustNewConstMetric(descWStreams, prometheus.GaugeValue, float64(w.Watches))
		ch <- prometheus.MustNewConstMetric(descWPollers, prometheus.GaugeValue, float64(w.Pollers))
		ch <- prometheus.MustNewConstMetric(descWTargets, prometheus.GaugeValue, float64(w.Jobs), "job")
		ch <- prometheus.MustNewConstMetric(descWTargets, prometheus.GaugeValue, float64(w.Resources), "resource")
		ch <- prometheus.MustNewConstMetric(descWCalls, prometheus.CounterValue, float64(w.Calls))
		ch <- prometheus.MustNewConstMetric(descWFailures, prometheus.CounterValue, float64(w.Failures))
		ch <- prometheus.MustNewConstMetric(descWSaved, prometheus.CounterValue, float64(w.Saved))
		ch <- prometheus.MustNewConstMetric(descWEvents, prometheus.CounterValue, float64(w.Events))
	}
}
