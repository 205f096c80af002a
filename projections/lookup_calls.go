package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// LookupCalls is the lookup workers' view of lookup_calls: claiming due
// calls under a lease, and settling or releasing them. Several workers,
// in one process or many, may share a database: a call is leased to one
// of them at a time, and only the holder of the lease settles it.
type LookupCalls struct {
	db *storage.DB
}

// NewLookupCalls returns the lookup call store of db.
func NewLookupCalls(db *storage.DB) *LookupCalls { return &LookupCalls{db: db} }

// dueCall selects pending, unleased calls that are due; its placeholders
// are now (due) and now (lease).
const dueCall = `status = 'pending' AND due_at <= ? AND lease_until <= ?`

// ClaimDue leases up to limit due calls to token for lease and returns
// them, oldest first. Candidates are read without a transaction and
// leased in one short one, so an idle worker never takes the write lock.
// A call another worker claimed first is skipped.
func (s *LookupCalls) ClaimDue(ctx context.Context, now time.Time, lease time.Duration, token string, limit int) ([]domain.LookupCall, error) {
	d := s.db.Dialect
	nowMS := millis(now)
	rs, err := s.db.Read.QueryContext(ctx, d.Rebind(`SELECT tenant, e164, generation, attempts FROM lookup_calls
		WHERE `+dueCall+` ORDER BY due_at LIMIT ?`), nowMS, nowMS, 2*limit)
	if err != nil {
		return nil, fmt.Errorf("due lookup calls: %w", err)
	}
	var candidates []domain.LookupCall
	for rs.Next() {
		var c domain.LookupCall
		if err := rs.Scan(&c.Tenant, &c.E164, &c.Generation, &c.Attempts); err != nil {
			rs.Close()
			return nil, fmt.Errorf("scan due lookup call: %w", err)
		}
		candidates = append(candidates, c)
	}
	rs.Close()
	if err := rs.Err(); err != nil || len(candidates) == 0 {
		return nil, err
	}
	var claimed []domain.LookupCall
	err = storage.InTx(ctx, s.db.Write, func(ctx context.Context) error {
		tx, err := storage.MustTx(ctx)
		if err != nil {
			return err
		}
		for _, c := range candidates {
			if len(claimed) == limit {
				break
			}
			res, err := tx.ExecContext(ctx, d.Rebind(`UPDATE lookup_calls SET lease_until = ?, lease_token = ?,
				attempts = attempts + 1 WHERE tenant = ? AND e164 = ? AND generation = ? AND `+dueCall),
				millis(now.Add(lease)), token, c.Tenant, c.E164, c.Generation, nowMS, nowMS)
			if err != nil {
				return fmt.Errorf("claim lookup of %s: %w", c.E164, err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return fmt.Errorf("claim lookup of %s: %w", c.E164, err)
			} else if n == 1 {
				c.Attempts++
				claimed = append(claimed, c)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return claimed, nil
}

// Settle records the outcome lk of a call leased to token, in the unit of
// work of ctx, and reports whether it did: false when the lease was lost
// (it expired and another worker claimed the call) or the call was
// requested again meanwhile.
func (s *LookupCalls) Settle(ctx context.Context, token string, c domain.LookupCall, lk domain.Lookup, at time.Time) (bool, error) {
	tx, err := storage.MustTx(ctx)
	if err != nil {
		return false, fmt.Errorf("settle lookup of %s: %w", c.E164, err)
	}
	js, err := json.Marshal(lk)
	if err != nil {
		return false, fmt.Errorf("encode lookup of %s: %w", c.E164, err)
	}
	res, err := tx.ExecContext(ctx, s.db.Dialect.Rebind(`UPDATE lookup_calls SET status = ?, outcome = ?, result = ?,
		done_at = ?, lease_until = 0, lease_token = ''
		WHERE tenant = ? AND e164 = ? AND generation = ? AND status = ? AND lease_token = ?`),
		callDone, string(lk.Status), string(js), millis(at), c.Tenant, c.E164, c.Generation, callPending, token)
	if err != nil {
		return false, fmt.Errorf("settle lookup of %s: %w", c.E164, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("settle lookup of %s: %w", c.E164, err)
	}
	return n == 1, nil
}

// Release gives a call's lease back without an outcome (the worker is
// stopping), so that it is due again at once.
func (s *LookupCalls) Release(ctx context.Context, token string, c domain.LookupCall) error {
	if _, err := s.db.Write.ExecContext(ctx, s.db.Dialect.Rebind(`UPDATE lookup_calls SET lease_until = 0, lease_token = '',
		attempts = attempts - 1 WHERE tenant = ? AND e164 = ? AND generation = ? AND lease_token = ?`),
		c.Tenant, c.E164, c.Generation, token); err != nil {
		return fmt.Errorf("release lookup of %s: %w", c.E164, err)
	}
	return nil
}

// Pending counts the calls not yet done (for metrics).
func (s *LookupCalls) Pending(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.Read.QueryRowContext(ctx, `SELECT COUNT(*) FROM lookup_calls WHERE status = 'pending'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("pending lookup calls: %w", err)
	}
	return n, nil
}
