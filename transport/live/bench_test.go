package live

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// BenchmarkFanOutCompleted connects N watchers to one import, publishes its
// completion and measures how long each watcher takes to receive it.
//
// Reported metrics:
//   - p50-ms, p99-ms, max-ms: completion-to-delivery latency over all
//     watchers of all iterations;
//   - bytes/conn: live heap plus goroutine stacks per connected watcher. Client
//     and server run in this process, so it counts both ends of a connection
//     (server: hub client, two goroutines, gorilla conn; client: gorilla conn
//     and one reader goroutine).
//
// ns/op covers a whole cycle: connecting N watchers, fan-out, closing.
func BenchmarkFanOutCompleted(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("watchers=%d", n), func(b *testing.B) { benchFanOut(b, n) })
	}
}

func benchFanOut(b *testing.B, n int) {
	raiseOpenFileLimit(b, 2*n+256) // both ends of every connection live here
	e := newEnv(b, Config{})
	var (
		latencies []time.Duration
		perConn   []float64
	)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("imp%d", i)
		p := e.pipeline(b, id)

		before := liveBytes()
		conns := make([]*websocket.Conn, n)
		for j := range conns {
			conn, resp, err := websocket.DefaultDialer.Dial(e.url(id, 0), nil)
			if err != nil {
				b.Fatalf("dial watcher %d: %v", j, err)
			}
			_ = resp.Body.Close()
			if m := mustRead(b, conn); m.Type != typeSnapshot {
				b.Fatalf("watcher %d: first message %q", j, m.Type)
			}
			conns[j] = conn
		}
		received := make([]time.Time, n)
		var ready, done sync.WaitGroup
		ready.Add(n)
		done.Add(n)
		for j, conn := range conns {
			go func() {
				defer done.Done()
				ready.Done()
				_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
				_, data, err := conn.ReadMessage()
				received[j] = time.Now()
				if err != nil {
					b.Errorf("watcher %d: %v", j, err)
					return
				}
				if len(data) < 20 || string(data[:20]) != `{"type":"completed",` {
					b.Errorf("watcher %d: got %s", j, data)
				}
				for err == nil { // finish the closing handshake
					_, _, err = conn.ReadMessage()
				}
				_ = conn.Close()
			}()
		}
		ready.Wait()
		perConn = append(perConn, float64(liveBytes()-before)/float64(n))

		start := time.Now()
		p.complete(1)
		done.Wait()
		for _, at := range received {
			latencies = append(latencies, at.Sub(start))
		}
		waitFor(b, "watchers gone", func() bool { return e.hub.Clients() == 0 })
	}
	b.StopTimer()

	slices.Sort(latencies)
	pct := func(q float64) float64 {
		return float64(latencies[int(q*float64(len(latencies)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
	slices.Sort(perConn)
	b.ReportMetric(perConn[len(perConn)/2], "bytes/conn")
}

// liveBytes returns the live heap plus goroutine stacks after a full GC.
func liveBytes() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc + ms.StackInuse)
}
