package main

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
	"github.com/phonepipe/phonepipe/internal/listgen"
)

// Targets of the performance issue.
const (
	benchTargetSQLiteRatio = 0.8                    // end to end vs the bare loop, sqlite
	benchTargetServerRatio = 0.6                    // postgres and kafka(+postgres)
	benchTargetAckP99      = 100 * time.Millisecond // a 100-row import during a 1M-row one
	benchTargetPeakRSS     = 300_000_000            // bytes, during a 1M-row import
	benchTargetRows        = 200_000                // the ratio targets are set on this many rows
	benchTargetLargeRows   = 1_000_000              // the ack and RSS targets are set during an import this large
)

// benchReport is everything one run found.
type benchReport struct {
	opts              benchOptions
	started, finished time.Time
	workers           int
	cpuModel          string
	memBytes          int64
	list              listgen.Stats
	backends          []benchBackendResult
	fanOut            *benchFanOutResult
	replay            *benchReplayResult
	large             *benchLargeResult
}

// benchBackendResult is the end-to-end measurement of one backend.
type benchBackendResult struct {
	name, label string
	note        string
	skipped     string // why the backend did not run
	err         error
	ceiling     benchCeiling // measured right before the import
	run         *benchRun
}

// benchFanOutResult is the completion fan-out measurement.
type benchFanOutResult struct {
	backend string
	fanOut  benchFanOut
	err     error
}

// benchReplayResult is the replay measurement.
type benchReplayResult struct {
	missing bool
	events  int
	wall    time.Duration
	err     error
}

// benchLargeResult is the large import: peak RSS and ack latency.
type benchLargeResult struct {
	rows int
	rss  bool // whether this is the --rss-rows import
	acks benchAcks
	run  *benchRun
	err  error
}

// expectedRate is the end-to-end rate measured on sqlite, else on any
// backend, else a guess: what the large import's duration is planned on.
func (r *benchReport) expectedRate() float64 {
	rate := 0.0
	for _, b := range r.backends {
		if b.run == nil {
			continue
		}
		if b.name == app.BackendSQLite {
			return b.run.rate()
		}
		if rate == 0 {
			rate = b.run.rate()
		}
	}
	if rate == 0 {
		rate = 5000
	}
	return rate
}

// benchE2ETarget is the target ratio for a backend, if it has one.
func benchE2ETarget(b benchBackendResult) (float64, bool) {
	switch b.name {
	case app.BackendSQLite:
		return benchTargetSQLiteRatio, true
	case app.BackendPostgres, app.BackendKafka:
		return benchTargetServerRatio, true
	default:
		return 0, false
	}
}

// markdown renders the report: a heading, the setup, the table, details.
func (r *benchReport) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("## phonepipe bench, %s\n\n", r.started.UTC().Format("2006-01-02 15:04 MST"))
	w("- command: `%s`\n", r.opts.command())
	w("- machine: %d CPUs (%s), %s memory, %s/%s, %s, GOMAXPROCS %d\n",
		runtime.NumCPU(), benchOrUnknown(r.cpuModel), benchBytes(r.memBytes), runtime.GOOS, runtime.GOARCH, runtime.Version(), r.workers)
	w("- list: %s\n", benchDescribeList(r.list))
	if !r.finished.IsZero() {
		w("- run time: %s\n", r.finished.Sub(r.started).Round(time.Second))
	}
	w("\n| measurement | result | vs bare loop | CPU per number vs bare loop | target | met |\n|---|---|---|---|---|---|\n")
	// Rows give five cells, or six when they have a CPU ratio.
	row := func(cells ...string) {
		if len(cells) == 5 {
			cells = append(cells[:3:3], "—", cells[3], cells[4])
		}
		w("| %s |\n", strings.Join(cells, " | "))
	}

	ceilingShown := false
	for _, be := range r.backends {
		if be.run != nil && !ceilingShown {
			row(fmt.Sprintf("bare library loop: `phone.Enrich` on %d workers, same list (the ceiling)", be.ceiling.workers),
				benchRate(be.ceiling.rate()), "1.00×", "1.00×", "—", "—")
			ceilingShown = true
		}
	}
	if !ceilingShown {
		row("bare library loop (the ceiling)", "not measured: no backend ran", "—", "—", "—")
	}
	for _, be := range r.backends {
		r.backendRow(row, be)
	}
	r.ackRow(row)
	r.rssRow(row)
	r.replayRow(row)
	r.fanOutRow(row)
	w("\n")
	r.details(w)
	return b.String()
}

func (r *benchReport) backendRow(row func(...string), be benchBackendResult) {
	name := fmt.Sprintf("end-to-end import, **%s**, %s rows (202 → completed)", be.label, benchInt(r.opts.rows))
	target, met := "—", "—"
	t, hasTarget := benchE2ETarget(be)
	if hasTarget {
		target = fmt.Sprintf("≥ %.2f×", t)
	}
	switch {
	case be.skipped != "":
		row(name, "skipped: "+be.skipped, "—", target, "—")
	case be.err != nil:
		row(name, "failed: "+benchCell(be.err.Error()), "—", target, "—")
	case be.run != nil:
		ratio := be.run.rate() / be.ceiling.rate()
		if hasTarget && r.opts.rows >= benchTargetRows {
			met = benchYesNo(ratio >= t)
		}
		cpu := "—"
		if be.run.cpu > 0 && be.ceiling.cpu > 0 {
			cpu = fmt.Sprintf("%.2f×", benchPerNumberSeconds(be.run.cpu, be.run.final.Total)/benchPerNumberSeconds(be.ceiling.cpu, be.ceiling.rows))
		}
		row(name, benchRate(be.run.rate()), fmt.Sprintf("%.2f×", ratio), cpu, target, met)
	}
}

func (r *benchReport) ackRow(row func(...string)) {
	l := r.large
	target := fmt.Sprintf("p99 ≤ %d ms", benchTargetAckP99.Milliseconds())
	if l == nil || r.opts.ackImports == 0 {
		row("ack latency of a small import during a large one", "skipped (--ack-imports 0)", "—", target, "—")
		return
	}
	name := fmt.Sprintf("ack latency (POST → 202) of a %d-row import, p50 / p99, during a %s-row import on sqlite",
		l.acks.rows, benchInt(l.rows))
	a := l.acks
	switch {
	case len(a.latencies) == 0 && l.err != nil:
		row(name, "failed: "+benchCell(l.err.Error()), "—", target, "—")
	case len(a.latencies) == 0:
		row(name, fmt.Sprintf("none measured (%d failed)", a.failed), "—", target, "—")
	default:
		p99 := benchPercentile(a.latencies, 0.99)
		met := "—"
		if a.rows == 100 && l.rows >= benchTargetLargeRows {
			met = benchYesNo(p99 <= benchTargetAckP99)
		}
		row(name, fmt.Sprintf("%s / %s (%d imports)", benchMillis(benchPercentile(a.latencies, 0.5)), benchMillis(p99), len(a.latencies)),
			"—", target, met)
	}
}

func (r *benchReport) rssRow(row func(...string)) {
	l := r.large
	target := fmt.Sprintf("≤ %d MB", benchTargetPeakRSS/1_000_000)
	if l == nil || !l.rss {
		row("peak RSS of the service during a large import", "skipped (--rss-rows 0)", "—", target, "—")
		return
	}
	name := fmt.Sprintf("peak RSS (VmHWM) of the service, %s-row import on sqlite", benchInt(l.rows))
	switch {
	case l.err != nil:
		row(name, "failed: "+benchCell(l.err.Error()), "—", target, "—")
	case l.run == nil || l.run.peak == 0:
		row(name, "not measured (no /proc on this system)", "—", target, "—")
	default:
		met := "—"
		if l.rows >= benchTargetLargeRows {
			met = benchYesNo(l.run.peak <= benchTargetPeakRSS)
		}
		row(name, benchBytes(l.run.peak), "—", target, met)
	}
}

func (r *benchReport) replayRow(row func(...string)) {
	name := "replay (rebuild projections from the event log), events/s"
	p := r.replay
	switch {
	case p == nil:
		row(name, "n/a (needs the sqlite backend in --backends)", "—", "—", "—")
	case p.missing:
		row(name, "n/a (not built yet)", "—", "—", "—")
	case p.err != nil:
		row(name, "failed: "+benchCell(p.err.Error()), "—", "—", "—")
	default:
		row(name, fmt.Sprintf("%s events/s (%s events in %s, `replay --all` on the sqlite data)",
			benchInt(int(float64(p.events)/p.wall.Seconds())), benchInt(p.events), benchSeconds(p.wall)), "—", "—", "—")
	}
}

func (r *benchReport) fanOutRow(row func(...string)) {
	f := r.fanOut
	if f == nil {
		if r.opts.watchers == 0 {
			row("WebSocket completion fan-out", "skipped (--watchers 0)", "—", "—", "—")
		} else {
			row("WebSocket completion fan-out", "not measured: no backend ran", "—", "—", "—")
		}
		return
	}
	name := fmt.Sprintf("WebSocket completion fan-out to %d watchers of one import (%s), completed_at → delivery, p50 / p99",
		f.fanOut.watchers, f.backend)
	switch {
	case f.err != nil:
		row(name, "failed: "+benchCell(f.err.Error()), "—", "—", "—")
	case len(f.fanOut.latencies) == 0:
		row(name, fmt.Sprintf("none measured (%d late, %d failed)", f.fanOut.late, f.fanOut.failed), "—", "—", "—")
	default:
		l := f.fanOut.latencies
		res := fmt.Sprintf("%s / %s", benchMillis(benchPercentile(l, 0.5)), benchMillis(benchPercentile(l, 0.99)))
		if n := f.fanOut.late + f.fanOut.failed; n > 0 {
			res += fmt.Sprintf(" (%d of %d watchers not counted)", n, f.fanOut.watchers)
		}
		row(name, res, "—", "—", "—")
	}
}

// details lists what the table summarises.
func (r *benchReport) details(w func(string, ...any)) {
	w("Details:\n\n")
	w("- Each backend runs as a child `phonepipe serve` process on a fresh data dir (or scratch schema/database); " +
		"ratios compare its end-to-end rate with the bare loop measured right before it, on the same list, in the same run.\n")
	w("- CPU per number is the service's CPU time (user + system, from /proc) from 202 to completed, over the bare loop's; " +
		"it is the least noisy figure on a shared machine, and 1 / it bounds what the wall-clock ratio can reach if every core were busy.\n")
	for _, be := range r.backends {
		if be.run == nil {
			if be.note != "" {
				w("- %s: %s.\n", be.label, be.note)
			}
			continue
		}
		run := be.run
		w("- %s: bare loop %s; upload (POST → 202) %s, 202 → completed %s; final counts valid %s, invalid %s, duplicates %s, failed %s",
			be.label, benchRate(be.ceiling.rate()), benchSeconds(run.upload), benchSeconds(run.wall),
			benchInt(run.final.Valid), benchInt(run.final.Invalid), benchInt(run.final.Duplicates), benchInt(run.final.Failed))
		if run.cpu > 0 && be.ceiling.cpu > 0 {
			w("; CPU per number: service %s, bare loop %s", benchPerNumber(run.cpu, run.final.Total),
				benchPerNumber(be.ceiling.cpu, be.ceiling.rows))
		}
		if run.peak > 0 {
			w("; service peak RSS %s", benchBytes(run.peak))
		}
		if be.note != "" {
			w("; %s", be.note)
		}
		w(".\n")
	}
	if l := r.large; l != nil && l.run != nil {
		w("- Large import (%s rows, sqlite): %s, 202 → completed %s", benchInt(l.rows), benchRate(l.run.rate()), benchSeconds(l.run.wall))
		if l.run.cpu > 0 {
			w(", CPU per number %s", benchPerNumber(l.run.cpu, l.run.final.Total))
		}
		a := l.acks
		w("; %d of %d small imports submitted while it ran", len(a.latencies), a.planned)
		if a.failed > 0 {
			w(" (%d failed)", a.failed)
		}
		if len(a.latencies) > 0 {
			w(", ack max %s", benchMillis(a.latencies[len(a.latencies)-1]))
		}
		w(".\n")
	}
	if f := r.fanOut; f != nil && f.err == nil && len(f.fanOut.latencies) > 0 {
		l := f.fanOut.latencies
		w("- Fan-out: a %s-row import watched by %d WebSockets; max %s; %d connected too late to count, %d failed",
			benchInt(f.fanOut.rows), f.fanOut.watchers, benchMillis(l[len(l)-1]), f.fanOut.late, f.fanOut.failed)
		if f.fanOut.firstErr != nil {
			w(" (first: %s)", benchCell(f.fanOut.firstErr.Error()))
		}
		w(".\n")
	}
	w("- The machine is shared: compare ratios from one run, not absolute rates across runs.\n")
}

// benchDescribeList summarises a generated list.
func benchDescribeList(s listgen.Stats) string {
	if s.Rows == 0 {
		return "none"
	}
	pct := func(n int) string { return fmt.Sprintf("%.1f %%", 100*float64(n)/float64(s.Rows)) }
	var styles []string
	for _, st := range listgen.Styles() {
		styles = append(styles, st.String()+" "+pct(s.Styles[st]))
	}
	return fmt.Sprintf("%s rows, %d countries (most: %s), %s junk, %s repeats; styles %s",
		benchInt(s.Rows), len(s.Countries), strings.Join(s.TopCountries(5), ", "), pct(s.Junk), pct(s.Repeats),
		strings.Join(styles, ", "))
}

func benchYesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func benchOrUnknown(s string) string {
	if s == "" {
		return "model unknown"
	}
	return s
}

// benchCell keeps an error message fit for a table cell.
func benchCell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// benchInt writes n with thousands separators: 1,000,000.
func benchInt(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + benchInt(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func benchRate(perSecond float64) string {
	return benchInt(int(perSecond+0.5)) + " numbers/s"
}

func benchMillis(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	if ms < 10 {
		return fmt.Sprintf("%.1f ms", ms)
	}
	return fmt.Sprintf("%.0f ms", ms)
}

func benchSeconds(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

// benchPerNumberSeconds is CPU seconds per number.
func benchPerNumberSeconds(cpu time.Duration, n int) float64 {
	return cpu.Seconds() / float64(max(n, 1))
}

func benchPerNumber(cpu time.Duration, n int) string {
	return fmt.Sprintf("%.1f µs", float64(cpu.Microseconds())/float64(max(n, 1)))
}

// benchBytes writes a byte count in decimal megabytes (the unit of the
// RSS target) or gigabytes.
func benchBytes(n int64) string {
	switch {
	case n <= 0:
		return "unknown"
	case n >= 10_000_000_000:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	default:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
}
