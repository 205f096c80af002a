package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
	"github.com/phonepipe/phonepipe/handlers"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// BenchmarkReplayVsLive measures, in one run, how fast the pipeline
// processes an import live (upload accepted → every projection, carrier
// statistics included, up to date) and how fast `replay --all` rebuilds the
// projections from the same events, and reports both rates and their ratio
// (goal: replay ≥ 5× live), and the CPU time per event of each. Rows:
// $PHONEPIPE_BENCH_REPLAY_ROWS, default 50000; shadows built in parallel:
// $PHONEPIPE_BENCH_REPLAY_PARTITIONS, default one per two cores. Run with
// -benchtime=1x.
func BenchmarkReplayVsLive(b *testing.B) {
	rows := 50_000
	if s := os.Getenv("PHONEPIPE_BENCH_REPLAY_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("PHONEPIPE_BENCH_REPLAY_ROWS=%q", s)
		}
		rows = n
	}
	partitions := 0 // the default
	if s := os.Getenv("PHONEPIPE_BENCH_REPLAY_PARTITIONS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			b.Fatalf("PHONEPIPE_BENCH_REPLAY_PARTITIONS=%q", s)
		}
		partitions = n
	}
	body := csvOf(mixedRows(rows, 99))
	for b.Loop() {
		cfg := app.Config{DataDir: b.TempDir(), Addr: "127.0.0.1:0", ImportRate: 0, MaxRows: rows + 1,
			MaxUploadBytes: int64(len(body)) + 1<<20, Logger: slog.New(slog.DiscardHandler)}
		cpu0 := cpuTime()
		live := runLive(b, cfg, body)
		cpu1 := cpuTime()
		start := time.Now()
		rep, err := app.Replay(context.Background(), cfg, app.ReplayOptions{All: true, Partitions: partitions})
		if err != nil {
			b.Fatal(err)
		}
		replay := float64(rep.Events) / time.Since(start).Seconds()
		cpu2 := cpuTime()
		b.ReportMetric(live, "live_events/s")
		b.ReportMetric(replay, "replay_events/s")
		b.ReportMetric(replay/live, "replay/live")
		// CPU per event, all cores: what the rates become on an idle machine.
		b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(rows), "live_cpu_µs/event")
		b.ReportMetric(float64((cpu2-cpu1).Microseconds())/float64(rep.Events), "replay_cpu_µs/event")
	}
}

// runLive runs one import through a fresh process and returns its rate:
// rows per second from the upload until the import is completed and the
// carrier statistics have counted every job.
func runLive(b *testing.B, cfg app.Config, body []byte) float64 {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := app.New(ctx, cfg)
	if err != nil {
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
	db, err := storage.OpenSQLite(cfg.DataDir)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	resp, err := http.Post(a.URL()+"/v1/imports", "text/csv", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	var acc struct {
		ID    string
		Total int
	}
	err = json.NewDecoder(resp.Body).Decode(&acc)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusAccepted {
		b.Fatalf("upload: %d %v", resp.StatusCode, err)
	}
	for {
		var s struct{ Status string }
		r, err := http.Get(a.URL() + "/v1/imports/" + acc.ID)
		if err != nil {
			b.Fatal(err)
		}
		_ = json.NewDecoder(r.Body).Decode(&s)
		r.Body.Close()
		if s.Status == "completed" && statsDone(b, db, acc.Total) {
			break
		}
		if time.Since(start) > 10*time.Minute {
			b.Fatal("import not done after 10 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return float64(acc.Total) / time.Since(start).Seconds()
}

// statsDone reports whether the statistics handler has counted every job
// of an import of rows rows.
func statsDone(b *testing.B, db *storage.DB, rows int) bool {
	b.Helper()
	var n int
	if err := db.Read.QueryRowContext(context.Background(),
		`SELECT COUNT(*) FROM handled_messages WHERE handler = ?`, handlers.StatsName).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n == (rows+handlers.DefaultJobSize-1)/handlers.DefaultJobSize
}
