package app_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
	"github.com/phonepipe/phonepipe/domain/phone"
	"github.com/phonepipe/phonepipe/internal/listgen"
)

// BenchmarkImportVsBareLoop imports a generated 100,000-row list into the
// embedded backend, in process, and measures the bare library loop over the
// same list right before each import: import_ratio is the pipeline's rate
// over the ceiling, the figure the target is about. With
// -cpuprofile it is the profile of the pipeline (and of the bare loop,
// which shows up as phone.Enrich called from this file). cpu_ratio is the
// process's CPU time during the import over that of the bare loop (both
// over the same rows): steadier than import_ratio on a shared machine, and
// its inverse bounds import_ratio when every core is busy.
//
//	go test ./cmd/phonepipe/app -run '^$' -bench ImportVsBareLoop -benchtime 2x
func BenchmarkImportVsBareLoop(b *testing.B) {
	var list bytes.Buffer
	if _, err := listgen.WriteCSV(context.Background(), &list, listgen.Config{Seed: 1}, 100_000); err != nil {
		b.Fatal(err)
	}
	rows := readList(b, list.Bytes())
	phone.Warm()
	var ratio, rate, bare, cpuRatio float64
	for range b.N {
		cpu0 := cpuTime()
		ceiling := bareLoop(rows)
		cpu1 := cpuTime()
		r := runLive(b, app.Config{DataDir: b.TempDir(), Addr: "127.0.0.1:0"}, list.Bytes())
		cpu2 := cpuTime()
		ratio += r / ceiling
		rate += r
		bare += ceiling
		cpuRatio += float64(cpu2-cpu1) / float64(cpu1-cpu0)
	}
	n := float64(b.N)
	b.ReportMetric(ratio/n, "import_ratio")
	b.ReportMetric(cpuRatio/n, "cpu_ratio")
	b.ReportMetric(rate/n, "rows/s_import")
	b.ReportMetric(bare/n, "rows/s_bare")
}

// readList returns the (number, region) pairs of a generated CSV list.
func readList(b *testing.B, data []byte) [][2]string {
	b.Helper()
	r := csv.NewReader(bytes.NewReader(data))
	if _, err := r.Read(); err != nil {
		b.Fatal(err)
	}
	var out [][2]string
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return out
		}
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, [2]string{rec[0], rec[1]})
	}
}

// bareLoop enriches rows on every core and returns rows per second.
func bareLoop(rows [][2]string) float64 {
	const chunk = 64
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				first := int(next.Add(chunk)) - chunk
				if first >= len(rows) {
					return
				}
				for _, r := range rows[first:min(first+chunk, len(rows))] {
					phone.Enrich(r[0], r[1])
				}
			}
		})
	}
	wg.Wait()
	return float64(len(rows)) / time.Since(start).Seconds()
}
