package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/phonepipe/phonepipe/transport/storage"
)

// Replay rebuilds projections from the event log.
//
// What a projection has seen is defined by the live handlers that build it:
// the messages each one recorded as handled (storage.Handled, written in
// the same transaction as the handler's effects). A replay applies exactly
// those messages, found in the log, with the projection code the handler
// runs — never the handler itself, so nothing is published, no webhook is
// queued and no WebSocket message is sent. The projections here depend
// only on the set of messages applied, not on their order, so the rebuilt
// tables equal what the live handlers built from the same messages.
//
// It works in a shadow namespace (storage.Shadow) where the projection code
// runs unchanged under its plain table names:
//
//  1. build: read the log from its first message and apply every message
//     the live handlers have handled into the shadow, in large transactions;
//  2. catch up: a few more passes over what the live handlers handled
//     meanwhile, so that little is left for step 3;
//  3. swap, in ONE transaction that holds the live handlers still (SQLite:
//     the database's write lock; PostgreSQL and MySQL: the handlers'
//     consumer-group offsets rows FOR UPDATE, plus LOCK TABLE on
//     PostgreSQL): read the handled messages again, apply the rest to the
//     shadow, then replace every live table of the projection with the
//     shadow's (DELETE, INSERT … SELECT) and commit. Readers of the live
//     tables see the old content until the commit and the new one after.
//
// A handled message that cannot be found in the log fails the replay
// before anything live changes.

// LogMessage is one message of the event log.
type LogMessage struct {
	UUID string
	// Name is the versioned message name of its metadata, empty if none.
	Name    string
	Payload []byte
}

// LogPosition is a position in a topic of the log, as a LogReader hands it
// out; only that reader understands it.
type LogPosition any

// LogReader reads one topic of the event log in log order.
type LogReader interface {
	// Next calls fn with every message after the reader's position that q
	// can see, in log order, each with the position at that message, and
	// moves the position past what it read. Table names are prefixed with
	// prefix (the live namespace in a swap transaction). It stops at the
	// first error of fn. Readers of logs outside the database ignore q.
	Next(ctx context.Context, q storage.Querier, prefix string, fn func(at LogPosition, m LogMessage) error) error
	// Seek moves the position to at, a position Next handed out (the
	// message there is read again), or to the beginning when at is nil.
	Seek(at LogPosition)
}

// EventLog is the log a replay reads.
type EventLog interface {
	// Reader returns a reader of the topic of a message name, at the
	// beginning of the topic.
	Reader(message string) (LogReader, error)
	// LockConsumer holds the consumer group's position on the topic of
	// message for the rest of the swap transaction tx, so that the group's
	// handler cannot apply another message until it ends.
	LockConsumer(ctx context.Context, tx *sql.Tx, prefix, message, group string) error
}

// ReplayConfig configures a Replayer.
type ReplayConfig struct {
	Live   *storage.DB
	Shadow *storage.Shadow
	// Partitions are more shadows, beside Shadow, in which the build
	// applies in parallel the parts of the messages that sources can split
	// by stream (ReplaySource.Split). They are absorbed into Shadow before
	// the swap; the caller drops them. Optional.
	Partitions []*storage.Shadow
	Log        EventLog
	// Progress, when set, is told about progress (from Run's goroutine).
	Progress func(ReplayProgress)
	Logger   *slog.Logger
	// BatchEvents bounds the events applied per shadow transaction.
	// Default 20000.
	BatchEvents int
	// CatchUpRounds bounds the passes between the build and the swap.
	// Default 5.
	CatchUpRounds int
}

func (c *ReplayConfig) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.BatchEvents <= 0 {
		c.BatchEvents = 20000
	}
	if c.CatchUpRounds <= 0 {
		c.CatchUpRounds = 5
	}
}

// Validate checks the configuration.
func (c ReplayConfig) Validate() error {
	if c.Live == nil || c.Shadow == nil || c.Log == nil {
		return errors.New("replay: missing live database, shadow or log")
	}
	for _, sh := range append([]*storage.Shadow{c.Shadow}, c.Partitions...) {
		if sh == nil || sh.DB.Dialect != c.Live.Dialect {
			return fmt.Errorf("replay: a shadow is missing or not %s like the live database", c.Live.Dialect)
		}
	}
	return nil
}

// ReplayPhase names a step of a replay.
type ReplayPhase string

// The phases of a replay, in order.
const (
	PhaseBuild   ReplayPhase = "build"
	PhaseCatchUp ReplayPhase = "catch-up"
	PhaseSwap    ReplayPhase = "swap"
	PhaseDone    ReplayPhase = "done"
)

// ReplayProgress is a snapshot of a running replay.
type ReplayProgress struct {
	Phase ReplayPhase
	// Messages counts handled messages applied so far (one per handler
	// that handled it); Total is how many the live handlers have handled.
	Messages, Total int
	// Events counts the events of the messages applied so far (each
	// message once).
	Events  int64
	Elapsed time.Duration
}

// ReplayReport is the outcome of a replay.
type ReplayReport struct {
	Projections []string
	Messages    int
	Events      int64
	// InSwap counts the messages applied inside the swap transaction.
	InSwap int
	// Rows counts the rows of each swapped table.
	Rows map[string]int64
	// Build is the time until the swap began, Swap the swap's.
	Build, Swap time.Duration
}

// Replayer rebuilds projections (see Run).
type Replayer struct {
	cfg ReplayConfig
}

// NewReplayer checks cfg and returns its Replayer.
func NewReplayer(cfg ReplayConfig) (*Replayer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Replayer{cfg: cfg}, nil
}

// sourceState is the progress of one source.
type sourceState struct {
	src     ReplaySource
	handled map[string]bool
	applied map[string]bool
}

// topicState is the progress of one topic of the log.
type topicState struct {
	topic   ReplayTopic
	reader  LogReader
	sources []*sourceState
	// pending is the position of the first message read that some source
	// had not handled yet; the next pass starts there.
	pending    LogPosition
	hasPending bool
}

// pendingApply is a message (or part of one) queued for a source.
type pendingApply struct {
	src *sourceState
	v   any
}

// partition is one shadow the build applies to, with its queue.
type partition struct {
	sh    *storage.Shadow
	queue []pendingApply
}

// run is the state of one Run.
type run struct {
	r       *Replayer
	start   time.Time
	phase   ReplayPhase
	sources []*sourceState
	topics  []*topicState
	// parts are the shadows being built; parts[0] is the swap's. Sources
	// that cannot split always apply to the same one (home).
	parts    []*partition
	home     map[*sourceState]int
	queued   int // events queued
	messages int
	events   int64
	inSwap   int
	last     time.Time
}

// Run rebuilds projs and swaps them in. It migrates the shadow first; the
// caller drops it afterwards.
func (r *Replayer) Run(ctx context.Context, projs []Projection) (ReplayReport, error) {
	ru := &run{r: r, start: time.Now(), phase: PhaseBuild}
	if err := ru.prepare(ctx, projs); err != nil {
		return ReplayReport{}, err
	}
	log := r.cfg.Logger
	log.Info("replay: building the shadow", "shadow", r.cfg.Shadow.Name, "projections", Names(projs), "messages", ru.total())
	if err := ru.readAhead(ctx, ru.applyParts); err != nil {
		return ReplayReport{}, err
	}
	ru.phase = PhaseCatchUp
	for round := 0; round < r.cfg.CatchUpRounds; round++ {
		before := ru.messages
		if err := ru.refresh(ctx, r.cfg.Live.Read, "", false); err != nil {
			return ReplayReport{}, err
		}
		if err := ru.readAhead(ctx, ru.applyParts); err != nil {
			return ReplayReport{}, err
		}
		if ru.messages-before < 10 {
			break
		}
	}
	if err := ru.absorb(ctx, projs); err != nil {
		return ReplayReport{}, err
	}
	build := time.Since(ru.start)
	ru.phase = PhaseSwap
	ru.report(true)
	log.Info("replay: swapping", "messages", ru.messages, "events", ru.events, "build", build.Round(time.Millisecond))
	rows, err := ru.swap(ctx, projs)
	if err != nil {
		return ReplayReport{}, err
	}
	ru.phase = PhaseDone
	ru.report(true)
	rep := ReplayReport{Projections: Names(projs), Messages: ru.messages, Events: ru.events, InSwap: ru.inSwap,
		Rows: rows, Build: build, Swap: time.Since(ru.start) - build}
	log.Info("replay: done", "projections", rep.Projections, "messages", rep.Messages, "events", rep.Events,
		"in_swap", rep.InSwap, "swap", rep.Swap.Round(time.Millisecond))
	return rep, nil
}

// prepare migrates the shadow, reads what the live handlers handled and
// opens the topics.
func (ru *run) prepare(ctx context.Context, projs []Projection) error {
	for _, sh := range append([]*storage.Shadow{ru.r.cfg.Shadow}, ru.r.cfg.Partitions...) {
		// Every table the projection code might name exists in the
		// shadow, so an unqualified name never reaches a live table.
		if err := sh.DB.Migrate(ctx); err != nil {
			return fmt.Errorf("replay: migrate shadow: %w", err)
		}
		if err := Migrate(ctx, sh.DB); err != nil {
			return fmt.Errorf("replay: migrate shadow: %w", err)
		}
		ru.parts = append(ru.parts, &partition{sh: sh})
	}
	ru.home = map[*sourceState]int{}
	byTopic := map[string]*topicState{}
	for _, p := range projs {
		for _, src := range p.Sources {
			if slices.ContainsFunc(ru.sources, func(s *sourceState) bool {
				return s.src.Handler == src.Handler && s.src.Topic.Message == src.Topic.Message
			}) {
				continue
			}
			s := &sourceState{src: src, applied: map[string]bool{}}
			ru.sources = append(ru.sources, s)
			if src.Split == nil {
				// Sources that cannot split fill the partitions from the
				// last one, where the split ones leave the most room.
				ru.home[s] = len(ru.parts) - 1 - len(ru.home)%len(ru.parts)
			}
			t := byTopic[src.Topic.Message]
			if t == nil {
				reader, err := ru.r.cfg.Log.Reader(src.Topic.Message)
				if err != nil {
					return fmt.Errorf("replay: %w", err)
				}
				t = &topicState{topic: src.Topic, reader: reader}
				byTopic[src.Topic.Message] = t
				ru.topics = append(ru.topics, t)
			}
			t.sources = append(t.sources, s)
		}
	}
	return ru.refresh(ctx, ru.r.cfg.Live.Read, "", false)
}

// refresh reads what every source's handler has handled, and rewinds each
// topic to its first message not applied for lack of that. lock reads
// them FOR UPDATE on MySQL (in the swap): the next-key locks of that read
// keep the handlers from recording another message until the swap ends,
// even one whose consumer group has no offsets row to hold yet.
func (ru *run) refresh(ctx context.Context, q storage.Querier, prefix string, lock bool) error {
	for _, s := range ru.sources {
		h, err := handledKeys(ctx, q, ru.r.cfg.Live.Dialect, prefix, s.src.Handler, lock)
		if err != nil {
			return err
		}
		s.handled = h
	}
	for _, t := range ru.topics {
		if t.hasPending {
			t.reader.Seek(t.pending)
			t.pending, t.hasPending = nil, false
		}
	}
	return nil
}

// handledKeys reads the keys of the messages handler has handled.
func handledKeys(ctx context.Context, q storage.Querier, d storage.Dialect, prefix, handler string, lock bool) (map[string]bool, error) {
	query := `SELECT msg_key FROM ` + prefix + `handled_messages WHERE handler = ?`
	if lock && d == storage.MySQL {
		query += ` FOR UPDATE`
	}
	rows, err := q.QueryContext(ctx, d.Rebind(query), handler)
	if err != nil {
		return nil, fmt.Errorf("replay: read what %s handled: %w", handler, err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("replay: read what %s handled: %w", handler, err)
		}
		out[k] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("replay: read what %s handled: %w", handler, err)
	}
	return out, nil
}

// total is how many messages the live handlers have handled.
func (ru *run) total() int {
	n := 0
	for _, s := range ru.sources {
		n += len(s.handled)
	}
	return n
}

// pass reads every topic from its position through q and queues each
// message for the sources that handled it and have not applied it yet;
// flush applies the queues.
func (ru *run) pass(ctx context.Context, q storage.Querier, prefix string, flush func(context.Context) error) error {
	for _, t := range ru.topics {
		err := t.reader.Next(ctx, q, prefix, func(at LogPosition, m LogMessage) error {
			d, err := t.decode(m)
			if err != nil {
				return err
			}
			return ru.take(ctx, t, at, d, flush)
		})
		if err != nil {
			return fmt.Errorf("replay: read %s: %w", t.topic.Message, err)
		}
	}
	return flush(ctx)
}

// readAhead is pass through the live read pool with the log read and
// decoded by another goroutine, ahead of the applying.
func (ru *run) readAhead(ctx context.Context, flush func(context.Context) error) error {
	for _, t := range ru.topics {
		type item struct {
			at LogPosition
			d  Decoded
		}
		rctx, cancel := context.WithCancel(ctx)
		items := make(chan item, 16)
		readErr := make(chan error, 1)
		go func() {
			defer close(items)
			readErr <- t.reader.Next(rctx, ru.r.cfg.Live.Read, "", func(at LogPosition, m LogMessage) error {
				d, err := t.decode(m)
				if err != nil {
					return err
				}
				select {
				case items <- item{at, d}:
					return nil
				case <-rctx.Done():
					return rctx.Err()
				}
			})
		}()
		var err error
		for it := range items {
			if err == nil {
				err = ru.take(ctx, t, it.at, it.d, flush)
			}
			if err != nil {
				cancel() // and drain
			}
		}
		cancel()
		if rerr := <-readErr; err == nil && rerr != nil {
			err = fmt.Errorf("replay: read %s: %w", t.topic.Message, rerr)
		}
		if err != nil {
			return err
		}
	}
	return flush(ctx)
}

// decode decodes a message of the topic; a message of another type
// decodes to nothing (Key "").
func (t *topicState) decode(m LogMessage) (Decoded, error) {
	if m.Name != "" && m.Name != t.topic.Message {
		return Decoded{}, nil
	}
	d, err := t.topic.Decode(m.Payload)
	if err != nil {
		return Decoded{}, fmt.Errorf("replay: message %s: %w", m.UUID, err)
	}
	return d, nil
}

// take queues one decoded message, at position at, for every source of the
// topic that handled it and has not applied it yet.
func (ru *run) take(ctx context.Context, t *topicState, at LogPosition, d Decoded, flush func(context.Context) error) error {
	if d.Key == "" {
		return nil
	}
	used := false
	for _, s := range t.sources {
		if s.applied[d.Key] {
			continue
		}
		if !s.handled[d.Key] {
			if !t.hasPending {
				t.pending, t.hasPending = at, true
			}
			continue
		}
		s.applied[d.Key] = true
		ru.enqueue(s, d.Value)
		ru.messages++
		used = true
	}
	if used {
		ru.events += int64(d.Events)
		ru.queued += d.Events
	}
	if ru.queued >= ru.r.cfg.BatchEvents {
		return flush(ctx)
	}
	return nil
}

// enqueue queues v for s: split by stream over the partitions when s can
// split, else on its home partition.
func (ru *run) enqueue(s *sourceState, v any) {
	if s.src.Split == nil || len(ru.parts) == 1 {
		p := ru.parts[ru.home[s]%len(ru.parts)]
		p.queue = append(p.queue, pendingApply{src: s, v: v})
		return
	}
	for i, part := range s.src.Split(v, len(ru.parts)) {
		if part != nil {
			ru.parts[i].queue = append(ru.parts[i].queue, pendingApply{src: s, v: part})
		}
	}
}

// applyParts applies each partition's queue to its shadow, in one
// transaction per partition, the partitions in parallel.
func (ru *run) applyParts(ctx context.Context) error {
	errs := make([]error, len(ru.parts))
	var wg sync.WaitGroup
	for i, p := range ru.parts {
		if len(p.queue) == 0 {
			continue
		}
		wg.Go(func() {
			errs[i] = storage.InTx(ctx, p.sh.DB.Write, func(ctx context.Context) error {
				return applyQueue(ctx, p.sh.DB, p.queue)
			})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, p := range ru.parts {
		p.queue = p.queue[:0]
	}
	ru.queued = 0
	ru.report(false)
	return nil
}

// applyQueue applies queued messages in the unit of work of ctx.
func applyQueue(ctx context.Context, db *storage.DB, queue []pendingApply) error {
	for _, p := range queue {
		if err := p.src.src.Apply(ctx, db, p.v); err != nil {
			return fmt.Errorf("replay: apply for %s: %w", p.src.src.Handler, err)
		}
	}
	return nil
}

// absorb merges the partitions into the swap's shadow; from then on
// everything applies there.
func (ru *run) absorb(ctx context.Context, projs []Projection) error {
	if len(ru.parts) == 1 {
		return nil
	}
	main := ru.parts[0].sh
	for _, p := range ru.parts[1:] {
		if err := main.Absorb(ctx, p.sh, swapTables(projs)); err != nil {
			return fmt.Errorf("replay: %w", err)
		}
	}
	ru.parts = ru.parts[:1]
	return nil
}

// report tells Progress, at most every 200ms unless force.
func (ru *run) report(force bool) {
	if ru.r.cfg.Progress == nil {
		return
	}
	now := time.Now()
	if !force && now.Sub(ru.last) < 200*time.Millisecond {
		return
	}
	ru.last = now
	ru.r.cfg.Progress(ReplayProgress{Phase: ru.phase, Messages: ru.messages, Total: max(ru.total(), ru.messages),
		Events: ru.events, Elapsed: now.Sub(ru.start)})
}

// swap applies what is left inside the swap transaction and replaces the
// live tables of projs with the shadow's. It returns the rows per table.
func (ru *run) swap(ctx context.Context, projs []Projection) (rows map[string]int64, err error) {
	sh := ru.r.cfg.Shadow
	tx, end, err := sh.BeginSwap(ctx)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			err = errors.Join(err, ignoreTxDone(tx.Rollback()))
		}
		err = errors.Join(err, end())
	}()
	prefix := sh.LivePrefix()
	// The consumers first, then the tables: a handler takes its offsets
	// row before it writes, so this order cannot deadlock with it.
	for _, s := range ru.sources {
		if err := ru.r.cfg.Log.LockConsumer(ctx, tx, prefix, s.src.Topic.Message, s.src.Handler); err != nil {
			return nil, fmt.Errorf("replay: lock consumer %s: %w", s.src.Handler, err)
		}
	}
	tables := swapTables(projs)
	if err := sh.LockLive(ctx, tx, tables); err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	txCtx := storage.WithTx(ctx, tx)
	before := ru.messages
	inTx := func(context.Context) error {
		q := ru.parts[0].queue
		ru.parts[0].queue, ru.queued = q[:0], 0
		return applyQueue(txCtx, sh.DB, q)
	}
	if err := ru.refresh(ctx, tx, prefix, true); err != nil {
		return nil, err
	}
	if err := ru.pass(ctx, tx, prefix, inTx); err != nil {
		return nil, err
	}
	if ru.missing() {
		// A message committed behind a position already read (possible on
		// MySQL, whose offsets are not in commit order): read it all again.
		for _, t := range ru.topics {
			t.reader.Seek(nil)
		}
		if err := ru.pass(ctx, tx, prefix, inTx); err != nil {
			return nil, err
		}
	}
	if err := ru.checkComplete(); err != nil {
		return nil, err
	}
	ru.inSwap = ru.messages - before
	if rows, err = copyTables(ctx, tx, sh.DB.Dialect, prefix, tables); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("replay: commit swap: %w", err)
	}
	committed = true
	return rows, nil
}

// missing reports whether a handled message has not been applied.
func (ru *run) missing() bool {
	for _, s := range ru.sources {
		if len(s.applied) != len(s.handled) {
			return true
		}
		for k := range s.handled {
			if !s.applied[k] {
				return true
			}
		}
	}
	return false
}

// checkComplete fails unless every source applied exactly what its
// handler handled.
func (ru *run) checkComplete() error {
	for _, s := range ru.sources {
		var lost, extra []string
		for k := range s.handled {
			if !s.applied[k] {
				lost = append(lost, k)
			}
		}
		for k := range s.applied {
			if !s.handled[k] {
				extra = append(extra, k)
			}
		}
		if len(lost) > 0 {
			slices.Sort(lost)
			return fmt.Errorf("replay: %d message(s) handled by %s are not in the log of %s (first: %s); nothing was changed",
				len(lost), s.src.Handler, s.src.Topic.Message, lost[0])
		}
		if len(extra) > 0 {
			slices.Sort(extra)
			return fmt.Errorf("replay: %d message(s) applied are no longer recorded as handled by %s (first: %s); nothing was changed",
				len(extra), s.src.Handler, extra[0])
		}
	}
	return nil
}

// swapTables lists the tables of projs, each once.
func swapTables(projs []Projection) []string {
	var out []string
	for _, p := range projs {
		for _, t := range p.Tables {
			if !slices.Contains(out, t.Name) {
				out = append(out, t.Name)
			}
		}
	}
	return out
}

// copyTables replaces each live table with the shadow's.
func copyTables(ctx context.Context, tx *sql.Tx, d storage.Dialect, prefix string, tables []string) (map[string]int64, error) {
	rows := map[string]int64{}
	for _, t := range tables {
		cols, err := columnsOf(ctx, tx, t)
		if err != nil {
			return nil, err
		}
		liveCols, err := columnsOf(ctx, tx, prefix+t)
		if err != nil {
			return nil, err
		}
		if !slices.Equal(sortedLower(cols), sortedLower(liveCols)) {
			return nil, fmt.Errorf("replay: table %s has columns %v live and %v in the shadow (migrate the live database first)",
				t, liveCols, cols)
		}
		quoted := make([]string, len(cols))
		for i, c := range cols {
			quoted[i] = storage.QuoteIdent(d, c)
		}
		list := strings.Join(quoted, ", ")
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+prefix+t); err != nil {
			return nil, fmt.Errorf("replay: empty live %s: %w", t, err)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO `+prefix+t+` (`+list+`) SELECT `+list+` FROM `+t)
		if err != nil {
			return nil, fmt.Errorf("replay: fill live %s: %w", t, err)
		}
		if rows[t], err = res.RowsAffected(); err != nil {
			return nil, fmt.Errorf("replay: fill live %s: %w", t, err)
		}
	}
	return rows, nil
}

// columnsOf lists the columns of a table.
func columnsOf(ctx context.Context, q storage.Querier, table string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT * FROM `+table+` WHERE 1 = 0`)
	if err != nil {
		return nil, fmt.Errorf("replay: columns of %s: %w", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("replay: columns of %s: %w", table, err)
	}
	return cols, rows.Err()
}

func sortedLower(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	slices.Sort(out)
	return out
}

// ignoreTxDone drops the error of rolling back a transaction already over.
func ignoreTxDone(err error) error {
	if err == nil || errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return fmt.Errorf("replay: roll back swap: %w", err)
}
