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
	// Actions holds the counters per QingCloud action. Names outside the typed API are summed under
	// OtherAction.
	Actions map[string]UpstreamActionStats
	// Budget is the client-side quota budget; nil when the client has none (or it is unlimited).
	Budget *BudgetStats
}

// UpstreamActionStats are the counters of one action of one upstream client.
type UpstreamActionStats struct {
	// Calls counts calls asked of the client (before coalescing, retries and the budget).
	Calls int64
	// Retries counts repeated attempts after retryable failures.
	Retries int64
	// Coalesced counts calls that shared another identical in-flight call instead of going upstream.
	Coalesced int64
	// Refused counts calls (or retries) the quota budget refused before sending.
	Refused int64
}

// BudgetStats is the state of a client-side quota budget.
type BudgetStats struct {
	// Limit is the number of requests per window, Remaining those left in the current window.
	Limit, Remaining float64
	// Classes holds the figures per call class ("user", "poll").
	Classes map[string]BudgetClassStats
}

// BudgetClassStats are the figures of one call class of a quota budget.
type BudgetClassStats struct {
	// Remaining is how many more requests of the class would be admitted now.
	Remaining float64
	// Refused counts requests of the class refused since the budget was made.
	Refused int64
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
	MetricUpstreamRefused   = "qingcloud_upstream_refused_calls_total"
	MetricBudgetLimit       = "qingcloud_quota_budget_limit"
	MetricBudgetRemaining   = "qingcloud_quota_budget_remaining"
	MetricBudgetClassLeft   = "qingcloud_quota_budget_class_remaining"
	MetricBudgetRefused     = "qingcloud_quota_budget_refused_total"
	MetricWatchStreams      = "qingcloud_watch_streams"
	MetricWatchPollers      = "qingcloud_watch_pollers"
	MetricWatchTargets      = "qingcloud_watch_targets"
	MetricWatchCalls        = "qingcloud_watch_upstream_calls_total"
	MetricWatchFailures     = "qingcloud_watch_upstream_failures_total"
	MetricWatchSaved        = "qingcloud_watch_upstream_calls_saved_total"
	MetricWatchEvents       = "qingcloud_watch_events_total"
)

var (
	descUpCalls     = prometheus.NewDesc(MetricUpstreamCalls, "Calls asked of the upstream client, before coalescing, retries and the quota budget.", []string{"profile", "action"}, nil)
	descUpRetries   = prometheus.NewDesc(MetricUpstreamRetries, "Upstream attempts repeated after a retryable failure.", []string{"profile", "action"}, nil)
	descUpCoalesced = prometheus.NewDesc(MetricUpstreamCoalesced, "Upstream calls saved by coalescing identical concurrent reads.", []string{"profile", "action"}, nil)
	descUpRefused   = prometheus.NewDesc(MetricUpstreamRefused, "Calls (or retries) refused locally because the quota budget was spent.", []string{"profile", "action"}, nil)
	descBudgetLimit = prometheus.NewDesc(MetricBudgetLimit, "Requests allowed per quota budget window.", []string{"profile"}, nil)
	descBudgetLeft  = prometheus.NewDesc(MetricBudgetRemaining, "Requests left in the current quota budget window.", []string{"profile"}, nil)
	descBudgetClass = prometheus.NewDesc(MetricBudgetClassLeft, "Requests of a call class (user, poll) the quota budget would admit now.", []string{"profile", "class"}, nil)
	descBudgetRef   = prometheus.NewDesc(MetricBudgetRefused, "Requests refused by the quota budget, by call class.", []string{"profile", "class"}, nil)
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
		for _, d := range []*prometheus.Desc{descUpCalls, descUpRetries, descUpCoalesced, descUpRefused, descBudgetLimit, descBudgetLeft, descBudgetClass, descBudgetRef} {
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
		c.collectUpstream(ch)
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

// collectUpstream emits the upstream figures, merging what would otherwise be duplicate series (two
// snapshots of one profile, several unknown actions): a duplicate would fail the whole scrape.
func (c *StatsCollector) collectUpstream(ch chan<- prometheus.Metric) {
	type key struct{ profile, action string }
	actions := map[key]*UpstreamActionStats{}
	budgets := map[string]*BudgetStats{}
	for _, s := range c.Upstream() {
		p := s.Profile
		if p == "" {
			p = "default"
		}
		for name, a := range s.Actions {
			k := key{p, ActionLabel(name)}
			sum := actions[k]
			if sum == nil {
				sum = &UpstreamActionStats{}
				actions[k] = sum
			}
			sum.Calls += a.Calls
			sum.Retries += a.Retries
			sum.Coalesced += a.Coalesced
			sum.Refused += a.Refused
		}
		if s.Budget != nil && budgets[p] == nil {
			budgets[p] = s.Budget
		}
	}
	for k, a := range actions {
		ch <- prometheus.MustNewConstMetric(descUpCalls, prometheus.CounterValue, float64(a.Calls), k.profile, k.action)
		ch <- prometheus.MustNewConstMetric(descUpRetries, prometheus.CounterValue, float64(a.Retries), k.profile, k.action)
		ch <- prometheus.MustNewConstMetric(descUpCoalesced, prometheus.CounterValue, float64(a.Coalesced), k.profile, k.action)
		ch <- prometheus.MustNewConstMetric(descUpRefused, prometheus.CounterValue, float64(a.Refused), k.profile, k.action)
	}
	for p, b := range budgets {
		ch <- prometheus.MustNewConstMetric(descBudgetLimit, prometheus.GaugeValue, b.Limit, p)
		ch <- prometheus.MustNewConstMetric(descBudgetLeft, prometheus.GaugeValue, b.Remaining, p)
		for class, cs := range b.Classes {
			if class != "user" && class != "poll" {
				continue // bounded label set
			}
			ch <- prometheus.MustNewConstMetric(descBudgetClass, prometheus.GaugeValue, cs.Remaining, p, class)
			ch <- prometheus.MustNewConstMetric(descBudgetRef, prometheus.CounterValue, float64(cs.Refused), p, class)
		}
	}
}
