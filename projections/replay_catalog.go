package projections

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/internal/wirejson"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// Projection names, as `phonepipe replay --projection` and
// `phonepipe projections checksum` know them.
const (
	// ProjectionNumbers is the per-number projection and the served event
	// streams: numbers, number_events and
	// number_events_parked (events waiting for their predecessor).
	ProjectionNumbers = "numbers"
	// ProjectionResults is the per-row results of each import and the
	// per-import number counts behind duplicate_of: results and
	// import_numbers.
	ProjectionResults = "results"
	// ProjectionStats is the carrier and region statistics: carrier_stats
	// and carrier_stats_numbers (see CarrierStats).
	ProjectionStats = "stats"
	// ProjectionImports is the aggregator's state of every import. It has a
	// checksum but is not replayable: it is the import aggregate's own
	// state, not a projection of the log (see docs/REPLAY.md).
	ProjectionImports = "imports"
)

// Handlers names the consumer groups (handler names) whose handled
// messages a replay reproduces: the handler names of package handlers,
// passed in because projections does not depend on handlers.
type Handlers struct {
	// Project is the projector of numbers.recorded.v1 (numbers, results).
	Project string
	// Stats is the carrier statistics handler of numbers.recorded.v1.
	Stats string
	// Lookups is the lookup projector of lookups.recorded.v1 (lookup
	// events of the number streams, number_lookups); see lookupSources.
	Lookups string
}

// Projection describes one read model: its tables (for checksums and the
// swap) and, when it is replayable, the handlers that build it.
type Projection struct {
	Name   string
	Tables []TableSpec
	// Sources are the handlers whose messages build the projection; a
	// projection without sources cannot be replayed.
	Sources []ReplaySource
}

// Replayable reports whether replay can rebuild the projection.
func (p Projection) Replayable() bool { return len(p.Sources) > 0 }

// TableSpec describes one table for checksums and swaps.
type TableSpec struct {
	Name string
	// Key is the primary key, in order: rows are hashed in key order.
	Key []KeyColumn
	// Exclude lists columns left out of the checksum: values not taken
	// from events (wall-clock times written when projecting).
	Exclude []string
	// Transient tables are swapped but not checksummed: their content is
	// work in progress (events waiting for a predecessor).
	Transient bool
}

// KeyColumn is one column of a primary key.
type KeyColumn struct {
	Name string
	// Numeric keys sort as numbers; the others as bytes.
	Numeric bool
}

func keyText(name string) KeyColumn { return KeyColumn{Name: name} }
func keyNum(name string) KeyColumn  { return KeyColumn{Name: name, Numeric: true} }

// Catalog lists every projection, replayable ones with their sources.
func Catalog(h Handlers) []Projection {
	recorded := NumbersRecordedTopic()
	// Every row of the numbers and results projections depends on the
	// events of one stream: a number's row, its events and imports; a
	// result row (one event); an import's count of one number (the events
	// of that number's stream in the import). They split by stream.
	project := ReplaySource{Handler: h.Project, Topic: recorded, Split: SplitByStream,
		Apply: func(ctx context.Context, db *storage.DB, v any) error {
			_, err := NewNumbers(db).Project(ctx, v.(domain.NumbersRecorded))
			return err
		}}
	stats := ReplaySource{Handler: h.Stats, Topic: recorded, Apply: func(ctx context.Context, db *storage.DB, v any) error {
		return NewCarrierStats(db).Project(ctx, v.(domain.NumbersRecorded))
	}}
	return []Projection{
		{Name: ProjectionNumbers, Sources: append([]ReplaySource{project}, lookupSources(h)...), Tables: append([]TableSpec{
			{Name: "numbers", Key: []KeyColumn{keyText("tenant"), keyText("e164")}},
			{Name: "number_events", Key: []KeyColumn{keyText("stream_id"), keyNum("version")}},
			{Name: "number_events_parked", Key: []KeyColumn{keyText("stream_id"), keyNum("version")}, Transient: true},
		}, lookupTables(h)...)},
		{Name: ProjectionResults, Sources: []ReplaySource{project}, Tables: []TableSpec{
			{Name: "results", Key: []KeyColumn{keyText("import_id"), keyNum("row_num")}},
			{Name: "import_numbers", Key: []KeyColumn{keyText("import_id"), keyText("e164")}},
		}},
		{Name: ProjectionStats, Sources: []ReplaySource{stats}, Tables: []TableSpec{
			{Name: "carrier_stats", Key: []KeyColumn{keyText("tenant"), keyText("region_code"), keyText("carrier")}},
			{Name: "carrier_stats_numbers", Key: []KeyColumn{keyText("tenant"), keyText("e164")}},
		}},
		{Name: ProjectionImports, Tables: []TableSpec{
			// completed_at (and validated_at) are the aggregator's clock
			// when it counted a job, not an event's time.
			{Name: "imports", Key: []KeyColumn{keyText("id")}, Exclude: []string{"completed_at", "validated_at"}},
		}},
	}
}

// Select returns the projections of catalog named by names; all selects
// every replayable one. Unknown and non-replayable names are errors.
func Select(catalog []Projection, names []string, all bool) ([]Projection, error) {
	var out []Projection
	for _, p := range catalog {
		if all && p.Replayable() || slices.Contains(names, p.Name) {
			if !p.Replayable() {
				return nil, fmt.Errorf("projection %q cannot be replayed: %s", p.Name, notReplayable)
			}
			out = append(out, p)
		}
	}
	for _, n := range names {
		if !slices.ContainsFunc(catalog, func(p Projection) bool { return p.Name == n }) {
			return nil, fmt.Errorf("unknown projection %q (known: %s)", n, strings.Join(Names(catalog), ", "))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no projection selected (replayable: %s)", strings.Join(replayableNames(catalog), ", "))
	}
	return out, nil
}

// notReplayable says why the imports table is not rebuilt from the log.
const notReplayable = "it is the import aggregate's own state (written by the API, the splitter and the aggregator), " +
	"holding values no event carries (idempotency keys, the phone metadata version, webhook URLs before the first " +
	"progress event); the pipeline reads it to complete imports, so it is never overwritten by a replay"

// Names lists the names of the projections of catalog.
func Names(catalog []Projection) []string {
	out := make([]string, len(catalog))
	for i, p := range catalog {
		out[i] = p.Name
	}
	return out
}

func replayableNames(catalog []Projection) []string {
	var out []string
	for _, p := range catalog {
		if p.Replayable() {
			out = append(out, p.Name)
		}
	}
	return out
}

// ReplayTopic is a topic of the event log as replay reads it.
type ReplayTopic struct {
	// Message is the versioned message name of the topic.
	Message string
	// Decode reads one message's payload.
	Decode func(payload []byte) (Decoded, error)
}

// Decoded is one decoded message.
type Decoded struct {
	// Key is the key under which the topic's handlers record the message
	// as handled (storage.Handled).
	Key string
	// Events counts the events the message carries (for progress).
	Events int
	// Value is what the sources' Apply receive.
	Value any
}

// ReplaySource is one handler whose effects replay reproduces: the topic
// it consumes, its name (consumer group and dedupe handler), and the
// projection code it runs for each message. Apply runs in the unit of work
// of ctx on db, exactly as the handler calls it.
type ReplaySource struct {
	Handler string
	Topic   ReplayTopic
	Apply   func(ctx context.Context, db *storage.DB, v any) error
	// Split, when set, divides a decoded message into n parts (nil parts
	// are skipped) that may be applied to n separate shadows, the union of
	// whose tables is what applying the whole message makes. It is set
	// for projections whose rows each depend on the events of one stream
	// only; a replay then builds them on every core.
	Split func(v any, n int) []any
}

// NumbersRecordedTopic decodes numbers.recorded.v1 messages — JSON, as the
// bus's Marshaler writes them — keyed by domain.JobKey, the key
// the projector and stats handlers record them under.
func NumbersRecordedTopic() ReplayTopic {
	return ReplayTopic{Message: domain.NameNumbersRecorded, Decode: func(payload []byte) (Decoded, error) {
		var m domain.NumbersRecorded
		if err := wirejson.Unmarshal(payload, &m); err != nil {
			return Decoded{}, fmt.Errorf("decode %s: %w", domain.NameNumbersRecorded, err)
		}
		return Decoded{Key: domain.JobKey(m.ImportID, m.Job), Events: len(m.Events), Value: m}, nil
	}}
}

// StreamPartition is the partition, among n, of a stream's events: every
// source that splits does it with this function, so that a stream's rows
// are all built in one partition whichever source writes them.
func StreamPartition(stream domain.StreamID, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(stream))
	return int(h.Sum32() % uint32(n))
}

// SplitByStream divides a NumbersRecorded into n messages of the same job,
// each with the events of the streams of its partition, in their order.
func SplitByStream(v any, n int) []any {
	m := v.(domain.NumbersRecorded)
	parts := make([]domain.NumbersRecorded, n)
	for _, ev := range m.Events {
		i := StreamPartition(ev.Stream, n)
		parts[i].Events = append(parts[i].Events, ev)
	}
	out := make([]any, n)
	for i, p := range parts {
		if len(p.Events) > 0 {
			p.ImportID, p.Tenant, p.Job = m.ImportID, m.Tenant, m.Job
			out[i] = p
		}
	}
	return out
}

// SplitLookupsByStream divides a LookupsRecorded into n messages of the
// same batch, each with the lookups of the streams of its partition.
func SplitLookupsByStream(v any, n int) []any {
	m := v.(domain.LookupsRecorded)
	parts := make([]domain.LookupsRecorded, n)
	for _, l := range m.Lookups {
		i := StreamPartition(l.Event.Stream, n)
		parts[i].Lookups = append(parts[i].Lookups, l)
	}
	out := make([]any, n)
	for i, p := range parts {
		if len(p.Lookups) > 0 {
			p.Batch = m.Batch
			out[i] = p
		}
	}
	return out
}
