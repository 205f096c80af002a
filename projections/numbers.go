package projections

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/internal/wirejson"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// Numbers projects recorded per-number events into the results of each
// import, the per-number projection and the per-number event streams.
//
// Events of one number may arrive out of version order: two validators
// that took consecutive versions of a number can have their messages
// delivered in either order (on PostgreSQL the bus orders messages by
// transaction id, which is not commit order; on Kafka they may travel in
// different partitions). An event whose predecessor has not been projected
// yet is parked and applied as soon as the predecessor is, so the
// projection never skips a version and never waits on a message that may
// be queued behind the one waiting.
type Numbers struct {
	db *storage.DB
}

// NewNumbers returns the number projections of db.
func NewNumbers(db *storage.DB) *Numbers { return &Numbers{db: db} }

// projectBatch rows (or numbers) go into one multi-row statement.
const projectBatch = 200

// recorded is one event of a message with its decoded data.
type recorded struct {
	ev domain.NumberEvent
	v  domain.NumberValidated
}

// Project applies one NumbersRecorded message in the unit of work of ctx and
// returns the counts of its rows. The caller makes it run once per job.
func (n *Numbers) Project(ctx context.Context, m domain.NumbersRecorded) (domain.Counts, error) {
	tx, err := storage.MustTx(ctx)
	if err != nil {
		return domain.Counts{}, fmt.Errorf("project job %d of %s: %w", m.Job, m.ImportID, err)
	}
	rows := make([]recorded, len(m.Events))
	for i, ev := range m.Events {
		if rows[i], err = decode(ev); err != nil {
			return domain.Counts{}, err
		}
	}
	p := projector{ctx: ctx, tx: tx, d: n.db.Dialect, tenant: m.Tenant, importID: m.ImportID}
	dups, err := p.markSeen(rows)
	if err != nil {
		return domain.Counts{}, err
	}
	var counts domain.Counts
	results := make([]any, 0, len(rows)*4)
	for i, r := range rows {
		c := domain.OutcomeOf(r.v)
		if dups[i] {
			c.Duplicates = 1
		}
		counts = counts.Add(c)
		results = append(results, m.ImportID, r.v.Row, r.v.E164, string(r.ev.Data))
	}
	if err := p.insertIgnore("results", []string{"import_id", "row_num", "e164", "data"}, results); err != nil {
		return counts, err
	}
	return counts, p.applyStreams(rows)
}

// decode reads one event, upcast to the current version of its type (see
// domain.UpcastEvent): the read models hold today's format only.
func decode(ev domain.NumberEvent) (recorded, error) {
	ev, err := domain.UpcastEvent(ev)
	if err != nil {
		return recorded{}, fmt.Errorf("project: %w", err)
	}
	if domain.IsLookupEvent(ev.Type) {
		return decodeLookup(ev) // moves its stream's version only: see plan
	}
	if ev.Type != domain.EventNumberValidated {
		return recorded{}, fmt.Errorf("project %s: unexpected event type %q: %w", ev.ID, ev.Type, domain.ErrPermanent)
	}
	var v domain.NumberValidated
	if err := wirejson.Unmarshal(ev.Data, &v); err != nil {
		return recorded{}, fmt.Errorf("project %s: %w: %w", ev.ID, domain.ErrPermanent, err)
	}
	return recorded{ev: ev, v: v}, nil
}

// projector is the state of one Project call.
type projector struct {
	ctx      context.Context
	tx       storage.Querier
	d        storage.Dialect
	tenant   string
	importID string
}

// lockOrAdd locks the rows of the tenant's numbers (sorted, at most
// projectBatch) in table and returns their columns cols. A number without a
// row first gets a placeholder (row args, of columns): always on the server
// databases, where FOR UPDATE locks no missing row, and on SQLite, whose
// single writer needs no lock, when add is set. PostgreSQL adds and locks
// in one statement, in key order (see storage.Dialect.LockOrInsert).
func (p *projector) lockOrAdd(table string, columns []string, args func() []any, add bool, numbers []string, cols string) (*sql.Rows, error) {
	if p.d == storage.Postgres {
		return p.tx.QueryContext(p.ctx, p.d.Rebind(p.d.LockOrInsert(table, columns, len(numbers), "tenant", "e164")+
			` RETURNING `+cols), args()...)
	}
	if add || p.d != storage.SQLite {
		if err := p.insertIgnore(table, columns, args()); err != nil {
			return nil, err
		}
	}
	isNumber, in := storage.OneOf(p.d, "e164", numbers)
	return p.tx.QueryContext(p.ctx, `SELECT `+cols+` FROM `+table+` WHERE tenant = ? AND `+isNumber+
		` ORDER BY e164`+p.d.ForUpdate(), append([]any{p.tenant}, in...)...)
}

// insertIgnore inserts rows of len(columns) values each, skipping rows
// already present, in batches.
func (p *projector) insertIgnore(table string, columns []string, args []any) error {
	width := len(columns)
	for start := 0; start < len(args); start += projectBatch * width {
		chunk := args[start:min(start+projectBatch*width, len(args))]
		q := p.d.InsertIgnore(table, columns, len(chunk)/width)
		if _, err := p.tx.ExecContext(p.ctx, p.d.Rebind(q), chunk...); err != nil {
			return fmt.Errorf("insert into %s: %w", table, err)
		}
	}
	return nil
}

// eventArgs are the number_events (and number_events_parked) columns of ev.
func eventArgs(ev domain.NumberEvent) []any {
	return []any{string(ev.Stream), ev.Version, ev.ID, ev.Type, formatTime(ev.OccurredAt), ev.ImportID, string(ev.Data)}
}

var eventColumns = []string{"stream_id", "version", "id", "type", "occurred_at", "import_id", "data"}

// markSeen counts every parsed number of the message in its import and
// reports, by row index, which rows repeat a number seen before (in this
// message or an earlier one: over all jobs, the repeats add up to rows −
// distinct numbers, whatever the order of the jobs). Numbers are upserted
// in sorted order so that concurrent jobs of one import lock them in the
// same order.
func (p *projector) markSeen(rows []recorded) (map[int]bool, error) {
	byNumber := map[string][]int{}
	for i, r := range rows {
		if r.v.E164 != "" {
			byNumber[r.v.E164] = append(byNumber[r.v.E164], i)
		}
	}
	numbers := make([]string, 0, len(byNumber))
	for e := range byNumber {
		numbers = append(numbers, e)
	}
	slices.Sort(numbers)
	dups := make(map[int]bool)
	for start := 0; start < len(numbers); start += projectBatch {
		batch := numbers[start:min(start+projectBatch, len(numbers))]
		seen, err := p.countSeen(batch, rows, byNumber)
		if err != nil {
			return nil, err
		}
		for _, e := range batch {
			before := seen[e] - len(byNumber[e])
			for k, i := range byNumber[e] {
				dups[i] = before+k > 0
			}
		}
	}
	return dups, nil
}

// countSeen adds the occurrences of numbers to import_numbers and returns
// each number's count after the addition.
func (p *projector) countSeen(numbers []string, rows []recorded, byNumber map[string][]int) (map[string]int, error) {
	args := make([]any, 0, 4*len(numbers))
	for _, e := range numbers {
		idx := byNumber[e]
		args = append(args, p.importID, e, rows[idx[0]].v.Row, len(idx))
	}
	q := `INSERT INTO import_numbers (import_id, e164, first_row, seen) VALUES ` + storage.Values(len(numbers), 4) + ` ` +
		p.d.OnConflictUpdate("import_id", "e164") + ` seen = import_numbers.seen + ` + p.d.Excluded("seen") +
		`, first_row = ` + p.d.Least() + `(import_numbers.first_row, ` + p.d.Excluded("first_row") + `)`
	var read func() (rowScanner, error)
	if p.d == storage.MySQL {
		if _, err := p.tx.ExecContext(p.ctx, q, args...); err != nil {
			return nil, fmt.Errorf("count numbers of import %s: %w", p.importID, err)
		}
		read = func() (rowScanner, error) {
			in := append([]any{p.importID}, stringArgs(numbers)...)
			return p.tx.QueryContext(p.ctx, `SELECT e164, seen FROM import_numbers WHERE import_id = ? AND e164 IN (`+
				storage.Placeholders(len(numbers))+`) FOR UPDATE`, in...)
		}
	} else {
		read = func() (rowScanner, error) {
			return p.tx.QueryContext(p.ctx, p.d.Rebind(q+` RETURNING e164, seen`), args...)
		}
	}
	rs, err := read()
	if err != nil {
		return nil, fmt.Errorf("count numbers of import %s: %w", p.importID, err)
	}
	defer rs.Close()
	seen := make(map[string]int, len(numbers))
	for rs.Next() {
		var (
			e string
			n int
		)
		if err := rs.Scan(&e, &n); err != nil {
			return nil, fmt.Errorf("scan number count: %w", err)
		}
		seen[e] = n
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("read number counts: %w", err)
	}
	return seen, nil
}

// rowScanner is the part of *sql.Rows the projector reads.
type rowScanner interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

func stringArgs(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
