package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/domain/phone"
	"github.com/phonepipe/phonepipe/internal/listgen"
)

// benchRow is one row of a list, as the bare loop needs it.
type benchRow struct{ number, region string }

// benchLoadList reads the number and region columns of a generated list.
func benchLoadList(path string) ([]benchRow, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open list: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.ReuseRecord = true
	if _, err := r.Read(); err != nil {
		return nil, fmt.Errorf("read list header: %w", err)
	}
	var out []benchRow
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read list: %w", err)
		}
		out = append(out, benchRow{number: strings.Clone(rec[0]), region: strings.Clone(rec[1])})
	}
}

// benchCeiling is one measurement of the bare library loop.
type benchCeiling struct {
	rows    int
	workers int
	wall    time.Duration
	cpu     time.Duration // 0 when unknown
}

func (c benchCeiling) rate() float64 { return float64(c.rows) / c.wall.Seconds() }

// benchMeasureCeiling runs phone.Enrich over the list on workers goroutines:
// the most numbers per second this machine can enrich, whatever the
// pipeline around the library does.
func benchMeasureCeiling(ctx context.Context, rows []benchRow, workers int) (benchCeiling, error) {
	phone.Warm()
	const chunk = 64
	var next atomic.Int64
	var wg sync.WaitGroup
	cpu0, cpuErr := benchSelfCPU()
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				first := int(next.Add(chunk)) - chunk
				if first >= len(rows) {
					return
				}
				for _, r := range rows[first:min(first+chunk, len(rows))] {
					phone.Enrich(r.number, r.region)
				}
			}
		})
	}
	wg.Wait()
	c := benchCeiling{rows: len(rows), workers: workers, wall: time.Since(start)}
	if err := ctx.Err(); err != nil {
		return c, err
	}
	if cpu1, err := benchSelfCPU(); cpuErr == nil && err == nil {
		c.cpu = cpu1 - cpu0
	}
	return c, nil
}

// benchRun is one end-to-end import: 202 to completed.
type benchRun struct {
	final  domain.ImportSummary
	upload time.Duration // POST to 202
	wall   time.Duration // 202 to completed, as polled
	cpu    time.Duration // the service's CPU time over wall; 0 when unknown
	peak   int64         // the service's peak RSS so far; 0 when unknown
}

func (r benchRun) rate() float64 { return float64(r.final.Total) / r.wall.Seconds() }

// benchImportTimeout bounds one import of rows rows.
func benchImportTimeout(rows int) time.Duration {
	return 5*time.Minute + time.Duration(rows)*2*time.Millisecond
}

// benchMeasureImport uploads the list at path to the service and waits for the
// import to complete. accepted, if not nil, is called with the import's id
// as soon as the service has answered 202, before the wait starts.
func benchMeasureImport(ctx context.Context, svc *benchService, path string, rows int, accepted func(id string)) (benchRun, error) {
	c := svc.client()
	var run benchRun
	t0 := time.Now()
	id, err := c.submitFile(ctx, path)
	if err != nil {
		return run, err
	}
	start := time.Now()
	run.upload = start.Sub(t0)
	cpu0, cpuErr := benchProcCPU(svc.pid())
	if accepted != nil {
		accepted(id)
	}
	final, end, err := c.waitCompleted(ctx, id, benchImportTimeout(rows))
	if err != nil {
		return run, err
	}
	run.final, run.wall = final, end.Sub(start)
	if cpu1, err := benchProcCPU(svc.pid()); err == nil && cpuErr == nil {
		run.cpu = cpu1 - cpu0
	}
	if peak, err := benchPeakRSS(svc.pid()); err == nil {
		run.peak = peak
	}
	if final.Total != rows || final.Processed != rows {
		return run, fmt.Errorf("import %s completed with total %d, processed %d; the list has %d rows", id, final.Total, final.Processed, rows)
	}
	return run, nil
}

// benchAcks are the ack latencies of small imports submitted one after
// another while a large import runs.
type benchAcks struct {
	latencies []time.Duration // sorted
	planned   int
	rows      int // rows of each small import
	failed    int
}

// benchSmallBodies cuts n small CSV uploads of size rows each from one list.
func benchSmallBodies(ctx context.Context, seed uint64, n, size int) ([][]byte, error) {
	g, err := listgen.New(listgen.Config{Seed: seed})
	if err != nil {
		return nil, err
	}
	out := make([][]byte, n)
	for i := range out {
		var buf bytes.Buffer
		if _, err := g.WriteCSV(ctx, &buf, size); err != nil {
			return nil, err
		}
		out[i] = buf.Bytes()
	}
	return out, nil
}

// benchSubmitAcks submits the bodies one after another, pausing between them,
// until all are in or running is closed, and measures POST-to-202.
func benchSubmitAcks(ctx context.Context, c benchClient, bodies [][]byte, pause time.Duration, running <-chan struct{}) benchAcks {
	a := benchAcks{planned: len(bodies)}
	for i, body := range bodies {
		if i > 0 {
			select {
			case <-running:
				return a
			case <-ctx.Done():
				return a
			case <-time.After(pause):
			}
		}
		t0 := time.Now()
		if _, err := c.submit(ctx, bytes.NewReader(body), int64(len(body))); err != nil {
			a.failed++
			continue
		}
		a.latencies = append(a.latencies, time.Since(t0))
	}
	slices.Sort(a.latencies)
	return a
}

// benchPercentile returns the q-quantile (0..1) of sorted durations.
func benchPercentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(q*float64(len(sorted)-1)+0.5)]
}

// benchFanOut is the completion fan-out to WebSocket watchers of one import.
type benchFanOut struct {
	watchers  int
	rows      int
	latencies []time.Duration // completed_at to delivery, sorted
	late      int             // connected after completion: not counted
	failed    int
	firstErr  error
}

// benchMeasureFanOut submits an import of rows rows, connects watchers to its
// progress WebSocket while it runs and measures, for each, the time from
// the import's completion (its completed_at) to the delivery of the
// "completed" message.
func benchMeasureFanOut(ctx context.Context, c benchClient, body []byte, rows, watchers int) (benchFanOut, error) {
	f := benchFanOut{watchers: watchers, rows: rows}
	id, err := c.submit(ctx, bytes.NewReader(body), int64(len(body)))
	if err != nil {
		return f, err
	}
	target := "ws" + strings.TrimPrefix(c.base, "http") + "/v1/imports/" + id + "/progress"
	type outcome struct {
		latency time.Duration
		late    bool
		err     error
	}
	results := make([]outcome, watchers)
	var wg sync.WaitGroup
	dial := make(chan struct{}, 16) // connect a few at a time, like browsers arriving
	for i := range results {
		wg.Go(func() {
			dial <- struct{}{}
			results[i].latency, results[i].late, results[i].err = benchWatchCompletion(ctx, target, func() { <-dial })
		})
	}
	wg.Wait()
	if _, _, err := c.waitCompleted(ctx, id, benchImportTimeout(rows)); err != nil {
		return f, err
	}
	for _, r := range results {
		switch {
		case r.err != nil:
			f.failed++
			if f.firstErr == nil {
				f.firstErr = r.err
			}
		case r.late:
			f.late++
		default:
			f.latencies = append(f.latencies, r.latency)
		}
	}
	slices.Sort(f.latencies)
	return f, nil
}

// benchWatchCompletion connects one watcher (calling connected once the
// handshake is over) and reads until the "completed" message. late is
// true when the import had completed before the watcher's snapshot.
func benchWatchCompletion(ctx context.Context, target string, connected func()) (latency time.Duration, late bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	conn, resp, err := websocket.DefaultDialer.DialContext(ctx, target, nil)
	connected()
	if err != nil {
		return 0, false, fmt.Errorf("connect watcher: %w", err)
	}
	_ = resp.Body.Close()
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	for first := true; ; first = false {
		_, data, err := conn.ReadMessage()
		received := time.Now()
		if err != nil {
			return 0, false, fmt.Errorf("watcher: %w", err)
		}
		var m struct {
			Type   string               `json:"type"`
			Import domain.ImportSummary `json:"import"`
		}
		if err := json.Unmarshal(data, &m); err != nil {
			return 0, false, fmt.Errorf("watcher: message %q: %w", data, err)
		}
		if m.Import.Status != domain.StatusCompleted {
			continue
		}
		if first || m.Type != "completed" || m.Import.CompletedAt == nil {
			return 0, true, nil
		}
		_ = conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		return received.Sub(*m.Import.CompletedAt), false, nil
	}
}

// benchReplayAvailable reports whether the binary has a replay command.
func benchReplayAvailable(ctx context.Context, exe string) bool {
	cmd := exec.CommandContext(ctx, exe, "replay", "-h")
	cmd.Env = benchChildEnv()
	out, _ := cmd.CombinedOutput()
	return !strings.Contains(string(out), "unknown command")
}

// benchReplayEvents finds the event count in replay's summary line.
var benchReplayEvents = regexp.MustCompile(`(\d+) events in `)

// benchMeasureReplay rebuilds every projection of a stopped service's data and
// returns how long it took, process start included, and how many events
// it replayed (0 when its output does not say).
func benchMeasureReplay(ctx context.Context, exe, dataDir string, backendArgs []string) (time.Duration, int, error) {
	args := append([]string{"replay", "--all", "--data-dir", dataDir}, backendArgs...)
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = benchChildEnv()
	start := time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(start)
	if err != nil {
		return 0, 0, fmt.Errorf("phonepipe %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	events := 0
	if m := benchReplayEvents.FindSubmatch(out); m != nil {
		events, _ = strconv.Atoi(string(m[1]))
	}
	return wall, events, nil
}

// benchWorkers is the bare loop's worker count: every core Go may use.
func benchWorkers() int { return runtime.GOMAXPROCS(0) }
