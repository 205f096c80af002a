package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
)

// Defaults of a progress bar.
const (
	barWidth = 30
	// barRedraw is the least time between two redraws on a terminal.
	barRedraw = 100 * time.Millisecond
	// barLogEvery is the least time between two plain log lines.
	barLogEvery = 2 * time.Second
	// rateWindow is how far back the rows/s estimate looks.
	rateWindow = 5 * time.Second
)

// progressBar draws an import's progress on w: redrawn in place with \r on
// a terminal, as periodic plain lines otherwise (logs, pipes, CI).
type progressBar struct {
	w        io.Writer
	tty      bool
	now      func() time.Time
	logEvery time.Duration

	start    time.Time // the first observation
	startRow int       // the processed count at start
	samples  []sample  // recent (time, processed) observations, oldest first
	lastDraw time.Time
	drawn    bool // a line is on screen without its newline (tty only)
	lastLine string
}

// sample is one observation of the processed count.
type sample struct {
	at        time.Time
	processed int
}

// newProgressBar draws on w, in place when w is a terminal.
func newProgressBar(w io.Writer, env func(string) (string, bool)) *progressBar {
	return &progressBar{w: w, tty: isTerminal(w, env), now: time.Now, logEvery: barLogEvery}
}

// isTerminal reports whether w is a terminal that understands \r and the
// erase-line sequence.
func isTerminal(w io.Writer, env func(string) (string, bool)) bool {
	f, ok := w.(*os.File)
	if !ok || !(isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())) {
		return false
	}
	term, _ := env("TERM")
	return term != "dumb"
}

// update shows s. On a terminal it redraws at most every barRedraw; otherwise
// it writes a line at most every logEvery. The first and the completed state
// are always shown.
func (b *progressBar) update(s importState) {
	now := b.now()
	b.observe(now, s.Processed)
	final := s.Status == "completed"
	first := b.lastDraw.IsZero()
	if b.tty {
		if !first && !final && now.Sub(b.lastDraw) < barRedraw {
			return
		}
		line := b.line(s, now, true)
		// Pad over the previous line instead of relying on erase sequences.
		pad := max(len(b.lastLine)-len(line), 0)
		fmt.Fprintf(b.w, "\r%s%s", line, strings.Repeat(" ", pad))
		b.lastLine, b.drawn, b.lastDraw = line, true, now
		if final {
			b.endLine()
		}
		return
	}
	if !first && !final && now.Sub(b.lastDraw) < b.logEvery {
		return
	}
	fmt.Fprintln(b.w, b.line(s, now, false))
	b.lastDraw = now
}

// note prints a message on a line of its own, keeping the bar intact.
func (b *progressBar) note(format string, args ...any) {
	b.endLine()
	fmt.Fprintf(b.w, format+"\n", args...)
}

// endLine finishes a bar drawn in place, so that the next output starts on a
// new line.
func (b *progressBar) endLine() {
	if b.drawn {
		fmt.Fprintln(b.w)
		b.drawn, b.lastLine = false, ""
	}
}

// observe records a processed count and drops samples older than rateWindow
// (keeping at least two).
func (b *progressBar) observe(now time.Time, processed int) {
	if b.start.IsZero() {
		b.start, b.startRow = now, processed
	}
	b.samples = append(b.samples, sample{at: now, processed: processed})
	drop := 0
	for drop < len(b.samples)-2 && now.Sub(b.samples[drop+1].at) >= rateWindow {
		drop++
	}
	b.samples = b.samples[drop:]
}

// rate is rows per second over the recent samples; ok is false while there
// is too little to go on.
func (b *progressBar) rate() (perSec float64, ok bool) {
	if len(b.samples) < 2 {
		return 0, false
	}
	first, last := b.samples[0], b.samples[len(b.samples)-1]
	dt := last.at.Sub(first.at).Seconds()
	if dt < 0.2 {
		return 0, false
	}
	return float64(last.processed-first.processed) / dt, true
}

// line renders one progress line. tty lines carry a bar.
func (b *progressBar) line(s importState, now time.Time, withBar bool) string {
	pct := 0.0
	if s.Total > 0 {
		pct = 100 * float64(s.Processed) / float64(s.Total)
	}
	if s.Status == "completed" {
		pct = 100
	}
	var sb strings.Builder
	if withBar {
		filled := int(pct / 100 * barWidth)
		fmt.Fprintf(&sb, "[%s%s] ", strings.Repeat("#", filled), strings.Repeat("-", barWidth-filled))
	} else {
		fmt.Fprintf(&sb, "import %s %s: ", s.ID, s.Status)
	}
	fmt.Fprintf(&sb, "%d/%d rows %5.1f%%", s.Processed, s.Total, pct)
	r, ok := b.rate()
	if s.Status == "completed" {
		// The final line shows the average over the whole watch.
		if secs := now.Sub(b.start).Seconds(); secs > 0 {
			r, ok = float64(s.Processed-b.startRow)/secs, true
		}
	}
	switch {
	case ok:
		fmt.Fprintf(&sb, "  %.0f rows/s", r)
	default:
		sb.WriteString("  - rows/s")
	}
	switch {
	case s.Status == "completed":
		fmt.Fprintf(&sb, "  done in %s", b.elapsed(now))
	case ok && r > 0:
		eta := time.Duration(float64(s.Total-s.Processed) / r * float64(time.Second))
		fmt.Fprintf(&sb, "  ETA %s", eta.Round(time.Second))
	default:
		sb.WriteString("  ETA -")
	}
	return sb.String()
}

// elapsed is the time since the first observation, rounded for display.
func (b *progressBar) elapsed(now time.Time) time.Duration {
	d := now.Sub(b.start)
	if d < 10*time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Second)
}
