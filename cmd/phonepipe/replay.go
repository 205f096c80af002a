package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
	"github.com/phonepipe/phonepipe/projections"
)

// replayUsage is the help of `phonepipe replay`.
const replayUsage = `usage: phonepipe replay [--projection NAME]... [--all] [--data-dir D] [--backend B]

Rebuilds projections from the event log into a shadow, then swaps them in
atomically once caught up. A running 'phonepipe serve' keeps answering from
the old tables until the swap. Nothing is published and no webhook or
WebSocket message is sent. See docs/REPLAY.md.

projections: %s
`

// checksumUsage is the help of `phonepipe projections`.
const checksumUsage = `usage: phonepipe projections checksum [--data-dir D] [--backend B]

Prints one line per projection, NAME SHA256, over its canonical content.
`

// backendFlags are the flags that locate a deployment's data.
func backendFlags(fs *flag.FlagSet, cfg *app.Config) {
	fs.StringVar(&cfg.DataDir, "data-dir", "./data", "where the embedded backend keeps its files")
	fs.StringVar(&cfg.Backend, "backend", app.BackendSQLite, "the backend the service runs on: sqlite, postgres, mysql or kafka")
	fs.StringVar(&cfg.PostgresDSN, "postgres-dsn", "", "PostgreSQL database (backend postgres; projections of backend kafka)")
	fs.StringVar(&cfg.MySQLDSN, "mysql-dsn", "", "MySQL/MariaDB database (backend mysql)")
	fs.Func("kafka-brokers", "comma-separated host:port list of Kafka brokers (backend kafka)", func(s string) error {
		cfg.KafkaBrokers = splitList(s)
		return nil
	})
}

// replay runs `phonepipe replay`.
func replay(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, replayUsage, strings.Join(replayableNames(), ", "))
		fs.PrintDefaults()
	}
	var (
		cfg      app.Config
		opts     app.ReplayOptions
		logLevel string
	)
	backendFlags(fs, &cfg)
	fs.Func("projection", "a projection to rebuild (repeatable, or comma-separated)", func(s string) error {
		opts.Projections = append(opts.Projections, splitList(s)...)
		return nil
	})
	fs.BoolVar(&opts.All, "all", false, "rebuild every replayable projection")
	fs.StringVar(&logLevel, "log-level", "warn", "debug, info, warn or error")
	if err := parseWithEnv(fs, args, env); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("replay takes no arguments, got %q", fs.Args())}
	}
	if !opts.All && len(opts.Projections) == 0 {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("name a --projection or give --all")}
	}
	var err error
	if cfg.Logger, err = newLogger(stderr, logLevel); err != nil {
		return err
	}
	bar := newReplayBar(stderr, env)
	opts.Progress = bar.update
	rep, err := app.Replay(ctx, cfg, opts)
	bar.end()
	if err != nil {
		return err
	}
	total := rep.Build + rep.Swap
	rate := 0.0
	if s := total.Seconds(); s > 0 {
		rate = float64(rep.Events) / s
	}
	var changed int64
	for _, n := range rep.Changed {
		changed += n
	}
	fmt.Fprintf(stdout, "replayed %s: %d messages, %d events in %s (%.0f events/s); "+
		"swapped in %s, %d messages caught up in the swap, %d live rows changed\n",
		strings.Join(rep.Projections, ", "), rep.Messages, rep.Events, total.Round(time.Millisecond), rate,
		rep.Swap.Round(time.Millisecond), rep.InSwap, changed)
	return nil
}

// projectionsCmd runs `phonepipe projections SUBCOMMAND`.
func projectionsCmd(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	if len(args) == 0 || args[0] != "checksum" {
		if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
			fmt.Fprint(stdout, checksumUsage)
			return nil
		}
		fmt.Fprint(stderr, checksumUsage)
		return &exitError{code: 2, err: errors.New("projections needs a subcommand: checksum")}
	}
	fs := flag.NewFlagSet("projections checksum", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, checksumUsage); fs.PrintDefaults() }
	var cfg app.Config
	backendFlags(fs, &cfg)
	if err := parseWithEnv(fs, args[1:], env); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("projections checksum takes no arguments, got %q", fs.Args())}
	}
	sums, err := app.Checksums(ctx, cfg)
	if err != nil {
		return err
	}
	for _, s := range sums {
		fmt.Fprintln(stdout, s)
	}
	return nil
}

func replayableNames() []string {
	var out []string
	for _, p := range app.Catalog() {
		if p.Replayable() {
			out = append(out, p.Name)
		}
	}
	return out
}

// replayBar shows a replay's progress on w: redrawn in place on a
// terminal, as a plain line every few seconds otherwise.
type replayBar struct {
	w        io.Writer
	tty      bool
	lastDraw time.Time
	drawn    int // length of the line on screen (tty), 0 when none
	phase    projections.ReplayPhase
}

func newReplayBar(w io.Writer, env func(string) (string, bool)) *replayBar {
	return &replayBar{w: w, tty: isTerminal(w, env)}
}

// update shows p.
func (b *replayBar) update(p projections.ReplayProgress) {
	now := time.Now()
	changed := p.Phase != b.phase
	b.phase = p.Phase
	every := barLogEvery
	if b.tty {
		every = barRedraw
	}
	if !changed && now.Sub(b.lastDraw) < every {
		return
	}
	b.lastDraw = now
	line := replayLine(p, b.tty)
	if !b.tty {
		fmt.Fprintln(b.w, line)
		return
	}
	pad := max(b.drawn-len(line), 0)
	fmt.Fprintf(b.w, "\r%s%s", line, strings.Repeat(" ", pad))
	b.drawn = len(line)
}

// end finishes a line drawn in place.
func (b *replayBar) end() {
	if b.drawn > 0 {
		fmt.Fprintln(b.w)
		b.drawn = 0
	}
}

// replayLine renders one progress line: done/total messages, events/s and
// the time left at that rate.
func replayLine(p projections.ReplayProgress, withBar bool) string {
	frac := 1.0
	if p.Total > 0 {
		frac = min(float64(p.Messages)/float64(p.Total), 1)
	}
	var sb strings.Builder
	if withBar {
		filled := int(frac * barWidth)
		fmt.Fprintf(&sb, "[%s%s] ", strings.Repeat("#", filled), strings.Repeat("-", barWidth-filled))
	} else {
		sb.WriteString("replay: ")
	}
	fmt.Fprintf(&sb, "%-8s %d/%d messages %5.1f%%  %d events", p.Phase, p.Messages, p.Total, 100*frac, p.Events)
	secs := p.Elapsed.Seconds()
	if secs < 0.2 || p.Events == 0 {
		sb.WriteString("  - events/s  ETA -")
		return sb.String()
	}
	rate := float64(p.Events) / secs
	fmt.Fprintf(&sb, "  %.0f events/s", rate)
	if p.Messages > 0 && frac < 1 {
		eta := time.Duration(secs / frac * (1 - frac) * float64(time.Second))
		fmt.Fprintf(&sb, "  ETA %s", eta.Round(time.Second))
	} else {
		sb.WriteString("  ETA 0s")
	}
	return sb.String()
}
