package projections

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/internal/wirejson"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// CarrierStats is the carrier-and-region projection served by
// GET /v1/stats/carriers: for each tenant, region and carrier, how many
// distinct numbers the tenant has and how many of them are valid.
//
// Precisely: every per-number stream of a tenant (tenant + E.164; rows whose
// input did not parse have no number and are not counted) is counted once,
// in the bucket (region_code, carrier) of its latest event — the event with
// the highest stream version this projection has seen — and counts as valid
// when that event says the number is valid. A number whose region or
// carrier changes between imports (new metadata) moves between buckets.
// Buckets that count no number have no row.
//
// The projection remembers where it counted each number in
// carrier_stats_numbers. Its state depends only on the set of events
// applied, not on their order (an older version arriving late changes
// nothing), so a replay of the same events rebuilds it exactly.
type CarrierStats struct {
	db *storage.DB
}

// NewCarrierStats returns the carrier statistics of db.
func NewCarrierStats(db *storage.DB) *CarrierStats { return &CarrierStats{db: db} }

// CarrierStat is one bucket of GET /v1/stats/carriers.
type CarrierStat struct {
	// RegionCode is the ISO region of the numbers ("001" non-geographic,
	// empty when the library cannot tell).
	RegionCode string `json:"region_code"`
	// Carrier is the library's carrier name, empty when unknown.
	Carrier string `json:"carrier"`
	// Numbers counts the distinct numbers in the bucket.
	Numbers int64 `json:"numbers"`
	// Valid counts those of them that are valid.
	Valid int64 `json:"valid"`
}

// statsTables are the DDL of the projection's tables (projections.Migrate
// runs them).
func statsTables() []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS carrier_stats (
			tenant VARCHAR(64) NOT NULL,
			region_code VARCHAR(8) NOT NULL,
			carrier VARCHAR(191) NOT NULL,
			numbers BIGINT NOT NULL,
			valid BIGINT NOT NULL,
			PRIMARY KEY (tenant, region_code, carrier))`,
		`CREATE TABLE IF NOT EXISTS carrier_stats_numbers (
			tenant VARCHAR(64) NOT NULL,
			e164 VARCHAR(32) NOT NULL,
			version BIGINT NOT NULL,
			region_code VARCHAR(8) NOT NULL,
			carrier VARCHAR(191) NOT NULL,
			valid INTEGER NOT NULL,
			PRIMARY KEY (tenant, e164))`,
	}
}

// statsFields are the fields of number.validated.v1 data the statistics
// read (decoding only these is much cheaper than the whole row).
type statsFields struct {
	Valid      bool   `json:"valid"`
	E164       string `json:"e164"`
	RegionCode string `json:"region_code"`
	Carrier    string `json:"carrier"`
}

// statsPlace is where one number is counted.
type statsPlace struct {
	version             int64
	regionCode, carrier string
	valid               bool
}

// bucketKey names a bucket of one tenant.
type bucketKey struct{ regionCode, carrier string }

// bucketDelta is a change of a bucket's counts.
type bucketDelta struct{ numbers, valid int64 }

// Project applies one NumbersRecorded message in the unit of work of ctx.
// The caller makes it run once per message.
func (s *CarrierStats) Project(ctx context.Context, m domain.NumbersRecorded) error {
	tx, err := storage.MustTx(ctx)
	if err != nil {
		return fmt.Errorf("count carriers of job %d of %s: %w", m.Job, m.ImportID, err)
	}
	latest := map[string]statsPlace{} // by E.164: the message's newest event of each number
	for _, ev := range m.Events {
		if !ev.Stream.IsNumberStream() {
			continue
		}
		ev, err := domain.UpcastEvent(ev)
		if err != nil {
			return fmt.Errorf("count carriers: %w", err)
		}
		if ev.Type != domain.EventNumberValidated {
			continue // other events of a stream do not move the number
		}
		var v statsFields
		if err := wirejson.Unmarshal(ev.Data, &v); err != nil {
			return fmt.Errorf("count carriers of %s: %w: %w", ev.ID, domain.ErrPermanent, err)
		}
		if v.E164 == "" {
			continue
		}
		if cur, ok := latest[v.E164]; ok && cur.version >= ev.Version {
			continue
		}
		latest[v.E164] = statsPlace{version: ev.Version, regionCode: v.RegionCode, carrier: v.Carrier, valid: v.Valid}
	}
	numbers := make([]string, 0, len(latest))
	for e := range latest {
		numbers = append(numbers, e)
	}
	slices.Sort(numbers)
	d := s.db.Dialect
	// The buckets are changed once, after every number of the message is
	// locked: a transaction that held buckets while it went on to lock
	// the next batch of numbers could deadlock with another doing the
	// same in the other order (on kafka+postgres, where the partitions'
	// transactions run side by side).
	deltas := map[bucketKey]bucketDelta{}
	for start := 0; start < len(numbers); start += projectBatch {
		batch := numbers[start:min(start+projectBatch, len(numbers))]
		if err := s.apply(ctx, tx, d, m.Tenant, batch, latest, deltas); err != nil {
			return err
		}
	}
	return s.applyDeltas(ctx, tx, d, m.Tenant, deltas)
}

// apply moves a batch of numbers (sorted) to their new places and adds the
// changes of their buckets to deltas.
func (s *CarrierStats) apply(ctx context.Context, tx storage.Querier, d storage.Dialect, tenant string,
	numbers []string, latest map[string]statsPlace, deltas map[bucketKey]bucketDelta) error {
	before, err := s.places(ctx, tx, d, tenant, numbers)
	if err != nil {
		return err
	}
	move := func(p statsPlace, sign int64) {
		k := bucketKey{p.regionCode, p.carrier}
		dl := deltas[k]
		dl.numbers += sign
		if p.valid {
			dl.valid += sign
		}
		deltas[k] = dl
	}
	var upserts []any
	for _, e := range numbers {
		next := latest[e]
		prev := before[e]
		if prev.version >= next.version {
			continue // a newer event of this number was counted already
		}
		if prev.version > 0 {
			move(prev, -1)
		}
		move(next, +1)
		upserts = append(upserts, tenant, e, next.version, next.regionCode, next.carrier, boolInt(next.valid))
	}
	if len(upserts) > 0 {
		const width = 6
		q := `INSERT INTO carrier_stats_numbers (tenant, e164, version, region_code, carrier, valid) VALUES ` +
			storage.Values(len(upserts)/width, width) + ` ` + d.OnConflictUpdate("tenant", "e164") +
			` version = ` + d.Excluded("version") + `, region_code = ` + d.Excluded("region_code") +
			`, carrier = ` + d.Excluded("carrier") + `, valid = ` + d.Excluded("valid")
		if _, err := tx.ExecContext(ctx, d.Rebind(q), upserts...); err != nil {
			return fmt.Errorf("save carrier places: %w", err)
		}
	}
	return nil
}

// places returns where numbers (sorted) are counted now (version 0:
// nowhere yet), locking their rows. On the server databases a number that
// has no row gets a placeholder first, so that the lock also holds back a
// concurrent transaction counting the same new number (see lockOrAdd).
// SQLite has one writer at a time and needs none.
func (s *CarrierStats) places(ctx context.Context, tx storage.Querier, d storage.Dialect, tenant string,
	numbers []string) (map[string]statsPlace, error) {
	columns := []string{"tenant", "e164", "version", "region_code", "carrier", "valid"}
	p := projector{ctx: ctx, tx: tx, d: d, tenant: tenant}
	rows, err := p.lockOrAdd("carrier_stats_numbers", columns, func() []any {
		args := make([]any, 0, len(columns)*len(numbers))
		for _, e := range numbers {
			args = append(args, tenant, e, 0, "", "", 0)
		}
		return args
	}, false, numbers, "e164, version, region_code, carrier, valid")
	if err != nil {
		return nil, fmt.Errorf("load carrier places: %w", err)
	}
	defer rows.Close()
	out := make(map[string]statsPlace, len(numbers))
	for rows.Next() {
		var (
			e     string
			p     statsPlace
			valid int
		)
		if err := rows.Scan(&e, &p.version, &p.regionCode, &p.carrier, &valid); err != nil {
			return nil, fmt.Errorf("scan carrier place: %w", err)
		}
		p.valid = valid != 0
		out[e] = p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read carrier places: %w", err)
	}
	return out, nil
}

// applyDeltas adds the bucket changes, in key order (concurrent writers lock
// buckets in the same order), and drops the buckets left empty.
func (s *CarrierStats) applyDeltas(ctx context.Context, tx storage.Querier, d storage.Dialect, tenant string,
	deltas map[bucketKey]bucketDelta) error {
	keys := make([]bucketKey, 0, len(deltas))
	for k, dl := range deltas {
		if dl != (bucketDelta{}) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	slices.SortFunc(keys, func(a, b bucketKey) int {
		return cmp.Or(cmp.Compare(a.regionCode, b.regionCode), cmp.Compare(a.carrier, b.carrier))
	})
	const width = 5
	for start := 0; start < len(keys); start += projectBatch {
		batch := keys[start:min(start+projectBatch, len(keys))]
		args := make([]any, 0, width*len(batch))
		for _, k := range batch {
			dl := deltas[k]
			args = append(args, tenant, k.regionCode, k.carrier, dl.numbers, dl.valid)
		}
		q := `INSERT INTO carrier_stats (tenant, region_code, carrier, numbers, valid) VALUES ` +
			storage.Values(len(batch), width) + ` ` + d.OnConflictUpdate("tenant", "region_code", "carrier") +
			` numbers = carrier_stats.numbers + ` + d.Excluded("numbers") +
			`, valid = carrier_stats.valid + ` + d.Excluded("valid")
		if _, err := tx.ExecContext(ctx, d.Rebind(q), args...); err != nil {
			return fmt.Errorf("count carriers: %w", err)
		}
	}
	// Only a bucket that lost a number can have become empty.
	var emptied []any
	for _, k := range keys {
		if deltas[k].numbers < 0 {
			emptied = append(emptied, k.regionCode, k.carrier)
		}
	}
	for start := 0; start < len(emptied); start += 2 * projectBatch {
		chunk := emptied[start:min(start+2*projectBatch, len(emptied))]
		q := `DELETE FROM carrier_stats WHERE tenant = ? AND numbers = 0 AND (region_code, carrier) IN (` +
			storage.Values(len(chunk)/2, 2) + `)`
		if _, err := tx.ExecContext(ctx, d.Rebind(q), append([]any{tenant}, chunk...)...); err != nil {
			return fmt.Errorf("drop empty carrier buckets: %w", err)
		}
	}
	return nil
}

// Carriers returns a tenant's buckets ordered by region and carrier; region,
// when not empty, keeps only that region's.
func (s *CarrierStats) Carriers(ctx context.Context, tenant, region string) ([]CarrierStat, error) {
	q := `SELECT region_code, carrier, numbers, valid FROM carrier_stats WHERE tenant = ?`
	args := []any{tenant}
	if region != "" {
		q += ` AND region_code = ?`
		args = append(args, region)
	}
	rows, err := s.db.Read.QueryContext(ctx, s.db.Dialect.Rebind(q+` ORDER BY region_code, carrier`), args...)
	if err != nil {
		return nil, fmt.Errorf("query carrier stats: %w", err)
	}
	defer rows.Close()
	out := []CarrierStat{}
	for rows.Next() {
		var c CarrierStat
		if err := rows.Scan(&c.RegionCode, &c.Carrier, &c.Numbers, &c.Valid); err != nil {
			return nil, fmt.Errorf("scan carrier stats: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read carrier stats: %w", err)
	}
	return out, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
