// Package metrics exposes phonepipe's Prometheus metrics: Watermill's router
// metrics plus the pipeline's own (rows by outcome, per-stage handling time,
// import duration, projection lag, poison queue size, webhook attempts,
// WebSocket clients). One Metrics value per process; nothing is global.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/metrics"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/phonepipe/phonepipe/domain"
)

// Namespace prefixes every metric name.
const Namespace = "phonepipe"

// Metrics holds the process's registry and collectors.
type Metrics struct {
	registry         *prometheus.Registry
	rows             *prometheus.CounterVec
	stage            *prometheus.HistogramVec
	importDuration   prometheus.Histogram
	importsAccepted  prometheus.Counter
	webhookAttempts  *prometheus.CounterVec
	websocketClients prometheus.Gauge
}

// New creates the registry with Go and process collectors and phonepipe's own.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		registry: reg,
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "rows_processed_total",
			Help: "Rows counted into imports, by outcome (valid, invalid, failed; duplicate counts repeats among them)."},
			[]string{"outcome"}),
		stage: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "stage_duration_seconds",
			Help:    "Time to handle one message, by pipeline stage (handler).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"stage"}),
		importDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "import_duration_seconds",
			Help: "Time from an import's acceptance to its completion.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 16)}),
		importsAccepted: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "imports_accepted_total",
			Help: "Uploads accepted (202)."}),
		webhookAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "webhook_attempts_total",
			Help: "Webhook delivery attempts, by outcome."}, []string{"outcome"}),
		websocketClients: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "websocket_clients",
			Help: "Live-progress WebSocket clients connected to this process."}),
	}
	reg.MustRegister(m.rows, m.stage, m.importDuration, m.importsAccepted, m.webhookAttempts, m.websocketClients)
	return m
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// InstrumentRouter adds Watermill's router metrics and the stage histogram.
func (m *Metrics) InstrumentRouter(r *message.Router) {
	metrics.NewPrometheusMetricsBuilder(m.registry, Namespace, "").AddPrometheusRouterMetrics(r)
	r.AddMiddleware(m.stageTimer)
}

func (m *Metrics) stageTimer(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		start := time.Now()
		out, err := h(msg)
		m.stage.WithLabelValues(message.HandlerNameFromCtx(msg.Context())).Observe(time.Since(start).Seconds())
		return out, err
	}
}

// JobCounted implements handlers.Observer.
func (m *Metrics) JobCounted(c domain.Counts) {
	m.rows.WithLabelValues("valid").Add(float64(c.Valid))
	m.rows.WithLabelValues("invalid").Add(float64(c.Invalid))
	m.rows.WithLabelValues("failed").Add(float64(c.Failed))
	m.rows.WithLabelValues("duplicate").Add(float64(c.Duplicates))
}

// ImportCompleted implements handlers.Observer.
func (m *Metrics) ImportCompleted(s domain.ImportSummary) {
	if s.CompletedAt != nil {
		m.importDuration.Observe(s.CompletedAt.Sub(s.CreatedAt).Seconds())
	}
}

// ImportAccepted counts an accepted upload.
func (m *Metrics) ImportAccepted() { m.importsAccepted.Inc() }

// WebhookAttempt counts one delivery attempt by outcome.
func (m *Metrics) WebhookAttempt(outcome string) { m.webhookAttempts.WithLabelValues(outcome).Inc() }

// WebSocketClients sets the number of connected live-progress clients.
func (m *Metrics) WebSocketClients(n int) { m.websocketClients.Set(float64(n)) }

// Probe reads a backend figure at scrape time.
type Probe func(ctx context.Context) (float64, error)

// AddGauge registers a gauge whose value is read by probe on every scrape
// (projection lag, poison queue size). Failing probes report nothing.
func (m *Metrics) AddGauge(name, help string, labels prometheus.Labels, probe Probe) {
	m.registry.MustRegister(&probeCollector{
		desc:  prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, nil, labels),
		probe: probe,
	})
}

// probeCollector is a gauge computed at collection time.
type probeCollector struct {
	desc  *prometheus.Desc
	probe Probe
}

func (p *probeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- p.desc }

func (p *probeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	v, err := p.probe(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(p.desc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(p.desc, prometheus.GaugeValue, v)
}
