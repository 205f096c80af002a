package app_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"
	"runtime/pprof"
	"syscall"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
)

func TestZZReplayPhases(t *testing.T) {
	dir := os.Getenv("ZZDIR")
	rows := 50000
	body := csvOf(mixedRows(rows, 99))
	cfg := app.Config{DataDir: dir, Addr: "127.0.0.1:0", MaxRows: rows + 1, MaxUploadBytes: int64(len(body)) + 1<<20, Logger: slog.New(slog.DiscardHandler)}
	if _, err := os.Stat(dir + "/phonepipe.db"); err != nil {
		a := startApp(t, cfg)
		id := mustAccept(t, a.URL(), body)
		waitCompleted(t, a.URL(), id, 5*time.Minute)
		time.Sleep(3 * time.Second)
		return
	}
	f, _ := os.Create("/tmp/replay2.prof")
	pprof.StartCPUProfile(f)
	defer pprof.StopCPUProfile()
	for i := range 4 {
		var ru0, ru1 syscall.Rusage
		syscall.Getrusage(0, &ru0)
		start := time.Now()
		rep, err := app.Replay(context.Background(), cfg, app.ReplayOptions{All: true, Partitions: 1})
		if err != nil {
			t.Fatal(err)
		}
		syscall.Getrusage(0, &ru1)
		cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano())
		t.Logf("parts %d cpu %s wall %s build %s swap %s events %d rate %.0f", 1+i%2, cpu, time.Since(start), rep.Build, rep.Swap, rep.Events, float64(rep.Events)/time.Since(start).Seconds())
	}
}
