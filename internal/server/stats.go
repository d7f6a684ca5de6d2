package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/telemetry"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/watch"
)

// The watch hub's metrics (docs/observability.md), read from watch.Hub.Stats at every scrape.
var (
	descWStreams  = prometheus.NewDesc(telemetry.MetricWatchStreams, "Open watch streams (WatchService).", nil, nil)
	descWPollers  = prometheus.NewDesc(telemetry.MetricWatchPollers, "Pollers serving the open watch streams.", nil, nil)
	descWTargets  = prometheus.NewDesc(telemetry.MetricWatchTargets, "Distinct jobs and resources being watched.", []string{"kind"}, nil)
	descWCalls    = prometheus.NewDesc(telemetry.MetricWatchCalls, "Upstream Describe calls made by the watch pollers.", nil, nil)
	descWFailures = prometheus.NewDesc(telemetry.MetricWatchFailures, "Watch poller upstream calls that failed.", nil, nil)
	descWSaved    = prometheus.NewDesc(telemetry.MetricWatchSaved, "Upstream calls saved by batching watched ids into shared polls.", nil, nil)
	descWEvents   = prometheus.NewDesc(telemetry.MetricWatchEvents, "Messages sent to watch streams.", nil, nil)
)

// watchCollector is a prometheus.Collector of a watch hub's figures (Config.WatchStats).
type watchCollector func() watch.Stats

// Describe implements prometheus.Collector.
func (c watchCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWStreams, descWPollers, descWTargets, descWCalls, descWFailures, descWSaved, descWEvents} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c watchCollector) Collect(ch chan<- prometheus.Metric) {
	w := c()
	ch <- prometheus.MustNewConstMetric(descWStreams, prometheus.GaugeValue, float64(w.Watches))
	ch <- prometheus.MustNewConstMetric(descWPollers, prometheus.GaugeValue, float64(w.Pollers))
	ch <- prometheus.MustNewConstMetric(descWTargets, prometheus.GaugeValue, float64(w.Jobs), "job")
	ch <- prometheus.MustNewConstMetric(descWTargets, prometheus.GaugeValue, float64(w.Resources), "resource")
	ch <- prometheus.MustNewConstMetric(descWCalls, prometheus.CounterValue, float64(w.Calls))
	ch <- prometheus.MustNewConstMetric(descWFailures, prometheus.CounterValue, float64(w.Failures))
	ch <- prometheus.MustNewConstMetric(descWSaved, prometheus.CounterValue, float64(w.Saved))
	ch <- prometheus.MustNewConstMetric(descWEvents, prometheus.CounterValue, float64(w.Events))
}
