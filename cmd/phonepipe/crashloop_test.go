package main

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/handlers"
	"github.com/phonepipe/phonepipe/internal/testenv"
	"github.com/phonepipe/phonepipe/transport/webhooks"
)

// longCrashLoop selects the long versions of the process tests:
//
//	go test -race -count=1 -timeout 60m -run TestCrashLoop -v ./cmd/phonepipe/ -phonepipe.long
//
// PHONEPIPE_TEST_LONG=1 does the same.
var longCrashLoop = flag.Bool("phonepipe.long", false, "run the long versions of the process tests (crash loop: 100,000 rows, 10 kills)")

// Environment of TestCrashLoop.
const (
	longTestsEnv     = "PHONEPIPE_TEST_LONG"
	crashLoopSeedEnv = "PHONEPIPE_CRASHLOOP_SEED"
)

// crashLoopSize is how big one crash loop is.
type crashLoopSize struct {
	rows  int // rows of the import
	kills int // SIGKILLs before the final restart
	// minMid is the fewest kills that must hit the import while it is
	// still incomplete (checked on the data the next process sees).
	minMid int
	// timeout bounds the final wait for completion.
	timeout time.Duration
}

// crashLoopSizes returns the short size (CI) or, with -phonepipe.long or
// PHONEPIPE_TEST_LONG=1, the long one (the issue's).
func crashLoopSizes() (crashLoopSize, string) {
	if *longCrashLoop || os.Getenv(longTestsEnv) == "1" {
		return crashLoopSize{rows: 100_000, kills: 10, minMid: 8, timeout: 15 * time.Minute}, "long"
	}
	return crashLoopSize{rows: 20_000, kills: 4, minMid: 3, timeout: 5 * time.Minute}, "short"
}

// crashLoopArgs are the serve flags of every process of the loop: the
// webhook receiver is on loopback, and a failed delivery is retried after
// a second instead of five.
var crashLoopArgs = []string{"--import-rate", "0", "--webhook-allow-private",
	"--webhook-schedule", "0s,1s,1s,2s,2s,5s,5s,10s"}

// TestCrashLoop SIGKILLs `phonepipe serve` at random moments of one
// import, restarts it on the same data and repeats, on the embedded SQLite
// backend and on PostgreSQL. Kills land around the upload (the client then
// retries with its Idempotency-Key), just after a restart, while jobs are
// being validated, and late, while the last jobs are projected and counted
// (see killWhileProcessing). After a final restart the import
// must complete with every row exactly once, exactly one ImportCompleted
// and gapless per-number streams. The webhook receiver fails the first
// request and the service is killed once more before the retry, so the
// delivery that succeeds comes from another process: every request must
// carry the one webhook-id of the outbox.
//
// Short by default (20,000 rows, 4 kills); -phonepipe.long or
// PHONEPIPE_TEST_LONG=1 runs the 100,000 rows and 10 kills. The
// kill moments come from a seed that is logged; PHONEPIPE_CRASHLOOP_SEED
// replays them (timing still varies from run to run).
func TestCrashLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("process test; skipped with -short")
	}
	size, name := crashLoopSizes()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(crashLoopSeedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", crashLoopSeedEnv, s, err)
		}
	}
	t.Logf("%s crash loop: %d rows, %d kills; seed %d (%s=%d replays the kill plan)",
		name, size.rows, size.kills, seed, crashLoopSeedEnv, seed)
	bin := buildBinary(t)
	backends := []struct {
		name string
		args func(t *testing.T) (args []string, dsn string)
	}{
		{"sqlite", func(*testing.T) ([]string, string) { return nil, "" }},
		{"postgres", func(t *testing.T) ([]string, string) {
			dsn := testenv.Postgres(t) // skips without PHONEPIPE_TEST_POSTGRES_DSN
			return []string{"--backend", "postgres", "--postgres-dsn", dsn}, dsn
		}},
	}
	for i, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			args, dsn := b.args(t)
			l := &crashLoop{
				t:    t,
				bin:  bin,
				dir:  t.TempDir(),
				args: append(append([]string(nil), crashLoopArgs...), args...),
				size: size,
				rng:  rand.New(rand.NewPCG(seed, uint64(i))),
				key:  fmt.Sprintf("crashloop-%d-%s", seed, b.name),
				dsn:  dsn,
			}
			began := time.Now()
			l.run()
			l.check()
			t.Logf("%s: %d kills (%d while the import was incomplete), completed and checked in %s",
				b.name, l.kills, l.mid, time.Since(began).Round(time.Second))
		})
	}
}

// crashLoop is the state of one backend's loop.
type crashLoop struct {
	t    *testing.T
	bin  binary
	dir  string
	args []string
	size crashLoopSize
	rng  *rand.Rand
	key  string // the upload's Idempotency-Key
	dsn  string // the PostgreSQL schema; "" for the embedded backend

	hooks   *hookReceiver
	subID   string
	c       *child    // the running process, nil after a kill
	started time.Time // when c printed its serving line
	db      loopDB    // the service's database, read while it runs
	id      string    // the import, once an upload was answered
	kills   int
	mid     int // kills after which the next process found the import incomplete
}

// start runs a process on the loop's data.
func (l *crashLoop) start() {
	l.c = l.bin.start(l.t, l.dir, l.args...)
	l.started = time.Now()
}

// kill SIGKILLs the running process; st is the last progress seen.
func (l *crashLoop) kill(phase string, st stages) {
	up := time.Since(l.started)
	l.c.kill()
	l.c = nil
	l.kills++
	l.t.Logf("kill %d/%d (%s) %s after the start, at %s", l.kills, l.size.kills, phase, up.Round(time.Millisecond), st)
}

// afterKill restarts the service and reports whether the import was still
// incomplete in what the killed process left behind.
func (l *crashLoop) afterKill() (done bool) {
	l.start()
	if l.id == "" {
		l.mid++ // not even accepted yet
		l.t.Logf("restarted; the upload is to be posted again")
		return false
	}
	s := getSummary(l.t, l.c.url, l.id)
	l.t.Logf("restarted: %s, %d of %d rows", s.Status, s.Processed, s.Total)
	if s.Status == "completed" {
		return true
	}
	l.mid++
	return false
}

// run is the loop: upload, kill at random moments, restart, until the
// kills are used up or the import completed; then a final restart.
func (l *crashLoop) run() {
	t := l.t
	l.hooks = newHookReceiver(t)
	l.start()
	l.db = l.openDB()
	l.subID, l.hooks.secret = subscribe(t, l.c.url, l.hooks.srv.URL)
	body := numbersCSV(l.size.rows)

	for l.kills < l.size.kills {
		if l.id == "" {
			if l.kills == 0 && l.rng.IntN(3) == 0 {
				l.killDuringUpload(body)
				if l.afterKill() {
					break
				}
				continue
			}
			l.id = l.mustUpload(body)
		}
		done := l.killWhileProcessing()
		if l.c == nil && l.afterKill() {
			done = true
		}
		if done {
			t.Logf("the import completed after %d kills; no more kills", l.kills)
			break
		}
	}
	if l.c == nil {
		l.start()
	}
	if l.id == "" {
		l.id = l.mustUpload(body)
	}
	waitUntilCompleted(t, l.c.url, l.id, l.size.rows, l.size.timeout)

	// The receiver fails the first request; kill the service before the
	// retry (due a second later), so the retry comes from the next process
	// and must carry the same webhook-id.
	l.hooks.waitRequests(t, l.id, 1, 3*time.Minute)
	time.Sleep(time.Duration(300+l.rng.IntN(500)) * time.Millisecond)
	if !l.hooks.delivered(l.id) {
		l.c.kill()
		t.Logf("killed between the webhook's failed first attempt and its retry")
		l.start()
	}
	l.hooks.waitDelivered(t, l.id, 3*time.Minute)
	l.c.stop(t)
	l.c = nil
	if l.mid < l.size.minMid {
		t.Errorf("only %d of %d kills hit the import while it was incomplete, want at least %d", l.mid, l.kills, l.size.minMid)
	}
}

// killDuringUpload posts the import and SIGKILLs the service at a random
// moment of the request (or shortly after it was answered).
func (l *crashLoop) killDuringUpload(body []byte) {
	type answer struct {
		id     string
		status int
		err    error
	}
	res := make(chan answer, 1)
	base := l.c.url
	go func() {
		id, status, err := postImport(base, body, l.key)
		res <- answer{id, status, err}
	}()
	time.Sleep(time.Duration(l.rng.IntN(1500)) * time.Millisecond)
	l.kill("around the upload", stages{})
	a := <-res
	switch {
	case a.err == nil && (a.status == http.StatusAccepted || a.status == http.StatusOK):
		l.id = a.id
		l.t.Logf("the upload was answered %d before the kill", a.status)
	case a.err != nil:
		l.t.Logf("the upload was cut off: %v", a.err)
	default:
		l.t.Fatalf("upload answered %d", a.status)
	}
}

// mustUpload posts the import with the loop's Idempotency-Key: after a kill
// during the upload this either finds the import or creates it.
func (l *crashLoop) mustUpload(body []byte) string {
	id, status, err := postImport(l.c.url, body, l.key)
	if err != nil || (status != http.StatusAccepted && status != http.StatusOK) {
		l.t.Fatalf("upload: status %d, %v", status, err)
	}
	l.t.Logf("upload answered %d: import %s", status, id)
	return id
}

// jobSize is the service's --job-size (the default).
const jobSize = 500

// stages is how far the import is, by what the service committed: the
// summary, and the jobs the validator and the projector have handled (their
// idempotency records, written in the transaction of each job's effects).
type stages struct {
	summary
	validated, projected int
}

// stages reads the import's progress from the API and the database.
func (l *crashLoop) stages() stages {
	st := stages{summary: getSummary(l.t, l.c.url, l.id)}
	q := `SELECT COUNT(*) FROM handled_messages WHERE handler = ? AND msg_key LIKE ?`
	st.validated = l.db.count(l.t, q, handlers.ValidatorName, l.id+"/%")
	st.projected = l.db.count(l.t, q, handlers.ProjectorName, l.id+"/%")
	return st
}

func (st stages) String() string {
	return fmt.Sprintf("%d rows counted, %d jobs validated, %d projected", st.Processed, st.validated, st.projected)
}

// killWhileProcessing picks this kill's moment and kills there. Moments:
// "early", a random delay after the (re)start, when the process recovers,
// splits or starts on the first jobs; "validating", when the validator has
// committed a random number of jobs short of all of them, spread over the
// remaining kills (the import cannot be complete then); "late", when the
// projector has committed 80% to all but one of the jobs and the rest of
// the pipeline is catching up. The processed counter of the API is no good
// for this: the aggregator commits a batch of jobs at once, and on
// PostgreSQL, where a message becomes visible only once every transaction
// older than it has ended, it jumps by thousands of rows, often to the end.
// It returns true, without killing, when the import completed first.
func (l *crashLoop) killWhileProcessing() (done bool) {
	jobs := (l.size.rows + jobSize - 1) / jobSize
	st := l.stages()
	if st.Status == "completed" {
		return true
	}
	left := l.size.kills - l.kills
	switch {
	case left > 1 && l.rng.IntN(3) == 0, st.validated >= jobs-1 && st.projected >= jobs-1:
		time.Sleep(time.Duration(50+l.rng.IntN(800)) * time.Millisecond)
		st = l.stages()
		if st.Status == "completed" {
			return true
		}
		l.kill("early", st)
		return false
	case st.validated < jobs-1 && (left > 1 || l.rng.IntN(2) == 0):
		span := float64(jobs-1-st.validated) / float64(left)
		target := min(st.validated+1+int(span*(0.5+l.rng.Float64())), jobs-1)
		return l.killWhen(fmt.Sprintf("validating, target %d jobs validated", target),
			func(st stages) bool { return st.validated >= target })
	default:
		low := max(st.projected+1, jobs*8/10)
		target := low + l.rng.IntN(max(jobs-1-low, 0)+1)
		return l.killWhen(fmt.Sprintf("late, target %d jobs projected", target),
			func(st stages) bool { return st.projected >= target })
	}
}

// killWhen polls the import and kills the service a random few
// milliseconds after reached is true.
func (l *crashLoop) killWhen(phase string, reached func(stages) bool) (done bool) {
	deadline := time.Now().Add(3 * time.Minute)
	var prev stages
	for {
		st := l.stages()
		if st.Status == "completed" {
			l.t.Logf("completed before the kill (%s; the poll before: %s)", phase, prev)
			return true
		}
		if reached(st) {
			time.Sleep(time.Duration(l.rng.IntN(40)) * time.Millisecond)
			l.kill(phase, st)
			return false
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("no progress towards %q in 3m: %s", phase, st)
		}
		prev = st
		time.Sleep(10 * time.Millisecond)
	}
}

// postImport uploads body as CSV with an Idempotency-Key and returns the
// import's id and the status; err is a transport error (a killed server).
func postImport(base string, body []byte, key string) (id string, status int, err error) {
	req, err := http.NewRequest(http.MethodPost, base+"/v1/imports", bytes.NewReader(body))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Content-Type", "text/csv")
	req.Header.Set("Idempotency-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	var acc struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&acc); err != nil {
		return "", resp.StatusCode, err
	}
	return acc.ID, resp.StatusCode, nil
}

// subscribe creates a webhook subscription to url for import.completed and
// returns its id and signing secret.
func subscribe(t *testing.T, base, url string) (id, secret string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"url": url, "event_types": []string{webhooks.EventImportCompleted}})
	resp, err := http.Post(base+"/v1/webhooks", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("subscribe: status %d: %s", resp.StatusCode, b)
	}
	var sub struct{ ID, Secret string }
	if err := json.NewDecoder(resp.Body).Decode(&sub); err != nil {
		t.Fatal(err)
	}
	return sub.ID, sub.Secret
}

// hookDelivery is one webhook request the receiver got.
type hookDelivery struct {
	webhookID, eventType, importID string
	bodyHash                       [32]byte
	verifyErr                      error
	status                         int // what the receiver answered
}

// hookReceiver is the webhook target: it records every request and fails
// the first one, so the dispatcher has to retry.
type hookReceiver struct {
	srv    *httptest.Server
	secret string // set before anything can be delivered

	mu  sync.Mutex
	got []hookDelivery
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var ev struct {
		Type string `json:"type"`
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &ev)
	h.mu.Lock()
	defer h.mu.Unlock()
	d := hookDelivery{
		webhookID: r.Header.Get(webhooks.HeaderID),
		eventType: ev.Type,
		importID:  ev.Data.ID,
		bodyHash:  sha256.Sum256(body),
		verifyErr: webhooks.Verify(h.secret, r.Header, body, time.Now(), 5*time.Minute),
		status:    http.StatusNoContent,
	}
	if len(h.got) == 0 {
		d.status = http.StatusServiceUnavailable
	}
	h.got = append(h.got, d)
	w.WriteHeader(d.status)
}

// deliveries returns what was received for importID's completion.
func (h *hookReceiver) deliveries(importID string) []hookDelivery {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hookDelivery
	for _, d := range h.got {
		if d.importID == importID && d.eventType == webhooks.EventImportCompleted {
			out = append(out, d)
		}
	}
	return out
}

// delivered reports whether a request with importID's completion was
// answered with success.
func (h *hookReceiver) delivered(importID string) bool {
	for _, d := range h.deliveries(importID) {
		if d.status/100 == 2 {
			return true
		}
	}
	return false
}

// waitRequests waits until n requests with importID's completion came.
func (h *hookReceiver) waitRequests(t *testing.T, importID string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for len(h.deliveries(importID)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d webhook requests for %s within %s, want %d", len(h.deliveries(importID)), importID, timeout, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitDelivered waits until a request with importID's completion was
// answered with success.
func (h *hookReceiver) waitDelivered(t *testing.T, importID string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if h.delivered(importID) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no successful webhook delivery of %s within %s (%d requests)", importID, timeout, len(h.deliveries(importID)))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// openDB opens the service's database: the embedded one read-only, or
// the PostgreSQL schema.
func (l *crashLoop) openDB() loopDB {
	if l.dsn == "" {
		return loopDB{DB: openData(l.t, l.dir)}
	}
	db, err := sql.Open("pgx", l.dsn)
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { _ = db.Close() })
	return loopDB{DB: db, pg: true}
}

// check asserts the outcome on the stopped service's database.
func (l *crashLoop) check() {
	t := l.t
	db := l.openDB()
	n, id := l.size.rows, l.id

	var status string
	var total int
	var counts domain.Counts
	if err := db.QueryRow(db.rebind(`SELECT status, total, processed, valid, invalid, duplicates, failed FROM imports WHERE id = ?`), id).
		Scan(&status, &total, &counts.Processed, &counts.Valid, &counts.Invalid, &counts.Duplicates, &counts.Failed); err != nil {
		t.Fatalf("read import %s: %v", id, err)
	}
	if status != "completed" || total != n || counts.Processed != n || counts.Failed != 0 {
		t.Errorf("import: status %s, total %d, %+v; want completed, %d rows processed, none failed", status, total, counts, n)
	}
	// The counters are what the results add up to: no job counted twice
	// or lost, no row seen twice by the duplicate count.
	if want := l.resultCounts(db); counts != want {
		t.Errorf("import counters %+v, the results add up to %+v", counts, want)
	}
	if k := db.count(t, `SELECT COUNT(*) FROM import_numbers n LEFT JOIN
		(SELECT e164, COUNT(*) AS c, MIN(row_num) AS f FROM results WHERE import_id = ? AND e164 <> '' GROUP BY e164) r
		ON r.e164 = n.e164 WHERE n.import_id = ? AND (r.c IS NULL OR n.seen <> r.c OR n.first_row <> r.f)`, id, id); k != 0 {
		t.Errorf("%d numbers of the import seen a different number of times than they have results, or with another first row", k)
	}
	if a, b := db.count(t, `SELECT COUNT(DISTINCT e164) FROM results WHERE import_id = ? AND e164 <> ''`, id),
		db.count(t, `SELECT COUNT(*) FROM import_numbers WHERE import_id = ?`, id); a != b {
		t.Errorf("%d distinct numbers in the results, %d counted as seen", a, b)
	}
	if k := db.count(t, `SELECT COUNT(*) FROM imports`); k != 1 {
		t.Errorf("%d imports, want 1 (the retried upload must not create a second)", k)
	}

	// Every row 1..n has exactly one result: (import_id, row_num) is the
	// key, so n results all within 1..n are exactly one each.
	if k := db.count(t, `SELECT COUNT(*) FROM results WHERE import_id = ?`, id); k != n {
		t.Errorf("%d results, want %d", k, n)
	}
	if k := db.count(t, `SELECT COUNT(*) FROM results WHERE import_id = ? AND row_num BETWEEN 1 AND ?`, id, n); k != n {
		t.Errorf("%d results of rows 1..%d, want %d", k, n, n)
	}
	// Every row recorded exactly one event, once.
	if k := db.count(t, `SELECT COUNT(*) FROM number_events WHERE import_id = ?`, id); k != n {
		t.Errorf("%d number events of the import, want one per row (%d)", k, n)
	}
	if k := db.count(t, `SELECT COUNT(*) - COUNT(DISTINCT id) FROM number_events`); k != 0 {
		t.Errorf("%d number events stored twice under one id", k)
	}

	// Per-number streams: versions 1..v without holes or repeats; the
	// validator's heads, the projector's heads (numbers, kept on the server
	// databases only) and the streams agree; nothing left parked.
	if k := db.count(t, `SELECT COUNT(*) FROM (SELECT stream_id FROM number_events GROUP BY stream_id
		HAVING MIN(version) <> 1 OR MAX(version) <> COUNT(*) OR COUNT(DISTINCT version) <> COUNT(*)) g`); k != 0 {
		t.Errorf("%d streams with a gap or a repeated version", k)
	}
	if k := db.count(t, `SELECT COUNT(*) FROM stream_heads h WHERE h.version <>
		(SELECT COALESCE(MAX(version), 0) FROM number_events e WHERE e.stream_id = h.stream_id)`); k != 0 {
		t.Errorf("%d stream heads ahead of or behind their projected events", k)
	}
	if k := db.count(t, `SELECT COUNT(*) FROM numbers n WHERE n.version <>
		(SELECT COALESCE(MAX(version), 0) FROM number_events e WHERE e.stream_id = n.tenant || '/' || n.e164)`); k != 0 {
		t.Errorf("%d numbers whose projected version is not their stream's last", k)
	}
	if k := db.count(t, `SELECT COUNT(*) FROM number_events_parked`); k != 0 {
		t.Errorf("%d events still waiting for their predecessor", k)
	}
	if k := db.count(t, `SELECT COUNT(*) FROM watermill_poison`); k != 0 {
		t.Errorf("%d messages in the poison queue, want 0", k)
	}

	// Exactly one ImportCompleted on the bus.
	if k := l.completions(db); k != 1 {
		t.Errorf("%d ImportCompleted messages, want exactly 1", k)
	}

	// The webhook: one event, one delivery in the outbox, delivered at
	// least once (the receiver failed the first request), every request
	// with the outbox's webhook-id, the same body and a valid signature.
	eventID := "evt_" + id + "_completed"
	if k := db.count(t, `SELECT COUNT(*) FROM webhook_events WHERE event_id = ?`, eventID); k != 1 {
		t.Errorf("%d webhook events of the completion, want 1", k)
	}
	var outboxID, outboxStatus string
	if k := db.count(t, `SELECT COUNT(*) FROM webhook_deliveries WHERE event_id = ?`, eventID); k != 1 {
		t.Errorf("%d webhook deliveries of the completion in the outbox, want 1 (one subscription)", k)
	}
	if err := db.QueryRow(db.rebind(`SELECT webhook_id, status FROM webhook_deliveries WHERE event_id = ? AND subscription_id = ?`),
		eventID, l.subID).Scan(&outboxID, &outboxStatus); err != nil {
		t.Fatalf("read the outbox delivery: %v", err)
	}
	if outboxStatus != webhooks.StatusSucceeded {
		t.Errorf("outbox delivery %s is %s, want %s", outboxID, outboxStatus, webhooks.StatusSucceeded)
	}
	got := l.hooks.deliveries(id)
	ids := map[string]int{}
	succeeded := 0
	for _, d := range got {
		ids[d.webhookID]++
		if d.status/100 == 2 {
			succeeded++
		}
		if d.verifyErr != nil {
			t.Errorf("delivery %s: signature: %v", d.webhookID, d.verifyErr)
		}
		if d.bodyHash != got[0].bodyHash {
			t.Errorf("delivery %s: the body differs from the first request's", d.webhookID)
		}
	}
	t.Logf("webhook: %d requests (%d answered 2xx), webhook-ids %v", len(got), succeeded, ids)
	if succeeded < 1 {
		t.Errorf("no successful webhook delivery")
	}
	if len(ids) != 1 || ids[outboxID] == 0 {
		t.Errorf("webhook-ids %v, want all %s", ids, outboxID)
	}
	if all := l.hooks.count(); all != len(got) {
		t.Errorf("the receiver got %d requests, %d of them not this import's completion", all, all-len(got))
	}
}

// resultCounts adds up the import's results the way the aggregator counts
// them, a repeat of a number being a duplicate; it also checks that every
// result is its row's.
func (l *crashLoop) resultCounts(db loopDB) domain.Counts {
	t := l.t
	t.Helper()
	rows, err := db.Query(db.rebind(`SELECT row_num, e164, data FROM results WHERE import_id = ?`), l.id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var c domain.Counts
	seen := map[string]bool{}
	for rows.Next() {
		var (
			row  int
			e164 string
			data []byte
			v    domain.NumberValidated
		)
		if err := rows.Scan(&row, &e164, &data); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatalf("result of row %d: %v", row, err)
		}
		if v.Row != row || v.E164 != e164 {
			t.Errorf("result of row %d (%q) holds row %d (%q)", row, e164, v.Row, v.E164)
		}
		o := domain.OutcomeOf(v)
		if e164 != "" {
			if seen[e164] {
				o.Duplicates = 1
			}
			seen[e164] = true
		}
		c = c.Add(o)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return c
}

// count is how many requests the receiver got.
func (h *hookReceiver) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.got)
}

// completions counts the ImportCompleted messages of the loop's import on
// the bus's import_completed_v1 topic.
func (l *crashLoop) completions(db loopDB) int {
	l.t.Helper()
	rows, err := db.Query(`SELECT payload FROM "watermill_import_completed_v1"`)
	if err != nil {
		l.t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			l.t.Fatal(err)
		}
		if testenv.CompletedFor(raw, l.id) {
			n++
		}
	}
	if err := rows.Err(); err != nil {
		l.t.Fatal(err)
	}
	return n
}

// loopDB is the service's database, SQLite or PostgreSQL.
type loopDB struct {
	*sql.DB
	pg bool
}

// rebind turns ? placeholders into $n on PostgreSQL.
func (d loopDB) rebind(q string) string {
	if !d.pg {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (d loopDB) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	return queryInt(t, d.DB, d.rebind(q), args...)
}
