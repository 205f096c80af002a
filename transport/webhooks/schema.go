package webhooks

import "strings"

// Column kinds, mapped to a type per dialect by columnType.
const (
	colID      = "id"      // short identifier, indexable everywhere
	colKey     = "key"     // tenant, event id, type: indexable, longer
	colText    = "text"    // unindexed text
	colBigText = "bigtext" // payloads
	colInt     = "int"
	colBigInt  = "bigint" // unix milliseconds
)

type column struct {
	name, kind string
	null       bool
}

type index struct {
	name    string
	unique  bool
	columns []string
}

type table struct {
	name    string
	columns []column
	primary []string
	indexes []index
}

// tables is the outbox schema. Times are stored as unix milliseconds (BIGINT)
// and booleans as 0/1 INTEGER so every dialect reads them back the same way.
func tables() []table {
	return []table{
		{
			name: "webhook_subscriptions",
			columns: []column{
				{name: "id", kind: colID},
				{name: "tenant", kind: colKey},
				{name: "url", kind: colText},
				{name: "event_types", kind: colText}, // JSON array
				{name: "secret", kind: colID},
				{name: "disabled", kind: colInt},
				{name: "disabled_reason", kind: colText},
				{name: "failing_since", kind: colBigInt, null: true},
				{name: "created_at", kind: colBigInt},
			},
			primary: []string{"id"},
			indexes: []index{{name: "webhook_subscriptions_tenant", columns: []string{"tenant"}}},
		},
		{
			name: "tenant_secrets",
			columns: []column{
				{name: "tenant", kind: colKey},
				{name: "secret", kind: colID},
				{name: "created_at", kind: colBigInt},
			},
			primary: []string{"tenant"},
		},
		{
			// One row per enqueued event: its primary key is the idempotency key and
			// its body the exact bytes every delivery and retry sends.
			name: "webhook_events",
			columns: []column{
				{name: "tenant", kind: colKey},
				{name: "event_id", kind: colKey},
				{name: "event_type", kind: colKey},
				{name: "body", kind: colBigText},
				{name: "correlation_id", kind: colText},
				{name: "created_at", kind: colBigInt},
			},
			primary: []string{"tenant", "event_id"},
		},
		{
			name: "webhook_deliveries",
			columns: []column{
				{name: "id", kind: colID},
				{name: "tenant", kind: colKey},
				{name: "event_id", kind: colKey},
				{name: "event_type", kind: colKey},
				{name: "subscription_id", kind: colID}, // '' for the per-import URL
				{name: "url", kind: colText},
				{name: "webhook_id", kind: colID},
				{name: "secret", kind: colID},
				{name: "status", kind: colID},
				{name: "schedule_index", kind: colInt},
				{name: "attempt_count", kind: colInt},
				{name: "next_attempt_at", kind: colBigInt, null: true},
				{name: "locked_until", kind: colBigInt},
				{name: "lock_token", kind: colID},
				{name: "created_at", kind: colBigInt},
				{name: "updated_at", kind: colBigInt},
			},
			primary: []string{"id"},
			indexes: []index{
				{name: "webhook_deliveries_webhook_id", unique: true, columns: []string{"webhook_id"}},
				{name: "webhook_deliveries_due", columns: []string{"status", "next_attempt_at"}},
				{name: "webhook_deliveries_owner", columns: []string{"tenant", "subscription_id", "created_at"}},
			},
		},
		{
			name: "webhook_attempts",
			columns: []column{
				{name: "delivery_id", kind: colID},
				{name: "attempt_no", kind: colInt},
				{name: "attempted_at", kind: colBigInt},
				{name: "status_code", kind: colInt},
				{name: "latency_ms", kind: colBigInt},
				{name: "error_text", kind: colText},
				{name: "response_snippet", kind: colText},
			},
			primary: []string{"delivery_id", "attempt_no"},
		},
	}
}

func (d Dialect) columnType(kind string) string {
	switch kind {
	case colID:
		return "VARCHAR(64)"
	case colKey:
		return "VARCHAR(255)"
	case colText:
		return "TEXT"
	case colBigText:
		if d == DialectMySQL {
			return "MEDIUMTEXT"
		}
		return "TEXT"
	case colInt:
		return "INTEGER"
	default:
		return "BIGINT"
	}
}

// ddl renders the CREATE statements for the schema. MySQL has no CREATE INDEX
// IF NOT EXISTS, so there indexes are declared inside CREATE TABLE.
func (d Dialect) ddl() []string {
	var stmts []string
	for _, t := range tables() {
		var defs []string
		for _, c := range t.columns {
			def := c.name + " " + d.columnType(c.kind)
			if !c.null {
				def += " NOT NULL"
			}
			defs = append(defs, def)
		}
		defs = append(defs, "PRIMARY KEY ("+strings.Join(t.primary, ", ")+")")
		if d == DialectMySQL {
			for _, ix := range t.indexes {
				kw := "INDEX "
				if ix.unique {
					kw = "UNIQUE INDEX "
				}
				defs = append(defs, kw+ix.name+" ("+strings.Join(ix.columns, ", ")+")")
			}
		}
		create := "CREATE TABLE IF NOT EXISTS " + t.name + " (\n\t" + strings.Join(defs, ",\n\t") + "\n)"
		if d == DialectMySQL {
			create += " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
		}
		stmts = append(stmts, create)
		if d != DialectMySQL {
			for _, ix := range t.indexes {
				kw := "CREATE INDEX IF NOT EXISTS "
				if ix.unique {
					kw = "CREATE UNIQUE INDEX IF NOT EXISTS "
				}
				stmts = append(stmts, kw+ix.name+" ON "+t.name+" ("+strings.Join(ix.columns, ", ")+")")
			}
		}
	}
	return stmts
}
