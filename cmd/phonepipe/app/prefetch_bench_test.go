package app_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
)

// BenchmarkPrefetch imports the same list with and without the validator's
// prefetch, alternating, in one run, and reports the ratio of their rates
// (prefetch_speedup > 1 means prefetch is faster).
//
//	go test ./cmd/phonepipe/app -run '^$' -bench Prefetch -benchtime 3x
func BenchmarkPrefetch(b *testing.B) {
	var csv strings.Builder
	csv.WriteString("number,region\n")
	for i := range 50_000 {
		switch i % 3 {
		case 0:
			fmt.Fprintf(&csv, "+3630%07d,\n", i)
		case 1:
			fmt.Fprintf(&csv, "0151%08d,DE\n", i)
		default:
			fmt.Fprintf(&csv, "(650) 2%02d-%04d,US\n", i%100, i%10_000)
		}
	}
	body := []byte(csv.String())
	cfg := func() app.Config { return app.Config{DataDir: b.TempDir(), Addr: "127.0.0.1:0"} }
	var with, without float64
	for range b.N {
		without += runLive(b, app.WithoutPrefetch(cfg()), body)
		with += runLive(b, cfg(), body)
	}
	b.ReportMetric(with/without, "prefetch_speedup")
	b.ReportMetric(with/float64(b.N), "rows/s_with")
	b.ReportMetric(without/float64(b.N), "rows/s_without")
}
