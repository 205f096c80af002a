package app_test

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
)

func scrape(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, b)
	}
	return string(b)
}

// metricValue finds one sample, e.g. `phonepipe_rows_processed_total{outcome="valid"}`.
func metricValue(t *testing.T, body, sample string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no sample %s in /metrics", sample)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestMetricsShowTheImport checks the service's own metrics after an
// import, on every backend (consumer lag comes from the SQL offsets tables
// or from Kafka's committed group offsets).
func TestMetricsShowTheImport(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg app.Config) {
		a := startApp(t, cfg)
		id := mustAccept(t, a.URL(), csvOf(mixedRows(1000, 11)))
		sum := waitCompleted(t, a.URL(), id, 2*time.Minute)
		body := scrape(t, a.URL())
		for sample, want := range map[string]int{
			`phonepipe_rows_processed_total{outcome="valid"}`:     sum.Valid,
			`phonepipe_rows_processed_total{outcome="invalid"}`:   sum.Invalid,
			`phonepipe_rows_processed_total{outcome="duplicate"}`: sum.Duplicates,
			`phonepipe_imports_accepted_total`:                    1,
			`phonepipe_import_duration_seconds_count`:             1,
			`phonepipe_poison_queue_messages`:                     0,
		} {
			if got := metricValue(t, body, sample); int(got) != want {
				t.Errorf("%s = %v, want %d", sample, got, want)
			}
		}
		for _, sample := range []string{
			`phonepipe_stage_duration_seconds_count{stage="validate"}`,
			`phonepipe_stage_duration_seconds_count{stage="project"}`,
			`phonepipe_handler_execution_time_seconds_count{handler_name="aggregate",success="true"}`,
		} {
			if metricValue(t, body, sample) <= 0 {
				t.Errorf("%s is zero after an import", sample)
			}
		}
		// Every consumer catches up once the import is complete (Kafka
		// commits group offsets a moment after the messages are handled).
		for _, consumer := range []string{"split", "validate", "project", "stats", "aggregate"} {
			sample := `phonepipe_consumer_lag_messages{consumer="` + consumer + `"}`
			deadline := time.Now().Add(30 * time.Second)
			for lag := metricValue(t, body, sample); lag != 0; lag = metricValue(t, body, sample) {
				if time.Now().After(deadline) {
					t.Errorf("%s lag %v 30 s after completion", consumer, lag)
					break
				}
				time.Sleep(200 * time.Millisecond)
				body = scrape(t, a.URL())
			}
		}
	})
}
