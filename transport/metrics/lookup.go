package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// LookupMetrics are the third-party lookup stage's metrics: outcomes by
// status and reason, and the circuit breaker's state.
type LookupMetrics struct {
	outcomes *prometheus.CounterVec
	circuit  prometheus.Gauge
	changes  *prometheus.CounterVec
}

// circuitValue is the gauge's value of a breaker state.
func circuitValue(state string) float64 {
	switch state {
	case "half-open":
		return 1
	case "open":
		return 2
	default:
		return 0
	}
}

// Lookup registers the lookup stage's metrics and returns them. Call it at
// most once per Metrics.
func (m *Metrics) Lookup() *LookupMetrics {
	l := &LookupMetrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "lookup_calls_total",
			Help: "Third-party lookups recorded, by status (ok, failed, skipped) and reason."}, []string{"status", "reason"}),
		circuit: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "lookup_circuit_state",
			Help: "State of the lookup provider's circuit breaker: 0 closed, 1 half-open, 2 open."}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "lookup_circuit_changes_total",
			Help: "Changes of the lookup provider's circuit breaker, by the state changed to."}, []string{"to"}),
	}
	m.registry.MustRegister(l.outcomes, l.circuit, l.changes)
	return l
}

// LookupFinished counts one recorded lookup.
func (l *LookupMetrics) LookupFinished(status, reason string) {
	l.outcomes.WithLabelValues(status, reason).Inc()
}

// CircuitChanged records a change of the circuit breaker.
func (l *LookupMetrics) CircuitChanged(_, to string) {
	l.circuit.Set(circuitValue(to))
	l.changes.WithLabelValues(to).Inc()
}
