package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
	"github.com/phonepipe/phonepipe/internal/lookuptest"
)

// Sizes of BenchmarkLookupIsolation's imports.
const (
	isolationLookupRows = 2000  // the import that uses lookups
	isolationPlainRows  = 10000 // the import measured, with ?lookup=false
)

// BenchmarkLookupIsolation measures whether a slow lookup provider holds
// back an import that does not use lookups.
//
// Each round runs the same scenario on fresh processes that differ only in
// the provider: an import of isolationLookupRows valid numbers that all
// need lookups is uploaded, and right after it an import of
// isolationPlainRows mixed rows with ?lookup=false, whose time from upload
// to completion is measured. With the "fast" provider (instant answers)
// the first import's lookups are made, recorded and projected while the
// second import runs; with the "slow" one every answer takes 2s, so at
// the most 2 lookups a second come back and the first import stays
// waiting. A third process without the first import gives the time of the
// measured import alone, for reference.
//
// Reported: speed_ratio, the median over rounds of fast time / slow time —
// the speed of the import next to a slow provider relative to its speed
// next to a fast one (the goal is >= 0.9); alone_ratio, the median of
// alone time / slow time; and the median times. Ratios are taken within a
// round, so that the load of the machine, which drifts, cancels out; the
// order of the processes alternates between rounds. Run it with e.g.
// -bench LookupIsolation -benchtime 9x.
func BenchmarkLookupIsolation(b *testing.B) {
	fast := lookuptest.Start(b)
	slow := lookuptest.Start(b)
	slow.SetMode(lookuptest.Slow)
	slow.SetDelay(2 * time.Second)
	plain := csvOf(mixedRows(isolationPlainRows, 7))
	var tFast, tSlow, tAlone []time.Duration
	seq := 0
	round := 0
	for b.Loop() {
		runs := []func(){
			func() { seq++; tFast = append(tFast, isolationRun(b, fast, seq, plain)) },
			func() { seq++; tSlow = append(tSlow, isolationRun(b, slow, seq, plain)) },
			func() { tAlone = append(tAlone, isolationRun(b, nil, 0, plain)) },
		}
		if round%2 == 1 {
			slices.Reverse(runs)
		}
		for _, run := range runs {
			run()
		}
		round++
	}
	var speed, alone []float64
	for i := range tSlow {
		speed = append(speed, float64(tFast[i])/float64(tSlow[i]))
		alone = append(alone, float64(tAlone[i])/float64(tSlow[i]))
	}
	mf, ms, ma := median(tFast), median(tSlow), median(tAlone)
	b.ReportMetric(median(speed), "speed_ratio")
	b.ReportMetric(median(alone), "alone_ratio")
	b.ReportMetric(float64(mf.Milliseconds()), "ms_fast")
	b.ReportMetric(float64(ms.Milliseconds()), "ms_slow")
	b.ReportMetric(float64(ma.Milliseconds()), "ms_alone")
	b.Logf("plain import of %d rows: fast provider %v, slow provider %v, alone %v; fast/slow per round %.3f",
		isolationPlainRows, tFast, tSlow, tAlone, speed)
}

// isolationRun starts a process (with the lookup stage against p, or
// without a lookup import when p is nil), uploads the lookup import (seq
// picks its numbers) and then the plain one, and returns the plain one's
// time to completion.
func isolationRun(b *testing.B, p *lookuptest.Provider, seq int, plain []byte) time.Duration {
	b.Helper()
	cfg := app.Config{DataDir: b.TempDir(), Addr: "127.0.0.1:0", PollInterval: 20 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)}
	if p != nil {
		cfg.Lookup = app.LookupConfig{URL: p.URL(), Timeout: 5 * time.Second, Concurrency: 4, PollInterval: 20 * time.Millisecond}
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg)
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("app: %v", err)
		}
	}()
	if p != nil {
		benchUpload(b, a.URL(), "", numbersCSV(hungarianMobiles(seq*isolationLookupRows, isolationLookupRows)...))
	}
	start := time.Now()
	id := benchUpload(b, a.URL(), "?lookup=false", plain)
	for {
		var s struct{ Status string }
		resp, err := http.Get(a.URL() + "/v1/imports/" + id)
		if err != nil {
			b.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&s)
		resp.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
		if s.Status == "completed" {
			return time.Since(start)
		}
		if time.Since(start) > 2*time.Minute {
			b.Fatalf("import %s not completed after 2m", id)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// benchUpload uploads a CSV and returns the import id.
func benchUpload(b *testing.B, base, query string, body []byte) string {
	b.Helper()
	resp, err := http.Post(base+"/v1/imports"+query, "text/csv", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var acc struct{ ID string }
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(raw, &acc) != nil {
		b.Fatalf("upload: %d %s", resp.StatusCode, raw)
	}
	return acc.ID
}

// median of values (0 for none).
func median[T time.Duration | float64](vs []T) T {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	return s[len(s)/2]
}
