package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
	"github.com/phonepipe/phonepipe/internal/listgen"
)

// benchOptions are the flags of `phonepipe bench`.
type benchOptions struct {
	rows        int
	rssRows     int
	ackImports  int
	ackRows     int
	watchers    int
	seed        uint64
	backends    []string
	postgresDSN string
	mysqlDSN    string
	output      string
	// executable is the phonepipe binary the services run from.
	executable string
	// progress receives one line per step.
	progress io.Writer
}

// bench is `phonepipe bench`: it measures the pipeline against the bare
// phone library on this machine and prints a markdown table.
func bench(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	o, err := benchParseFlags(args, stderr, env)
	if err != nil {
		return err
	}
	if o.executable, err = os.Executable(); err != nil {
		return fmt.Errorf("find the phonepipe binary: %w", err)
	}
	return benchRunCommand(ctx, o, stdout)
}

// benchRunCommand runs the measurements of o and writes the table.
func benchRunCommand(ctx context.Context, o benchOptions, stdout io.Writer) error {
	rep, err := benchRunAll(ctx, o)
	if err != nil {
		return err
	}
	md := rep.markdown()
	if _, err := io.WriteString(stdout, md); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	if o.output != "" {
		if err := os.WriteFile(o.output, []byte(md), 0o644); err != nil {
			return fmt.Errorf("write --output: %w", err)
		}
	}
	return nil
}

func benchParseFlags(args []string, stderr io.Writer, env func(string) (string, bool)) (benchOptions, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := benchOptions{progress: stderr}
	backends := app.BackendSQLite
	fs.IntVar(&o.rows, "rows", 200_000, "rows of the list imported end to end on each backend")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the generated lists: the same seed, the same lists")
	fs.StringVar(&backends, "backends", backends, "comma-separated backends to measure: "+strings.Join(benchBackendNames(), ","))
	fs.StringVar(&o.postgresDSN, "postgres-dsn", "", "PostgreSQL server for the postgres backend and kafka+postgres (a scratch schema is created and dropped)")
	fs.StringVar(&o.mysqlDSN, "mysql-dsn", "", "MySQL/MariaDB server for the mysql backend (a scratch database is created and dropped)")
	fs.StringVar(&o.output, "output", "", "also write the markdown table to this file")
	fs.IntVar(&o.rssRows, "rss-rows", 1_000_000, "rows of the import during which peak RSS and ack latency are measured (0 skips the RSS measurement)")
	fs.IntVar(&o.ackImports, "ack-imports", 50, "small imports submitted one after another during the large import, for ack latency (0 skips)")
	fs.IntVar(&o.ackRows, "ack-rows", 100, "rows of each small import")
	fs.IntVar(&o.watchers, "watchers", 200, "WebSocket watchers of one import for the completion fan-out (0 skips)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: phonepipe bench [flags]\n\nMeasures end-to-end import throughput against the bare phone library on this machine\nand prints a markdown table. Each backend runs as a child `phonepipe serve` process.\n\n")
		fs.PrintDefaults()
	}
	if err := parseWithEnv(fs, args, env); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, &exitError{code: 2, err: fmt.Errorf("bench takes no arguments, got %q", fs.Args())}
	}
	o.backends = splitList(backends)
	var errs []error
	if o.rows < 1 {
		errs = append(errs, errors.New("--rows must be at least 1"))
	}
	if o.rssRows < 0 || o.ackImports < 0 || o.watchers < 0 {
		errs = append(errs, errors.New("--rss-rows, --ack-imports and --watchers must not be negative"))
	}
	if o.ackRows < 1 {
		errs = append(errs, errors.New("--ack-rows must be at least 1"))
	}
	if len(o.backends) == 0 {
		errs = append(errs, errors.New("--backends names no backend"))
	}
	for _, b := range o.backends {
		if !slices.Contains(benchBackendNames(), b) {
			errs = append(errs, fmt.Errorf("--backends: unknown backend %q (%s)", b, strings.Join(benchBackendNames(), ", ")))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return o, &exitError{code: 2, err: err}
	}
	return o, nil
}

// command is the command line that reproduces o, without secrets.
func (o benchOptions) command() string {
	s := fmt.Sprintf("phonepipe bench --rows %d --rss-rows %d --seed %d --backends %s --ack-imports %d --watchers %d",
		o.rows, o.rssRows, o.seed, strings.Join(o.backends, ","), o.ackImports, o.watchers)
	if o.ackRows != 100 {
		s += fmt.Sprintf(" --ack-rows %d", o.ackRows)
	}
	if o.postgresDSN != "" {
		s += " --postgres-dsn DSN"
	}
	if o.mysqlDSN != "" {
		s += " --mysql-dsn DSN"
	}
	return s
}

func (o benchOptions) logf(format string, args ...any) {
	fmt.Fprintf(o.progress, "bench: "+format+"\n", args...)
}

// serveLimits are the serve flags that let the largest list in.
func (o benchOptions) serveLimits(largestFile int64) []string {
	rows := max(o.rows, o.rssRows, 1_000_000)
	return []string{"--max-rows", fmt.Sprint(rows), "--max-upload-bytes", fmt.Sprint(max(100<<20, 2*largestFile))}
}

// benchRunner holds what the measurements of one run share.
type benchRunner struct {
	o   benchOptions
	dir string // scratch space, removed at the end
	rep *benchReport
	// mainPath is the main list; list is its rows for the bare loop.
	mainPath string
	list     []benchRow
	// largest is the size of the largest list file.
	largest int64
}

// benchRunAll runs every measurement of o, one after another, and returns
// what it found. A backend that fails is reported in the table; the run
// stops only when ctx is done or the lists cannot be made.
func benchRunAll(ctx context.Context, o benchOptions) (*benchReport, error) {
	dir, err := os.MkdirTemp("", "phonepipe-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench work dir: %w", err)
	}
	defer os.RemoveAll(dir)
	r := &benchRunner{o: o, dir: dir, rep: &benchReport{opts: o, started: time.Now(), workers: benchWorkers()},
		mainPath: filepath.Join(dir, "list.csv")}
	r.rep.cpuModel, r.rep.memBytes = benchMachineInfo()
	if r.rep.list, err = benchWriteList(ctx, o, r.mainPath, o.seed, o.rows); err != nil {
		return nil, err
	}
	r.largest = benchFileSize(r.mainPath)
	if r.list, err = benchLoadList(r.mainPath); err != nil {
		return nil, err
	}
	for i, name := range o.backends {
		res := benchBackendResult{name: name, label: name}
		err := r.measureBackend(ctx, i, &res)
		r.rep.backends = append(r.rep.backends, res)
		if err != nil {
			return nil, err
		}
	}
	r.list = nil // not needed any more: let the large run have the memory
	if err := r.measureLarge(ctx); err != nil {
		return nil, err
	}
	r.rep.finished = time.Now()
	return r.rep, nil
}

// benchWriteList writes a list of rows rows to path.
func benchWriteList(ctx context.Context, o benchOptions, path string, seed uint64, rows int) (listgen.Stats, error) {
	start := time.Now()
	f, err := os.Create(path)
	if err != nil {
		return listgen.Stats{}, fmt.Errorf("create list: %w", err)
	}
	st, err := listgen.WriteCSV(ctx, f, listgen.Config{Seed: seed}, rows)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("write list: %w", cerr)
	}
	if err != nil {
		return st, err
	}
	o.logf("generated a %d-row list (seed %d, %s) in %s", rows, seed, benchBytes(benchFileSize(path)), time.Since(start).Round(time.Millisecond))
	return st, nil
}

func benchFileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// measureBackend measures the bare loop and then the end-to-end import of
// the main list on one backend; the first backend that runs also hosts
// the fan-out measurement and, on sqlite, the replay. Failures of the
// backend go into res; only a done ctx is returned.
func (r *benchRunner) measureBackend(ctx context.Context, i int, res *benchBackendResult) error {
	o, rep := r.o, r.rep
	b, err := benchPrepareBackend(ctx, res.name, o)
	if un := (*benchUnavailable)(nil); errors.As(err, &un) {
		res.skipped = un.reason
		o.logf("%s: skipped: %v", res.name, err)
		return nil
	}
	if err != nil {
		res.err = err
		o.logf("%s: %v", res.name, err)
		return ctx.Err()
	}
	defer func() {
		if err := b.cleanup(context.WithoutCancel(ctx)); err != nil {
			o.logf("%s: cleanup: %v", b.label, err)
		}
	}()
	res.label, res.note = b.label, b.note

	o.logf("%s: bare loop over %d rows on %d workers", b.label, len(r.list), benchWorkers())
	if res.ceiling, err = benchMeasureCeiling(ctx, r.list, benchWorkers()); err != nil {
		return err
	}
	o.logf("%s: bare loop: %.0f numbers/s", b.label, res.ceiling.rate())

	dataDir := filepath.Join(r.dir, fmt.Sprintf("data-%d-%s", i, res.name))
	svc, err := benchStart(ctx, o.executable, dataDir, filepath.Join(r.dir, fmt.Sprintf("service-%d.log", i)),
		append(slices.Clone(b.args), o.serveLimits(r.largest)...))
	if err != nil {
		res.err = err
		o.logf("%s: %v", b.label, err)
		return ctx.Err()
	}
	defer svc.kill()
	o.logf("%s: importing %d rows end to end", b.label, o.rows)
	run, err := benchMeasureImport(ctx, svc, r.mainPath, o.rows, nil)
	if err != nil {
		res.err = err
		o.logf("%s: %v", b.label, err)
		return ctx.Err()
	}
	res.run = &run
	o.logf("%s: %.0f numbers/s end to end (%.2f× the bare loop)", b.label, run.rate(), run.rate()/res.ceiling.rate())

	if rep.fanOut == nil && o.watchers > 0 {
		rep.fanOut = r.fanOutOn(ctx, svc, b.label, run.rate())
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if err := svc.stop(); err != nil {
		o.logf("%s: %v", b.label, err)
	}
	if res.name == app.BackendSQLite && rep.replay == nil {
		events := o.rows
		if f := rep.fanOut; f != nil && f.backend == b.label {
			events += f.fanOut.rows
		}
		rep.replay = r.replayOn(ctx, dataDir, b.args, events)
	}
	return ctx.Err()
}

// fanOutOn measures the completion fan-out on a running service. The
// import is sized to run about three seconds, so every watcher is
// connected before it completes.
func (r *benchRunner) fanOutOn(ctx context.Context, svc *benchService, label string, rate float64) *benchFanOutResult {
	o := r.o
	rows := min(max(int(3*rate), 1000), 200_000)
	res := &benchFanOutResult{backend: label}
	body, err := benchSmallBodies(ctx, o.seed+2, 1, rows)
	if err != nil {
		res.err = err
		return res
	}
	o.logf("%s: fan-out of a %d-row import's completion to %d watchers", label, rows, o.watchers)
	res.fanOut, res.err = benchMeasureFanOut(ctx, svc.client(), body[0], rows, o.watchers)
	if res.err != nil {
		o.logf("%s: fan-out: %v", label, res.err)
	}
	return res
}

// replayOn times `phonepipe replay --all` on a stopped service's data, if
// this binary has the command.
func (r *benchRunner) replayOn(ctx context.Context, dataDir string, args []string, events int) *benchReplayResult {
	res := &benchReplayResult{}
	if !benchReplayAvailable(ctx, r.o.executable) {
		res.missing = true
		return res
	}
	r.o.logf("replaying the sqlite data (about %d events)", events)
	var n int
	res.wall, n, res.err = benchMeasureReplay(ctx, r.o.executable, dataDir, args)
	res.events = cmp.Or(n, events)
	return res
}

// measureLarge imports the large list on a fresh embedded service,
// submitting small imports one after another while it runs, and reads
// the service's peak RSS at the end.
func (r *benchRunner) measureLarge(ctx context.Context) error {
	o := r.o
	if o.rssRows == 0 && o.ackImports == 0 {
		return nil
	}
	path, rows := r.mainPath, o.rows
	if o.rssRows > 0 {
		path, rows = filepath.Join(r.dir, "large.csv"), o.rssRows
		if _, err := benchWriteList(ctx, o, path, o.seed+1, rows); err != nil {
			return err
		}
	}
	res := &benchLargeResult{rows: rows, rss: o.rssRows > 0}
	r.rep.large = res
	bodies, err := benchSmallBodies(ctx, o.seed+3, o.ackImports, o.ackRows)
	if err != nil {
		return err
	}
	// Spread the small imports over the large one's expected run time.
	expected := time.Duration(float64(rows) / r.rep.expectedRate() * float64(time.Second))
	pause := min(max(expected*8/10/time.Duration(max(o.ackImports, 1)), 20*time.Millisecond), 5*time.Second)

	svc, err := benchStart(ctx, o.executable, filepath.Join(r.dir, "data-large"), filepath.Join(r.dir, "service-large.log"),
		append([]string{"--backend", app.BackendSQLite}, o.serveLimits(benchFileSize(path))...))
	if err != nil {
		res.err = err
		o.logf("large import: %v", err)
		return ctx.Err()
	}
	defer svc.kill()
	o.logf("large import: %d rows on sqlite, %d small imports of %d rows during it", rows, len(bodies), o.ackRows)
	running := make(chan struct{})
	var wg sync.WaitGroup
	accepted := func(string) {
		if len(bodies) > 0 {
			wg.Go(func() { res.acks = benchSubmitAcks(ctx, svc.client(), bodies, pause, running) })
		}
	}
	run, err := benchMeasureImport(ctx, svc, path, rows, accepted)
	close(running)
	wg.Wait()
	res.acks.planned, res.acks.rows = len(bodies), o.ackRows
	if err != nil {
		res.err = err
		o.logf("large import: %v", err)
		return ctx.Err()
	}
	res.run = &run
	o.logf("large import: %.0f numbers/s, peak RSS %s", run.rate(), benchBytes(run.peak))
	if err := svc.stop(); err != nil {
		o.logf("large import: %v", err)
	}
	return ctx.Err()
}
