package metrics

import "github.com/prometheus/client_golang/prometheus"

// DeadlineMetrics are the import deadline watchdog's metrics.
type DeadlineMetrics struct {
	rows prometheus.Counter
}

// ImportDeadline registers the import deadline watchdog's metrics
// (phonepipe_import_deadline_rows_failed_total). Call it once per process.
func (m *Metrics) ImportDeadline() *DeadlineMetrics {
	d := &DeadlineMetrics{rows: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace,
		Name: "import_deadline_rows_failed_total",
		Help: "Rows failed as PROCESSING_FAILED because their import's deadline (--import-deadline) passed before they were validated."})}
	m.registry.MustRegister(d.rows)
	return d
}

// RowsFailedByDeadline implements handlers.DeadlineObserver.
func (d *DeadlineMetrics) RowsFailedByDeadline(n int) { d.rows.Add(float64(n)) }
