package lookup

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/phonepipe/phonepipe/domain"
)

// settled is the outcome of one leased call, waiting to be recorded.
type settled struct {
	call   domain.LookupCall
	token  string
	lookup domain.Lookup
	at     time.Time
}

// recordAttempts bounds the tries of recording one batch. A batch that
// cannot be recorded is dropped: its calls stay pending and are claimed
// again when their leases expire.
const recordAttempts = 3

// recordTimeout bounds one recording transaction.
const recordTimeout = 30 * time.Second

// recorder records outcomes in batches of at most BatchSize, each waiting
// at most BatchDelay: one short transaction per batch settles the calls,
// takes their number streams' next versions and publishes LookupsRecorded.
type recorder struct {
	cfg WorkerConfig
	in  chan settled
}

func newRecorder(cfg WorkerConfig) *recorder {
	return &recorder{cfg: cfg, in: make(chan settled, 2*cfg.BatchSize)}
}

// add queues an outcome; it blocks while the recorder is behind.
func (r *recorder) add(s settled) { r.in <- s }

// close ends the input; run records what is queued and returns.
func (r *recorder) close() { close(r.in) }

// run records batches until the input is closed. ctx carries values only:
// recording must outlive the worker's cancellation.
func (r *recorder) run(ctx context.Context) {
	var batch []settled
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case s, ok := <-r.in:
			if !ok {
				r.flush(ctx, batch)
				return
			}
			batch = append(batch, s)
			if len(batch) == 1 {
				timer.Reset(r.cfg.BatchDelay)
			}
			if len(batch) >= r.cfg.BatchSize {
				timer.Stop()
				r.flush(ctx, batch)
				batch = nil
			}
		case <-timer.C:
			r.flush(ctx, batch)
			batch = nil
		}
	}
}

// flush records a batch, trying a few times.
func (r *recorder) flush(ctx context.Context, batch []settled) {
	if len(batch) == 0 {
		return
	}
	slices.SortFunc(batch, func(a, b settled) int {
		return cmp.Or(cmp.Compare(a.call.Tenant, b.call.Tenant), cmp.Compare(a.call.E164, b.call.E164))
	})
	var err error
	for i := range recordAttempts {
		if i > 0 {
			time.Sleep(time.Duration(i) * 200 * time.Millisecond)
		}
		var kept []settled
		tctx, cancel := context.WithTimeout(ctx, recordTimeout)
		kept, err = r.record(tctx, batch)
		cancel()
		if err == nil {
			if r.cfg.Observer != nil {
				for _, s := range kept {
					r.cfg.Observer.LookupFinished(string(s.lookup.Status), s.lookup.Reason)
				}
			}
			if lost := len(batch) - len(kept); lost > 0 {
				r.cfg.Logger.WarnContext(ctx, "lookup: outcomes of calls whose lease was lost were dropped", "calls", lost)
			}
			return
		}
		r.cfg.Logger.WarnContext(ctx, "lookup: recording outcomes failed", "calls", len(batch), "attempt", i+1, "error", err)
	}
	r.cfg.Logger.ErrorContext(ctx, "lookup: outcomes dropped; their calls will be made again when their leases expire",
		"calls", len(batch), "error", err)
}

// record settles a batch in one transaction and publishes the outcomes of
// the calls whose lease still held, returning those.
func (r *recorder) record(ctx context.Context, batch []settled) ([]settled, error) {
	var kept []settled
	err := r.cfg.InTx(ctx, func(ctx context.Context) error {
		kept = kept[:0]
		for _, s := range batch {
			ok, err := r.cfg.Store.Settle(ctx, s.token, s.call, s.lookup, s.at)
			if err != nil {
				return err
			}
			if ok {
				kept = append(kept, s)
			}
		}
		if len(kept) == 0 {
			return nil
		}
		streams := make([]domain.StreamID, len(kept))
		for i, s := range kept {
			streams[i] = s.call.Stream()
		}
		versions, err := r.cfg.Streams.Next(ctx, streams)
		if err != nil {
			return err
		}
		// The events occur now, when they take their versions, so that
		// a stream's times follow its versions; the lookups keep when
		// they ended (LookedUpAt).
		now := r.cfg.Now().UTC()
		msg := &domain.LookupsRecorded{Batch: uuid.NewString(), Lookups: make([]domain.RecordedLookup, len(kept))}
		for i, s := range kept {
			data, err := json.Marshal(domain.NumberLookedUp{E164: s.call.E164, Generation: s.call.Generation, Lookup: s.lookup})
			if err != nil {
				return fmt.Errorf("encode lookup of %s: %w", s.call.E164, err)
			}
			msg.Lookups[i] = domain.RecordedLookup{Tenant: s.call.Tenant, Event: domain.NumberEvent{
				ID: uuid.NewString(), Stream: streams[i], Version: versions[i], Type: s.lookup.EventType(),
				OccurredAt: now, Data: data,
			}}
		}
		if err := r.cfg.Events.Publish(ctx, msg); err != nil {
			return fmt.Errorf("publish recorded lookups: %w", err)
		}
		return nil
	})
	return kept, err
}
