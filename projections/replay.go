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
// tables equal what the live handlers built from the same messages. (The
// cut is the handled set rather than a consumer offset because it is exact
// on every backend: on Kafka a handler's effects commit before its offset,
// and on MySQL offsets are not in commit order.)
//
// It works in shadow namespaces (storage.Shadow) where the projection code
// runs unchanged under its plain table names:
//
//  1. build: read the log from its first message (another goroutine reads
//     and decodes ahead) and apply every message the live handlers have
//     handled, in large transactions. Sources whose rows each depend on one
//     stream (ReplaySource.Split) are split by stream over several shadows
//     built in parallel, which are then absorbed into the first;
//  2. catch up: a few more passes over what the live handlers handled
//     meanwhile, so that little is left for step 3;
//  3. swap, in ONE transaction that holds the live handlers still — on a
//     connection whose unqualified tables are the shadow's and which
//     reaches the live ones through a prefix (SQLite: the live file
//     attached as "live"; PostgreSQL: the live schema; MySQL: the live
//     database). SQLite's BEGIN IMMEDIATE takes the write lock of the live
//     database; PostgreSQL and MySQL lock the handlers' consumer-group
//     offsets rows FOR UPDATE, PostgreSQL also the live tables (LOCK TABLE
//     … IN EXCLUSIVE MODE, readers still read) and MySQL the handlers'
//     handled_messages records (FOR UPDATE). Then it reads the handled
//     messages again, applies the rest to the shadow with the projection
//     code, replaces every live table of the projection with the shadow's
//     (DELETE, INSERT … SELECT) and commits. Readers of the live tables see
//     the old content until the commit and the new one after.
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

// Through says where a LogReader reads the log of a SQL backend.
type Through struct {
	// Q is the pool or transaction to query.
	Q storage.Querier
	// Prefix qualifies the topic tables (the live namespace in a swap
	// transaction, see storage.Shadow.LivePrefix).
	Prefix string
	// Committed reads every committed message. Otherwise a reader may
	// hold back messages that could still be followed by others committing
	// behind them (on PostgreSQL, those above the oldest running
	// transaction, as watermill-sql's subscribers do), so that nothing
	// ever appears behind its position.
	Committed bool
}

// LogReader reads one topic of the event log in log order.
type LogReader interface {
	// Next calls fn with every message after the reader's position that it
	// can see through th, in log order, each with the position at that
	// message, and moves the position past what it read. It stops at the
	// first error of fn. Readers of logs outside the database ignore th.
	Next(ctx context.Context, th Through, fn func(at LogPosition, m LogMessage) error) error
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
	// Changed counts, per table, the live rows the swap deleted or
	// inserted (0: the live table was already right).
	Changed map[string]int64
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
	src ReplaySource
	// split sources apply their parts to every partition (placeSources).
	split   bool
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
	counts, err := ru.swap(ctx, projs)
	if err != nil {
		return ReplayReport{}, err
	}
	ru.phase = PhaseDone
	ru.report(true)
	rep := ReplayReport{Projections: Names(projs), Messages: ru.messages, Events: ru.events, InSwap: ru.inSwap,
		Rows: counts.rows, Changed: counts.changed, Build: build, Swap: time.Since(ru.start) - build}
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
	ru.placeSources(projs)
	return ru.refresh(ctx, ru.r.cfg.Live.Read, "", false)
}

// placeSources decides where each source applies. Sources that write the
// same tables (those of one projection, and of projections sharing a
// source) must keep every stream in the same partition: they split only if
// all of them can split (the same way, by stream); otherwise they all
// apply to one home partition, the groups spread over the partitions from
// the last one (the split sources fill every partition).
func (ru *run) placeSources(projs []Projection) {
	group := make(map[*sourceState]*sourceState, len(ru.sources)) // union-find parent
	var find func(s *sourceState) *sourceState
	find = func(s *sourceState) *sourceState {
		if group[s] == nil || group[s] == s {
			return s
		}
		group[s] = find(group[s])
		return group[s]
	}
	state := func(src ReplaySource) *sourceState {
		i := slices.IndexFunc(ru.sources, func(s *sourceState) bool {
			return s.src.Handler == src.Handler && s.src.Topic.Message == src.Topic.Message
		})
		return ru.sources[i]
	}
	for _, p := range projs {
		for _, src := range p.Sources[min(1, len(p.Sources)):] {
			a, b := find(state(p.Sources[0])), find(state(src))
			if a != b {
				group[b] = a
			}
		}
	}
	splittable := map[*sourceState]bool{}
	for _, s := range ru.sources {
		root := find(s)
		if _, seen := splittable[root]; !seen {
			splittable[root] = len(ru.parts) > 1
		}
		splittable[root] = splittable[root] && s.src.Split != nil
	}
	homes := map[*sourceState]int{}
	for _, s := range ru.sources {
		root := find(s)
		if splittable[root] {
			s.split = true
			continue
		}
		h, ok := homes[root]
		if !ok {
			h = len(ru.parts) - 1 - len(homes)%len(ru.parts)
			homes[root] = h
		}
		ru.home[s] = h
	}
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
		err := t.reader.Next(ctx, Through{Q: q, Prefix: prefix, Committed: true}, func(at LogPosition, m LogMessage) error {
			return ru.take(ctx, t, at, t.decode(ru.r.cfg.Logger, m), flush)
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
			readErr <- t.reader.Next(rctx, Through{Q: ru.r.cfg.Live.Read}, func(at LogPosition, m LogMessage) error {
				select {
				case items <- item{at, t.decode(ru.r.cfg.Logger, m)}:
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

// decode decodes a message of the topic; a message of another type, or
// one that does not decode, decodes to nothing (Key ""). No handler can
// have handled a message that does not decode (the bus poisons it before
// the handler runs); if one did, the swap finds its key missing and fails.
func (t *topicState) decode(log *slog.Logger, m LogMessage) Decoded {
	if m.Name != "" && m.Name != t.topic.Message {
		return Decoded{}
	}
	d, err := t.topic.Decode(m.Payload)
	if err != nil {
		log.Warn("replay: skipping a message that does not decode", "message_uuid", m.UUID, "topic", t.topic.Message, "err", err)
		return Decoded{}
	}
	return d
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
	if !s.split || len(ru.parts) == 1 {
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
		if err := main.Absorb(ctx, p.sh, tableNames(swapTables(projs))); err != nil {
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
func (ru *run) swap(ctx context.Context, projs []Projection) (counts swapCounts, err error) {
	sh := ru.r.cfg.Shadow
	tx, end, err := sh.BeginSwap(ctx)
	if err != nil {
		return swapCounts{}, fmt.Errorf("replay: %w", err)
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
			return swapCounts{}, fmt.Errorf("replay: lock consumer %s: %w", s.src.Handler, err)
		}
	}
	tables := swapTables(projs)
	if err := sh.LockLive(ctx, tx, tableNames(tables)); err != nil {
		return swapCounts{}, fmt.Errorf("replay: %w", err)
	}
	txCtx := storage.WithTx(ctx, tx)
	before := ru.messages
	inTx := func(context.Context) error {
		q := ru.parts[0].queue
		ru.parts[0].queue, ru.queued = q[:0], 0
		return applyQueue(txCtx, sh.DB, q)
	}
	if err := ru.refresh(ctx, tx, prefix, true); err != nil {
		return swapCounts{}, err
	}
	if err := ru.pass(ctx, tx, prefix, inTx); err != nil {
		return swapCounts{}, err
	}
	if ru.missing() {
		// A message committed behind a position already read (possible on
		// MySQL, whose offsets are not in commit order): read it all again.
		for _, t := range ru.topics {
			t.reader.Seek(nil)
		}
		if err := ru.pass(ctx, tx, prefix, inTx); err != nil {
			return swapCounts{}, err
		}
	}
	if err := ru.checkComplete(); err != nil {
		return swapCounts{}, err
	}
	ru.inSwap = ru.messages - before
	if counts, err = replaceTables(ctx, tx, sh.DB.Dialect, prefix, tables); err != nil {
		return swapCounts{}, err
	}
	if err := tx.Commit(); err != nil {
		return swapCounts{}, fmt.Errorf("replay: commit swap: %w", err)
	}
	committed = true
	return counts, nil
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
func swapTables(projs []Projection) []TableSpec {
	var out []TableSpec
	for _, p := range projs {
		for _, t := range p.Tables {
			if !slices.ContainsFunc(out, func(o TableSpec) bool { return o.Name == t.Name }) {
				out = append(out, t)
			}
		}
	}
	return out
}

func tableNames(specs []TableSpec) []string {
	out := make([]string, len(specs))
	for i, t := range specs {
		out[i] = t.Name
	}
	return out
}

// swapCounts are the rows of each table after a swap, and how many live
// rows the swap deleted and inserted.
type swapCounts struct {
	rows, changed map[string]int64
}

// replaceTables makes each live table equal to the shadow's. Rather than
// emptying and refilling it, it deletes the live rows that differ from or
// are missing in the shadow, then inserts the shadow rows whose key is
// missing live: the result is the same, and when the live table was right
// (the usual case) the swap only reads, holding the lock for less time.
func replaceTables(ctx context.Context, tx *sql.Tx, d storage.Dialect, prefix string, tables []TableSpec) (swapCounts, error) {
	out := swapCounts{rows: map[string]int64{}, changed: map[string]int64{}}
	for _, t := range tables {
		cols, err := columnsOf(ctx, tx, t.Name)
		if err != nil {
			return swapCounts{}, err
		}
		liveCols, err := columnsOf(ctx, tx, prefix+t.Name)
		if err != nil {
			return swapCounts{}, err
		}
		if !slices.Equal(sortedLower(cols), sortedLower(liveCols)) {
			return swapCounts{}, fmt.Errorf("replay: table %s has columns %v live and %v in the shadow (migrate the live database first)",
				t.Name, liveCols, cols)
		}
		live := prefix + t.Name
		keyEq := func(a, b string) string {
			conds := make([]string, len(t.Key))
			for i, k := range t.Key {
				c := storage.QuoteIdent(d, k.Name)
				conds[i] = a + "." + c + " = " + b + "." + c
			}
			return strings.Join(conds, " AND ")
		}
		same := []string{keyEq("s", live)}
		quoted := make([]string, len(cols))
		for i, c := range cols {
			quoted[i] = storage.QuoteIdent(d, c)
			if !slices.ContainsFunc(t.Key, func(k KeyColumn) bool { return strings.EqualFold(k.Name, c) }) {
				same = append(same, nullSafeEqual(d, "s."+quoted[i], live+"."+quoted[i]))
			}
		}
		list := strings.Join(quoted, ", ")
		res, err := tx.ExecContext(ctx, `DELETE FROM `+live+` WHERE NOT EXISTS (SELECT 1 FROM `+t.Name+` s WHERE `+
			strings.Join(same, " AND ")+`)`)
		if err != nil {
			return swapCounts{}, fmt.Errorf("replay: delete stale rows of live %s: %w", t.Name, err)
		}
		deleted, err := res.RowsAffected()
		if err != nil {
			return swapCounts{}, fmt.Errorf("replay: delete stale rows of live %s: %w", t.Name, err)
		}
		res, err = tx.ExecContext(ctx, `INSERT INTO `+live+` (`+list+`) SELECT `+prefixed("s.", quoted)+` FROM `+t.Name+
			` s WHERE NOT EXISTS (SELECT 1 FROM `+live+` WHERE `+keyEq(live, "s")+`)`)
		if err != nil {
			return swapCounts{}, fmt.Errorf("replay: insert rows into live %s: %w", t.Name, err)
		}
		inserted, err := res.RowsAffected()
		if err != nil {
			return swapCounts{}, fmt.Errorf("replay: insert rows into live %s: %w", t.Name, err)
		}
		var n int64
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+t.Name).Scan(&n); err != nil {
			return swapCounts{}, fmt.Errorf("replay: count %s: %w", t.Name, err)
		}
		out.rows[t.Name], out.changed[t.Name] = n, deleted+inserted
	}
	return out, nil
}

// nullSafeEqual compares two expressions, NULL equal to NULL.
func nullSafeEqual(d storage.Dialect, a, b string) string {
	switch d {
	case storage.Postgres:
		return a + " IS NOT DISTINCT FROM " + b
	case storage.MySQL:
		return a + " <=> " + b
	default:
		return a + " IS " + b
	}
}

func prefixed(prefix string, names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = prefix + n
	}
	return strings.Join(out, ", ")
}

// columnsOf lists the columns of a table.
func columnsOf(ctx context.Context, q storage.Querier, table string) ([]string, error) {
	cols, err := storage.TableColumns(ctx, q, table)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	return cols, nil
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
