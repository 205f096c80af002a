package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/handlers"
	"github.com/phonepipe/phonepipe/transport/bus"
)

// dlqStartRoles runs an in-process phonepipe with roles on dataDir. The
// returned stop ends it and waits; it also runs when the test ends.
func dlqStartRoles(t *testing.T, dataDir string, roles ...string) (*app.App, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, app.Config{
		DataDir: dataDir,
		Addr:    "127.0.0.1:0",
		Roles:   roles,
		Logger:  slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		cancel()
		t.Fatalf("start app: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("app stopped with error: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return a, stop
}

// dlqRow is one stored message of a topic.
type dlqRow struct {
	offset   int64
	uuid     string
	payload  []byte
	metadata map[string]string
}

// topicRows reads the messages of topic with UUID id.
func topicRows(t *testing.T, db *sql.DB, topic, id string) []dlqRow {
	t.Helper()
	rows, err := db.Query(`SELECT "offset", uuid, payload, metadata FROM "watermill_`+topic+`" WHERE uuid = ? ORDER BY "offset"`, id)
	if err != nil {
		t.Fatalf("read %s: %v", topic, err)
	}
	defer rows.Close()
	var out []dlqRow
	for rows.Next() {
		var (
			r  dlqRow
			md string
		)
		if err := rows.Scan(&r.offset, &r.uuid, &r.payload, &md); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(md), &r.metadata); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// poisonOneJob makes one validation job of a 1,200-row import unprocessable
// (a stored row is deleted while only the api role runs), lets the workers
// poison it, and stops everything. It returns the import id and its final
// state.
func poisonOneJob(t *testing.T, dir string) (string, importState) {
	t.Helper()
	api, stopAPI := dlqStartRoles(t, dir, app.RoleAPI)
	var rows strings.Builder
	rows.WriteString("number\n")
	for i := range 1200 {
		fmt.Fprintf(&rows, "+3630%07d\n", i)
	}
	id := upload(t, api.URL(), []byte(rows.String()))
	rw, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "phonepipe.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rw.Exec(`DELETE FROM import_rows WHERE import_id = ? AND row_num = 700`, id); err != nil {
		t.Fatal(err)
	}
	_ = rw.Close()
	_, stopWorkers := dlqStartRoles(t, dir, app.RoleSplit, app.RoleValidate, app.RoleProject, app.RoleAggregate)
	deadline := time.Now().Add(2 * time.Minute)
	for getSummary(t, api.URL(), id).Status != "completed" {
		if time.Now().After(deadline) {
			t.Fatalf("import %s did not complete", id)
		}
		time.Sleep(50 * time.Millisecond)
	}
	final := fullSummary(t, api.URL(), id)
	stopWorkers()
	stopAPI()
	return id, final
}

func TestDLQListAndRequeue(t *testing.T) {
	dir := t.TempDir()
	importID, final := poisonOneJob(t, dir)
	if final.Failed != 500 || final.Processed != 1200 {
		t.Fatalf("import %+v, want the 500 rows of the poisoned job failed", final)
	}
	db := openData(t, dir)
	validateTopic := bus.Topic(domain.NameValidateJob)

	var (
		poisonID string
		payload  []byte
		mdText   string
	)
	if err := db.QueryRow(`SELECT uuid, payload, metadata FROM watermill_poison`).Scan(&poisonID, &payload, &mdText); err != nil {
		t.Fatalf("the poison queue must hold the job: %v", err)
	}
	var poisonMD map[string]string
	if err := json.Unmarshal([]byte(mdText), &poisonMD); err != nil {
		t.Fatal(err)
	}
	if poisonMD[middleware.PoisonedTopicKey] != validateTopic || poisonMD[middleware.PoisonedHandlerKey] != handlers.ValidatorName {
		t.Fatalf("poison metadata %v, want topic %s and handler %s", poisonMD, validateTopic, handlers.ValidatorName)
	}
	correlation := poisonMD[middleware.CorrelationIDMetadataKey]
	if correlation == "" {
		t.Fatalf("poisoned message without a correlation id: %v", poisonMD)
	}

	t.Run("list shows the message", func(t *testing.T) {
		res := runCLI(t, time.Minute, nil, "dlq", "list", "--data-dir", dir)
		if res.code != 0 {
			t.Fatalf("dlq list: exit %d", res.code)
		}
		lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") {
			t.Fatalf("want a header, one message and a count line:\n%s", res.stdout)
		}
		fields := strings.Fields(lines[1])
		want := []string{poisonID, validateTopic, handlers.ValidatorName, fmt.Sprint(len(payload)), correlation}
		if len(fields) < len(want)+2 {
			t.Fatalf("message line %q", lines[1])
		}
		for i, w := range want {
			if fields[i] != w {
				t.Errorf("column %d: %q, want %q (line %q)", i+1, fields[i], w, lines[1])
			}
		}
		reason := dlqCell(poisonMD[middleware.ReasonForPoisonedKey], maxReasonRunes)
		if !strings.HasSuffix(lines[1], reason) {
			t.Errorf("line %q does not end with the reason %q", lines[1], reason)
		}
	})

	t.Run("list --json, with the data dir from the environment", func(t *testing.T) {
		res := runCLI(t, time.Minute, map[string]string{"PHONEPIPE_DATA_DIR": dir}, "dlq", "list", "--json")
		if res.code != 0 {
			t.Fatalf("exit %d", res.code)
		}
		var m struct {
			UUID, Topic, Handler, Reason string
			CorrelationID                string `json:"correlation_id"`
			PayloadBytes                 int    `json:"payload_bytes"`
		}
		if err := json.Unmarshal([]byte(res.stdout), &m); err != nil {
			t.Fatalf("decode %q: %v", res.stdout, err)
		}
		if m.UUID != poisonID || m.Topic != validateTopic || m.Handler != handlers.ValidatorName ||
			m.Reason != poisonMD[middleware.ReasonForPoisonedKey] || m.CorrelationID != correlation || m.PayloadBytes != len(payload) {
			t.Fatalf("JSON line %+v", m)
		}
	})

	t.Run("requeue puts it back on its topic", func(t *testing.T) {
		before := topicRows(t, db, validateTopic, poisonID)
		if len(before) != 1 {
			t.Fatalf("%d copies of the job in %s before requeue, want 1", len(before), validateTopic)
		}
		res := runCLI(t, time.Minute, nil, "dlq", "requeue", poisonID, "--data-dir", dir)
		if res.code != 0 || !strings.Contains(res.stdout, "requeued "+poisonID+" onto "+validateTopic) {
			t.Fatalf("dlq requeue: exit %d, stdout %q", res.code, res.stdout)
		}
		after := topicRows(t, db, validateTopic, poisonID)
		if len(after) != 2 {
			t.Fatalf("%d copies of the job in %s after requeue, want 2", len(after), validateTopic)
		}
		got := after[1]
		if got.offset <= before[0].offset || !bytes.Equal(got.payload, payload) {
			t.Fatalf("requeued row %+v: want a new offset and the same payload", got)
		}
		for _, k := range poisonKeys() {
			if _, ok := got.metadata[k]; ok {
				t.Errorf("requeued metadata keeps the poison key %s: %v", k, got.metadata)
			}
		}
		for k, v := range poisonMD {
			if !strings.HasSuffix(k, "_poisoned") && got.metadata[k] != v {
				t.Errorf("requeued metadata %s = %q, want %q", k, got.metadata[k], v)
			}
		}
		if res := runCLI(t, time.Minute, nil, "dlq", "list", "--data-dir", dir); res.code != 0 ||
			strings.TrimSpace(res.stdout) != "the poison queue is empty" {
			t.Fatalf("list after requeue: exit %d, %q", res.code, res.stdout)
		}
	})

	t.Run("misuse fails clearly", func(t *testing.T) {
		tests := []struct {
			name    string
			args    []string
			code    int
			mention string
		}{
			{"requeue twice", []string{"dlq", "requeue", poisonID, "--data-dir", dir}, 1, "already requeued"},
			{"unknown id", []string{"dlq", "requeue", "no-such-id", "--data-dir", dir}, 1, "no message no-such-id"},
			{"no id", []string{"dlq", "requeue", "--data-dir", dir}, 2, "exactly one"},
			{"no subcommand", []string{"dlq"}, 2, "subcommand"},
			{"unknown subcommand", []string{"dlq", "purge"}, 2, "purge"},
			{"other backend", []string{"dlq", "list", "--backend", "postgres"}, 1, "not supported for backend postgres"},
			{"missing data dir", []string{"dlq", "list", "--data-dir", filepath.Join(dir, "nope")}, 1, "no phonepipe database"},
		}
		for _, tc := range tests {
			res := runCLI(t, time.Minute, nil, tc.args...)
			if res.code != tc.code || res.err == nil || !strings.Contains(res.err.Error(), tc.mention) {
				t.Errorf("%s: exit %d (%v), want exit %d mentioning %q", tc.name, res.code, res.err, tc.code, tc.mention)
			}
		}
	})

	t.Run("a requeued job that was salvaged is handled once, as a no-op", func(t *testing.T) {
		// The salvager claimed the job under the validator's key when it
		// failed the rows, so the validator now skips it: requeuing cannot
		// count rows twice.
		requeued := topicRows(t, db, validateTopic, poisonID)[1].offset
		api, _ := dlqStartRoles(t, dir, app.RoleAPI, app.RoleSplit, app.RoleValidate, app.RoleProject, app.RoleAggregate)
		deadline := time.Now().Add(time.Minute)
		for queryInt(t, db, `SELECT COALESCE(MAX(offset_acked), 0) FROM "watermill_offsets_`+validateTopic+`" WHERE consumer_group = ?`,
			handlers.ValidatorName) < int(requeued) {
			if time.Now().After(deadline) {
				t.Fatal("the validator did not consume the requeued job")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if n := queryInt(t, db, `SELECT COUNT(*) FROM watermill_poison`); n != 1 {
			t.Fatalf("%d messages in the poison queue, want still 1", n)
		}
		after := fullSummary(t, api.URL(), importID)
		if after != final {
			t.Fatalf("import after the requeue %+v, want unchanged %+v", after, final)
		}
	})
}
