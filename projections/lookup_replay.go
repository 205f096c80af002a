package projections

import (
	"context"
	"fmt"
	"slices"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/internal/wirejson"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// LookupsRecordedTopic decodes lookups.recorded.v1 messages, keyed by
// their batch, the key the lookup projector records them under.
func LookupsRecordedTopic() ReplayTopic {
	return ReplayTopic{Message: domain.NameLookupsRecorded, Decode: func(payload []byte) (Decoded, error) {
		var m domain.LookupsRecorded
		if err := wirejson.Unmarshal(payload, &m); err != nil {
			return Decoded{}, fmt.Errorf("decode %s: %w", domain.NameLookupsRecorded, err)
		}
		return Decoded{Key: m.Batch, Events: len(m.Lookups), Value: m}, nil
	}}
}

// ApplyLookupStreams applies the part of a LookupsRecorded message that is
// a function of the log alone, in the unit of work of ctx: each lookup
// event appended to its number's stream (versions kept gapless) and each
// number's last successful lookup. It is the lookup projector's first step
// and what a replay of the numbers projection applies; the rows that
// waited for the lookups are not (waiting is write-side state).
func ApplyLookupStreams(ctx context.Context, db *storage.DB, m domain.LookupsRecorded) error {
	_, err := applyLookupStreams(ctx, db, m)
	return err
}

// applyLookupStreams is ApplyLookupStreams, returning the decoded lookups
// by tenant.
func applyLookupStreams(ctx context.Context, db *storage.DB, m domain.LookupsRecorded) (map[string][]recordedLookup, error) {
	tx, err := storage.MustTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("project lookups %s: %w", m.Batch, err)
	}
	byTenant := map[string][]recordedLookup{}
	for _, rl := range m.Lookups {
		it, err := decodeRecorded(rl)
		if err != nil {
			return nil, fmt.Errorf("project lookups %s: %w", m.Batch, err)
		}
		byTenant[rl.Tenant] = append(byTenant[rl.Tenant], it)
	}
	numbers := NewNumbers(db)
	for _, tenant := range sortedKeys(byTenant) {
		items := byTenant[tenant]
		events := make([]domain.NumberEvent, len(items))
		for i, it := range items {
			events[i] = it.event
		}
		if err := numbers.applyLookupEvents(ctx, tx, tenant, events); err != nil {
			return nil, err
		}
		if err := saveNumberLookups(ctx, tx, db.Dialect, tenant, items); err != nil {
			return nil, err
		}
	}
	return byTenant, nil
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// lookupSources are the numbers projection's sources from the lookup
// stage: lookup events take versions of the number streams, so a replay
// without them would leave every later event parked.
func lookupSources(h Handlers) []ReplaySource {
	if h.Lookups == "" {
		return nil
	}
	// Every row it writes belongs to one number's stream: it splits.
	return []ReplaySource{{Handler: h.Lookups, Topic: LookupsRecordedTopic(), Split: SplitLookupsByStream,
		Apply: func(ctx context.Context, db *storage.DB, v any) error {
			return ApplyLookupStreams(ctx, db, v.(domain.LookupsRecorded))
		}}}
}

// lookupTables are the numbers projection's tables from the lookup stage.
func lookupTables(h Handlers) []TableSpec {
	if h.Lookups == "" {
		return nil
	}
	return []TableSpec{{Name: "number_lookups", Key: []KeyColumn{keyText("tenant"), keyText("e164")}}}
}
