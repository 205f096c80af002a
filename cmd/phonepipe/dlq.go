package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
	"github.com/phonepipe/phonepipe/transport/bus"
	"github.com/phonepipe/phonepipe/transport/sqlitepubsub"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// The poison queue ("dead-letter queue") is the topic bus.PoisonTopic: every
// message that failed all its retries, with the poison middleware's metadata
// saying where it came from and why. On the embedded backend it is the
// watermill-sql table "watermill_poison" in <data-dir>/phonepipe.db. That
// table is an append-only log (consumers keep offsets into it), so requeuing
// does not delete a row: it records the row's offset in dlqRequeuedTable and
// `dlq list` leaves recorded rows out. A requeued message that fails again
// is poisoned again as a new row (same UUID, new offset) and shows up again.

// dlqRequeuedTable records the poison-queue rows that were requeued.
const dlqRequeuedTable = bus.DLQRequeuedTable

// dlqUsage is the help of `phonepipe dlq`.
const dlqUsage = `usage: phonepipe dlq <list|requeue ID> [--data-dir D]

  list          print the messages in the poison queue that were not requeued
  requeue ID    put message ID (its UUID, as list prints it) back on its original
                topic, with its payload and metadata minus the poison keys

Only the embedded backend (--backend sqlite) is supported so far.
`

// poisonKeys are the metadata keys the poison middleware adds.
func poisonKeys() []string {
	return []string{middleware.ReasonForPoisonedKey, middleware.PoisonedTopicKey,
		middleware.PoisonedHandlerKey, middleware.PoisonedSubscriberKey}
}

// dlq runs `phonepipe dlq SUBCOMMAND`.
func dlq(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, dlqUsage)
		return &exitError{code: 2, err: errors.New("dlq needs a subcommand: list or requeue")}
	}
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet("dlq "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, dlqUsage); fs.PrintDefaults() }
	var (
		dataDir, backend string
		asJSON           bool
	)
	fs.StringVar(&dataDir, "data-dir", "./data", "where the embedded backend keeps its files")
	fs.StringVar(&backend, "backend", app.BackendSQLite, "the backend the service runs on (only sqlite is supported)")
	if sub == "list" {
		fs.BoolVar(&asJSON, "json", false, "print one JSON object per message, with the full reason and metadata")
	}
	switch sub {
	case "list", "requeue":
	case "help", "-h", "--help":
		fmt.Fprint(stdout, dlqUsage)
		return nil
	default:
		fmt.Fprint(stderr, dlqUsage)
		return &exitError{code: 2, err: fmt.Errorf("unknown dlq subcommand %q", sub)}
	}
	// Flags may come before or after the ID: parse what follows it too.
	if err := parseWithEnv(fs, rest, env); err != nil {
		return err
	}
	pos := fs.Args()
	if len(pos) > 1 {
		if err := fs.Parse(pos[1:]); err != nil {
			return err
		}
		pos = append([]string{pos[0]}, fs.Args()...)
	}
	if backend != app.BackendSQLite {
		return fmt.Errorf("dlq: not supported for backend %s yet (only the embedded %s backend)", backend, app.BackendSQLite)
	}
	switch {
	case sub == "list" && len(pos) != 0:
		return &exitError{code: 2, err: fmt.Errorf("dlq list takes no arguments, got %q", pos)}
	case sub == "requeue" && len(pos) != 1:
		return &exitError{code: 2, err: errors.New("dlq requeue needs exactly one message ID")}
	}
	q, err := openPoisonQueue(ctx, dataDir)
	if err != nil {
		return err
	}
	defer q.close()
	if sub == "list" {
		msgs, err := q.list(ctx)
		if err != nil {
			return err
		}
		if asJSON {
			return printPoisonJSON(stdout, msgs)
		}
		return printPoisonTable(stdout, msgs)
	}
	pm, err := q.requeue(ctx, pos[0], time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "requeued %s onto %s\n", pm.UUID, pm.topic())
	return nil
}

// poisonMessage is one row of the poison queue.
type poisonMessage struct {
	Offset     int64            `json:"offset"`
	UUID       string           `json:"uuid"`
	PoisonedAt string           `json:"poisoned_at"`
	Payload    []byte           `json:"-"`
	Size       int              `json:"payload_bytes"`
	Metadata   message.Metadata `json:"metadata"`
}

func (m poisonMessage) topic() string   { return m.Metadata.Get(middleware.PoisonedTopicKey) }
func (m poisonMessage) reason() string  { return m.Metadata.Get(middleware.ReasonForPoisonedKey) }
func (m poisonMessage) handler() string { return m.Metadata.Get(middleware.PoisonedHandlerKey) }
func (m poisonMessage) correlationID() string {
	return m.Metadata.Get(middleware.CorrelationIDMetadataKey)
}

// poisonQueue is the poison queue of an embedded database.
type poisonQueue struct {
	db *storage.DB
}

// openPoisonQueue opens the embedded database of dataDir, which must exist,
// and makes sure the poison topic and the requeue record exist.
func openPoisonQueue(ctx context.Context, dataDir string) (*poisonQueue, error) {
	path := filepath.Join(dataDir, storage.SQLiteFileName)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("dlq: no phonepipe database at %s (is --data-dir right?): %w", path, err)
	}
	db, err := storage.OpenSQLite(dataDir)
	if err != nil {
		return nil, fmt.Errorf("dlq: %w", err)
	}
	q := &poisonQueue{db: db}
	if err := sqlitepubsub.InitializeTopic(ctx, db.Write, bus.PoisonTopic); err != nil {
		return nil, errors.Join(fmt.Errorf("dlq: %w", err), db.Close())
	}
	if err := bus.InitDLQRequeued(ctx, db); err != nil {
		return nil, errors.Join(fmt.Errorf("dlq: %w", err), db.Close())
	}
	return q, nil
}

func (q *poisonQueue) close() { _ = q.db.Close() }

// pendingPoison selects the poison rows not requeued yet.
func pendingPoison() string {
	return `SELECT p."offset", p.uuid, p.created_at, p.payload, p.metadata FROM ` +
		sqlitepubsub.MessagesTable(bus.PoisonTopic) + ` p
	WHERE NOT EXISTS (SELECT 1 FROM ` + dlqRequeuedTable + ` r WHERE r.poison_offset = p."offset")`
}

// scanPoison reads rows of pendingPoison.
func scanPoison(rows *sql.Rows) ([]poisonMessage, error) {
	defer rows.Close()
	var out []poisonMessage
	for rows.Next() {
		var (
			m  poisonMessage
			md sql.NullString
		)
		if err := rows.Scan(&m.Offset, &m.UUID, &m.PoisonedAt, &m.Payload, &md); err != nil {
			return nil, fmt.Errorf("dlq: read poison queue: %w", err)
		}
		m.Size = len(m.Payload)
		m.Metadata = message.Metadata{}
		if md.Valid && md.String != "" {
			if err := json.Unmarshal([]byte(md.String), &m.Metadata); err != nil {
				return nil, fmt.Errorf("dlq: metadata of poison message %s (offset %d): %w", m.UUID, m.Offset, err)
			}
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("dlq: read poison queue: %w", err)
	}
	return out, nil
}

// list returns the messages not requeued, oldest first.
func (q *poisonQueue) list(ctx context.Context) ([]poisonMessage, error) {
	rows, err := q.db.Read.QueryContext(ctx, pendingPoison()+` ORDER BY p."offset"`)
	if err != nil {
		return nil, fmt.Errorf("dlq: read poison queue: %w", err)
	}
	return scanPoison(rows)
}

// requeue publishes the newest pending poison row with UUID id onto its
// original topic, without the poison metadata, and records it as requeued,
// in one transaction.
func (q *poisonQueue) requeue(ctx context.Context, id string, now time.Time) (poisonMessage, error) {
	rows, err := q.db.Read.QueryContext(ctx, pendingPoison()+` AND p.uuid = ? ORDER BY p."offset" DESC LIMIT 1`, id)
	if err != nil {
		return poisonMessage{}, fmt.Errorf("dlq: read poison queue: %w", err)
	}
	found, err := scanPoison(rows)
	if err != nil {
		return poisonMessage{}, err
	}
	if len(found) == 0 {
		var at string
		err := q.db.Read.QueryRowContext(ctx, `SELECT requeued_at FROM `+dlqRequeuedTable+
			` WHERE uuid = ? ORDER BY requeued_at DESC LIMIT 1`, id).Scan(&at)
		if err == nil {
			return poisonMessage{}, fmt.Errorf("dlq: message %s was already requeued at %s", id, at)
		}
		return poisonMessage{}, fmt.Errorf("dlq: no message %s in the poison queue", id)
	}
	pm := found[0]
	topic := pm.topic()
	if topic == bus.PoisonTopic || !slices.Contains(bus.Topics(), topic) {
		return poisonMessage{}, fmt.Errorf("dlq: message %s came from topic %q, which is not a topic of this version; not requeued", id, topic)
	}
	md := message.Metadata{}
	for k, v := range pm.Metadata {
		if !slices.Contains(poisonKeys(), k) {
			md.Set(k, v)
		}
	}
	msg := message.NewMessage(pm.UUID, pm.Payload)
	msg.Metadata = md

	// The topic's tables exist wherever the service ran; creating them is
	// DDL, which the transactional publisher leaves to the caller.
	if err := sqlitepubsub.InitializeTopic(ctx, q.db.Write, topic); err != nil {
		return poisonMessage{}, fmt.Errorf("dlq: %w", err)
	}
	err = storage.InTx(ctx, q.db.Write, func(ctx context.Context) error {
		tx, err := storage.MustTx(ctx)
		if err != nil {
			return err
		}
		pub, err := sqlitepubsub.NewPublisher(tx, watermill.NopLogger{})
		if err != nil {
			return err
		}
		if err := pub.Publish(topic, msg); err != nil {
			return fmt.Errorf("publish to %s: %w", topic, err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO `+dlqRequeuedTable+
			` (poison_offset, uuid, topic, requeued_at) VALUES (?, ?, ?, ?)`,
			pm.Offset, pm.UUID, topic, now.UTC().Format(time.RFC3339Nano))
		if err != nil {
			return fmt.Errorf("record requeue: %w", err)
		}
		return nil
	})
	if err != nil {
		return poisonMessage{}, fmt.Errorf("dlq: requeue %s: %w", id, err)
	}
	return pm, nil
}

// maxReasonRunes bounds the reason column of the table.
const maxReasonRunes = 160

// dlqCell makes s fit one table cell: control characters become spaces and
// it is cut to max runes.
func dlqCell(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	return string([]rune(s)[:max-1]) + "…"
}

// printPoisonTable prints the messages as an aligned table.
func printPoisonTable(w io.Writer, msgs []poisonMessage) error {
	if len(msgs) == 0 {
		_, err := fmt.Fprintln(w, "the poison queue is empty")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTOPIC\tHANDLER\tBYTES\tCORRELATION ID\tPOISONED AT\tREASON")
	for _, m := range msgs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", m.UUID, dlqCell(m.topic(), 64), dlqCell(m.handler(), 64),
			m.Size, dlqCell(m.correlationID(), 64), m.PoisonedAt, dlqCell(m.reason(), maxReasonRunes))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d message(s); `phonepipe dlq requeue ID` puts one back on its topic\n", len(msgs))
	return err
}

// printPoisonJSON prints one JSON object per message.
func printPoisonJSON(w io.Writer, msgs []poisonMessage) error {
	enc := json.NewEncoder(w)
	for _, m := range msgs {
		err := enc.Encode(struct {
			poisonMessage
			Topic         string `json:"topic"`
			Handler       string `json:"handler"`
			Reason        string `json:"reason"`
			CorrelationID string `json:"correlation_id"`
		}{m, m.topic(), m.handler(), m.reason(), m.correlationID()})
		if err != nil {
			return err
		}
	}
	return nil
}
