package projections_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/domain/phone"
	"github.com/phonepipe/phonepipe/projections"
	"github.com/phonepipe/phonepipe/transport/bus"
	"github.com/phonepipe/phonepipe/transport/eventlog"
	"github.com/phonepipe/phonepipe/transport/sqlitepubsub"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// replayEnv is an embedded live database with a log of NumbersRecorded
// messages, one job of three rows each.
type replayEnv struct {
	db   *storage.DB
	jobs []domain.NumbersRecorded
}

func newReplayEnv(t *testing.T, jobs int) *replayEnv {
	t.Helper()
	ctx := context.Background()
	db, err := storage.OpenSQLite(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := projections.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	topic := bus.Topic(domain.NameNumbersRecorded)
	if err := sqlitepubsub.InitializeTopic(ctx, db.Write, topic); err != nil {
		t.Fatal(err)
	}
	pub, err := sqlitepubsub.NewPublisher(db.Write, nil)
	if err != nil {
		t.Fatal(err)
	}
	env := &replayEnv{db: db}
	versions := map[string]int64{}
	for job := 1; job <= jobs; job++ {
		m := domain.NumbersRecorded{ImportID: "imp", Tenant: "t", Job: job}
		for row := 1; row <= 3; row++ {
			n := (job-1)*3 + row
			e164 := fmt.Sprintf("+3630%07d", n%5) // numbers repeat: several versions
			v := domain.NumberValidated{Row: n, Input: e164, Result: phone.Result{Valid: true, E164: e164, RegionCode: "HU"}}
			data, _ := json.Marshal(v)
			versions[e164]++
			m.Events = append(m.Events, domain.NumberEvent{ID: fmt.Sprintf("e%d", n), Stream: domain.NumberStream("t", e164),
				Version: versions[e164], Type: domain.EventNumberValidated, OccurredAt: time.Unix(int64(n), 0), ImportID: "imp", Data: data})
		}
		payload, _ := json.Marshal(m)
		msg := message.NewMessage(fmt.Sprintf("m%d", job), payload)
		msg.Metadata.Set("name", domain.NameNumbersRecorded)
		if err := pub.Publish(topic, msg); err != nil {
			t.Fatal(err)
		}
		env.jobs = append(env.jobs, m)
	}
	return env
}

// handle records jobs as handled by the projector, as if it had run.
func (e *replayEnv) handle(t *testing.T, jobs ...int) {
	t.Helper()
	for _, j := range jobs {
		if _, err := e.db.Write.Exec(`INSERT INTO handled_messages (handler, msg_key) VALUES ('project', ?)`, domain.JobKey("imp", j)); err != nil {
			t.Fatal(err)
		}
	}
}

// lateLog is the SQL log whose LockConsumer, at the start of the swap,
// records one more job as handled: the live projector finished it while
// the replay was building.
type lateLog struct {
	eventlog.SQL
	late string
}

func (l *lateLog) LockConsumer(ctx context.Context, tx *sql.Tx, prefix, msg, group string) error {
	if l.late != "" {
		if _, err := tx.ExecContext(ctx, `INSERT INTO `+prefix+`handled_messages (handler, msg_key) VALUES ('project', ?)`, l.late); err != nil {
			return err
		}
		l.late = ""
	}
	return l.SQL.LockConsumer(ctx, tx, prefix, msg, group)
}

func (e *replayEnv) replay(t *testing.T, log projections.EventLog, names ...string) (projections.ReplayReport, error) {
	t.Helper()
	ctx := context.Background()
	sh, err := storage.OpenShadow(ctx, e.db, storage.ShadowConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sh.Drop(ctx) }()
	r, err := projections.NewReplayer(projections.ReplayConfig{Live: e.db, Shadow: sh, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	projs, err := projections.Select(projections.Catalog(projections.Handlers{Project: "project", Stats: "stats"}), names, false)
	if err != nil {
		t.Fatal(err)
	}
	return r.Run(ctx, projs)
}

func (e *replayEnv) count(t *testing.T, table string) int {
	t.Helper()
	var n int
	if err := e.db.Read.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestReplayAppliesWhatWasHandledDuringTheBuild: a message the live
// projector handles after the build is applied inside the swap; messages
// not handled are not applied.
func TestReplayAppliesWhatWasHandledDuringTheBuild(t *testing.T) {
	env := newReplayEnv(t, 4)
	env.handle(t, 1, 2)
	rep, err := env.replay(t, &lateLog{SQL: eventlog.SQL{Dialect: storage.SQLite}, late: domain.JobKey("imp", 3)}, "results")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Messages != 3 || rep.InSwap != 1 || rep.Events != 9 {
		t.Fatalf("report %+v, want 3 messages (1 in the swap), 9 events", rep)
	}
	if n := env.count(t, "results"); n != 9 {
		t.Fatalf("%d results, want 9 (jobs 1-3; job 4 was never handled)", n)
	}
}

// TestReplayFailsWhenAHandledMessageIsMissing: nothing live changes when
// the log lacks a message the projector handled.
func TestReplayFailsWhenAHandledMessageIsMissing(t *testing.T) {
	env := newReplayEnv(t, 2)
	env.handle(t, 1, 2, 7)
	if _, err := env.db.Write.Exec(`INSERT INTO results (import_id, row_num, e164, data) VALUES ('x', 1, '', '{}')`); err != nil {
		t.Fatal(err)
	}
	_, err := env.replay(t, eventlog.SQL{Dialect: storage.SQLite}, "results")
	if err == nil || !strings.Contains(err.Error(), "not in the log") {
		t.Fatalf("err = %v, want a missing message", err)
	}
	if n := env.count(t, "results"); n != 1 {
		t.Fatalf("%d live results, want the 1 there before", n)
	}
}

// TestReplayPartitionsBuildTheSame: the stream-split build in several
// shadows makes the same tables as one shadow.
func TestReplayPartitionsBuildTheSame(t *testing.T) {
	ctx := context.Background()
	env := newReplayEnv(t, 6)
	env.handle(t, 1, 2, 3, 4, 5, 6)
	catalog := projections.Catalog(projections.Handlers{Project: "project", Stats: "stats"})
	var sums [][]projections.Checksum
	for _, parts := range []int{1, 3} {
		var shadows []*storage.Shadow
		for range parts {
			sh, err := storage.OpenShadow(ctx, env.db, storage.ShadowConfig{})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = sh.Drop(ctx) }()
			shadows = append(shadows, sh)
		}
		r, err := projections.NewReplayer(projections.ReplayConfig{Live: env.db, Shadow: shadows[0], Partitions: shadows[1:],
			Log: eventlog.SQL{Dialect: storage.SQLite}})
		if err != nil {
			t.Fatal(err)
		}
		projs, _ := projections.Select(catalog, []string{"numbers", "results"}, false)
		if _, err := r.Run(ctx, projs); err != nil {
			t.Fatal(err)
		}
		s, err := projections.Checksums(ctx, env.db, projs)
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, s)
	}
	if fmt.Sprint(sums[0]) != fmt.Sprint(sums[1]) {
		t.Fatalf("one shadow %v, three %v", sums[0], sums[1])
	}
	if n := env.count(t, "number_events"); n != 18 {
		t.Fatalf("%d events, want 18", n)
	}
}
