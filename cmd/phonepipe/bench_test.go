package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func benchNoEnv(string) (string, bool) { return "", false }

// TestBenchSmoke runs the whole bench with tiny sizes against a built
// binary and checks the table has every row. It asserts no timings.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs services")
	}
	bin := buildBinary(t)
	out := filepath.Join(t.TempDir(), "bench.md")
	var progress bytes.Buffer
	o, err := benchParseFlags([]string{"--rows", "2000", "--rss-rows", "0", "--ack-imports", "3", "--watchers", "5",
		"--backends", "sqlite,postgres", "--output", out}, &progress, benchNoEnv)
	if err != nil {
		t.Fatal(err)
	}
	o.executable = bin.path
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var stdout bytes.Buffer
	if err := benchRunCommand(ctx, o, &stdout); err != nil {
		t.Fatalf("bench: %v\n%s", err, progress.String())
	}
	table := stdout.String()
	t.Log("\n" + table)
	for _, want := range []string{
		"| bare library loop: `phone.Enrich` on ",
		"| end-to-end import, **sqlite**, 2,000 rows (202 → completed) | ",
		"| end-to-end import, **postgres**, 2,000 rows (202 → completed) | skipped: needs --postgres-dsn |",
		"| ack latency (POST → 202) of a 100-row import, p50 / p99, during a 2,000-row import on sqlite | ",
		"| peak RSS of the service during a large import | skipped (--rss-rows 0) |",
		"| replay (rebuild projections from the event log), events/s | ",
		"| WebSocket completion fan-out to 5 watchers of one import (sqlite), completed_at → delivery, p50 / p99 | ",
		"- command: `phonepipe bench --rows 2000 --rss-rows 0 --seed 1 --backends sqlite,postgres --ack-imports 3 --watchers 5`",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	if strings.Contains(table, "failed:") || strings.Contains(table, "none measured") {
		t.Errorf("a measurement failed:\n%s\n%s", table, progress.String())
	}
	if !strings.Contains(table, "n/a (not built yet)") && !strings.Contains(table, " events/s | ") {
		t.Error("replay row has neither n/a nor a rate")
	}
	written, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(written) != table {
		t.Error("--output differs from what was printed")
	}
}

func TestBenchFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--backends", "sqlite,cassandra"},
		{"--rows", "0"},
		{"--rss-rows", "-1"},
		{"--backends", ""},
		{"extra"},
	} {
		_, err := benchParseFlags(args, &bytes.Buffer{}, benchNoEnv)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 {
			t.Errorf("%q: err = %v, want a usage error", args, err)
		}
	}
	env := func(k string) (string, bool) {
		if k == "PHONEPIPE_ROWS" {
			return "1234", true
		}
		return "", false
	}
	o, err := benchParseFlags([]string{"--backends", "sqlite, kafka"}, &bytes.Buffer{}, env)
	if err != nil {
		t.Fatal(err)
	}
	if o.rows != 1234 || o.rssRows != 1_000_000 || o.ackImports != 50 || len(o.backends) != 2 || o.backends[1] != "kafka" {
		t.Errorf("options %+v", o)
	}
}

func TestBenchHelpers(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 200000: "200,000", 1234567: "1,234,567", -1500: "-1,500"} {
		if got := benchInt(n); got != want {
			t.Errorf("benchInt(%d) = %q, want %q", n, got, want)
		}
	}
	sorted := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if p := benchPercentile(sorted, 0.5); p != 6 && p != 5 {
		t.Errorf("p50 = %d", p)
	}
	if p := benchPercentile(sorted, 0.99); p != 10 {
		t.Errorf("p99 = %d", p)
	}
	if runtime.GOOS != "linux" {
		return
	}
	if rss, err := benchPeakRSS(os.Getpid()); err != nil || rss < 1<<20 {
		t.Errorf("benchPeakRSS = %d, %v", rss, err)
	}
	if _, err := benchProcCPU(os.Getpid()); err != nil {
		t.Errorf("benchProcCPU: %v", err)
	}
}
