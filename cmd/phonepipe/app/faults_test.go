package app_test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the test reads the PostgreSQL database directly

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
	"github.com/phonepipe/phonepipe/internal/testenv"
)

// faultEnv is one running service with its backends behind proxies.
type faultEnv struct {
	base  string
	pg    *testenv.Proxy
	kafka *testenv.Proxy // nil unless the backend is Kafka
	// brokers are the Kafka bootstrap addresses (the proxy's).
	brokers []string
	id      string // the import under fault
	total   int
	more    []faultImport // imports uploaded during the fault
}

// faultImport is an accepted import and its rows.
type faultImport struct {
	id   string
	rows []sample
}

// faultCase is one fault, applied to a running import.
type faultCase struct {
	name  string
	kafka bool
	// errors: the fault must make the service log errors (proof that it
	// hit traffic in flight).
	errors bool
	// inject applies the fault and returns once it is over.
	inject func(t *testing.T, env *faultEnv)
}

// TestFaultsDatabaseAndBroker puts toxiproxy between the service and
// PostgreSQL (and Kafka) and slows, cuts and resets the connections while
// an import runs. The import must complete with every row exactly once,
// and /readyz must say not ready while the database is gone, quickly, and
// ready again after.
func TestFaultsDatabaseAndBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test (about 2 minutes); skipped with -short")
	}
	cases := []faultCase{
		{name: "pg_latency", inject: func(t *testing.T, env *faultEnv) {
			slow(t, env.pg, 4*time.Second)
		}},
		{name: "pg_cut", errors: true, inject: func(t *testing.T, env *faultEnv) {
			outage(t, env, "postgres cut", true, env.pg.Cut, env.pg.Restore)
		}},
		{name: "pg_hang", inject: func(t *testing.T, env *faultEnv) {
			// Packets are held, not dropped: a partition that heals. The
			// service's queries wait (it sets no statement timeout), so
			// only /readyz's own timeout makes errors.
			hang := func() { env.pg.Toxic("hang", "latency", "upstream", map[string]any{"latency": 60_000}) }
			heal := func() { env.pg.RemoveToxic("hang") }
			outage(t, env, "postgres hang", true, hang, heal)
		}},
		{name: "pg_reset_peer", errors: true, inject: func(t *testing.T, env *faultEnv) {
			resetPeers(t, env, env.pg, 3)
		}},
		{name: "kafka_pg_cut", kafka: true, errors: true, inject: func(t *testing.T, env *faultEnv) {
			outage(t, env, "postgres cut", true, env.pg.Cut, env.pg.Restore)
		}},
		{name: "kafka_pg_long_cut", kafka: true, errors: true, inject: func(t *testing.T, env *faultEnv) {
			// Longer than the retry middleware's budget (~14 s): every
			// attempt of a message fails on the database while the broker,
			// and with it the poison queue, stays reachable. The messages
			// must wait for the database, not go to the poison queue.
			outageOf(t, env, max(outageLength(t), 20*time.Second), "postgres cut", true, env.pg.Cut, env.pg.Restore)
		}},
		{name: "kafka_broker_faults", kafka: true, errors: true, inject: func(t *testing.T, env *faultEnv) {
			slow(t, env.kafka, 3*time.Second)
			// /readyz asks the broker for its API versions: it must say not
			// ready while the broker is cut off. Uploads go to PostgreSQL
			// and the outbox: the API takes them meanwhile.
			cut := func() {
				env.kafka.Cut()
				rows := mixedRows(300, 12)
				env.more = append(env.more, faultImport{id: mustAccept(t, env.base, csvOf(rows)), rows: rows})
			}
			outage(t, env, "kafka cut", true, cut, env.kafka.Restore)
			resetPeers(t, env, env.kafka, 2)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Most of a case is waiting (for the fault, retries, the
			// broker): the cases run side by side.
			t.Parallel()
			runFault(t, c)
		})
	}
}

func runFault(t *testing.T, c faultCase) {
	proxied, direct, pg := testenv.ProxiedPostgres(t)
	env := &faultEnv{pg: pg}
	cfg := app.Config{Backend: app.BackendPostgres, PostgresDSN: proxied, JobSize: 250}
	if c.kafka {
		env.brokers, env.kafka = testenv.ProxiedKafka(t)
		cfg.Backend, cfg.KafkaBrokers, cfg.KafkaPartitions = app.BackendKafka, env.brokers, 4
	}
	// The faults make the service log errors by design: keep its log and
	// show it only when the test fails.
	log := &faultLog{}
	cfg.Logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelWarn}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("service log (last lines):\n%s", log.tail(150))
		}
	})
	a := startApp(t, cfg)
	env.base = a.URL()
	waitReady(t, env.base, 30*time.Second)

	rows := mixedRows(5000, 11)
	env.total = len(rows)
	start := time.Now()
	env.id = mustAccept(t, env.base, csvOf(rows))
	db, err := sql.Open("pgx", direct)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Fault the import once its first validation job is done (the
	// processed count moves in bursts: on PostgreSQL it can jump from 0
	// to the end).
	for testenv.PGCount(t, db, `SELECT COUNT(*) FROM handled_messages WHERE handler = 'validate'`) == 0 {
		if time.Since(start) > 3*time.Minute {
			t.Fatal("no validation job done in 3 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	jobs := (len(rows) + cfg.JobSize - 1) / cfg.JobSize
	validated, counted := testenv.PGCount(t, db, `SELECT COUNT(*) FROM handled_messages WHERE handler = 'validate'`), processed(t, env)
	t.Logf("fault at %s: %d of %d jobs validated, %d/%d rows counted", time.Since(start).Round(time.Millisecond),
		validated, jobs, counted, env.total)
	if validated == jobs && counted == env.total {
		t.Fatal("the import was over before the fault")
	}
	errorsBefore := log.errors()
	c.inject(t, env)
	logged := log.errors() - errorsBefore
	t.Logf("fault over at %s, %d/%d rows; the service logged %d errors during it",
		time.Since(start).Round(time.Millisecond), processed(t, env), env.total, logged)
	if c.errors && logged == 0 {
		t.Errorf("the fault made no error: it did not hit the service's traffic")
	}

	all := append([]faultImport{{id: env.id, rows: rows}}, env.more...)
	sums := make([]importSummary, len(all))
	for i, imp := range all {
		sums[i] = waitCompleted(t, env.base, imp.id, 4*time.Minute)
		t.Logf("%d-row import completed %s after the first upload: %d valid, %d invalid, %d duplicates, %d failed",
			len(imp.rows), time.Since(start).Round(time.Millisecond), sums[i].Valid, sums[i].Invalid, sums[i].Duplicates, sums[i].Failed)
	}
	// Number streams are shared by imports: check them once all are done.
	for i, imp := range all {
		checkImport(t, env, db, imp, sums[i], c.kafka)
	}
	if code, _, reason := readyz(t, env.base); code != http.StatusOK {
		t.Errorf("/readyz after the imports: %d %s", code, reason)
	}
}

// checkImport checks a completed import: every row has exactly one
// result, the right one, and the stored outcome is exactly once.
func checkImport(t *testing.T, env *faultEnv, db *sql.DB, imp faultImport, sum importSummary, kafka bool) {
	t.Helper()
	rows := imp.rows
	if sum.Total != len(rows) || sum.Processed != len(rows) {
		t.Errorf("total %d processed %d, want %d", sum.Total, sum.Processed, len(rows))
	}
	if sum.Valid+sum.Invalid+sum.Failed != sum.Processed {
		t.Errorf("counts do not add up: %+v", sum)
	}
	if sum.Failed != 0 {
		t.Errorf("%d rows failed: the fault cost rows their validation", sum.Failed)
	}
	got := results(t, env.base, imp.id)
	if len(got) != len(rows) {
		t.Errorf("%d results, want %d", len(got), len(rows))
	}
	for i, r := range got {
		if i >= len(rows) {
			break
		}
		if r.Row != i+1 || r.Input != rows[i].number || r.Ref != rows[i].ref {
			t.Fatalf("result %d: row=%d input=%q ref=%q, want row %d %q %q", i, r.Row, r.Input, r.Ref, i+1, rows[i].number, rows[i].ref)
		}
	}
	testenv.CheckExactlyOncePG(t, db, imp.id, len(rows))
	if !kafka {
		if n := testenv.PGCount(t, db, `SELECT COUNT(*) FROM "watermill_poison"`); n != 0 {
			t.Errorf("%d messages in the poison queue", n)
		}
		if n := testenv.PGCompletions(t, db, imp.id); n != 1 {
			t.Errorf("%d ImportCompleted messages, want exactly 1", n)
		}
		return
	}
	if n := testenv.OutboxCompletions(t, db, imp.id); n != 1 {
		t.Errorf("%d ImportCompleted messages in the outbox, want exactly 1", n)
	}
	// The forwarder moves the outbox to Kafka after the commit, at least
	// once: a record may be sent twice, but as one message (one UUID),
	// which consumers deduplicate.
	deadline := time.Now().Add(time.Minute)
	distinct, records := testenv.KafkaCompletions(t, env.brokers, imp.id)
	for distinct == 0 && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		distinct, records = testenv.KafkaCompletions(t, env.brokers, imp.id)
	}
	if distinct != 1 {
		t.Errorf("%d distinct ImportCompleted messages in Kafka (%d records), want exactly 1", distinct, records)
	}
}

// faultLog is a service log kept in memory.
type faultLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *faultLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// errors counts the ERROR lines so far.
func (l *faultLog) errors() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Count(l.buf.Bytes(), []byte("level=ERROR"))
}

// tail returns the last n lines.
func (l *faultLog) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := strings.Split(strings.TrimRight(l.buf.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// processed is the import's processed count.
func processed(t *testing.T, env *faultEnv) int {
	t.Helper()
	var s importSummary
	if code := getJSON(t, env.base+"/v1/imports/"+env.id, &s); code != http.StatusOK {
		t.Fatalf("GET import: %d", code)
	}
	return s.Processed
}

// slow adds 100±50 ms to every packet both ways for d.
func slow(t *testing.T, p *testenv.Proxy, d time.Duration) {
	t.Helper()
	for _, dir := range []string{"upstream", "downstream"} {
		p.Toxic("slow_"+dir, "latency", dir, map[string]any{"latency": 100, "jitter": 50})
	}
	time.Sleep(d)
	for _, dir := range []string{"upstream", "downstream"} {
		p.RemoveToxic("slow_" + dir)
	}
}

// resetPeers resets every connection through p (TCP RST as soon as data
// flows) for 300 ms, n times, letting the service work a second between.
func resetPeers(t *testing.T, env *faultEnv, p *testenv.Proxy, n int) {
	t.Helper()
	for i := range n {
		p.Toxic("reset", "reset_peer", "upstream", map[string]any{"timeout": 0})
		time.Sleep(300 * time.Millisecond)
		p.RemoveToxic("reset")
		t.Logf("reset %d at %d/%d rows", i+1, processed(t, env), env.total)
		time.Sleep(time.Second)
	}
}

// outage takes a backend away with down for outageLength (5 s) and brings
// it back with up, probing /readyz all along: it must answer within 4 s
// every time (its database ping gives up after 2 s) and be ready again
// within 30 s of the end; with wantNotReady it must also say not ready at
// least once during the outage.
func outage(t *testing.T, env *faultEnv, what string, wantNotReady bool, down, up func()) {
	t.Helper()
	outageOf(t, env, outageLength(t), what, wantNotReady, down, up)
}

// outageOf is outage for a given length.
func outageOf(t *testing.T, env *faultEnv, length time.Duration, what string, wantNotReady bool, down, up func()) {
	t.Helper()
	before := processed(t, env)
	down()
	begin := time.Now()
	last, firstDown := http.StatusOK, time.Duration(-1)
	for time.Since(begin) < length {
		code, took, reason := readyz(t, env.base)
		at := time.Since(begin)
		if took > 4*time.Second {
			t.Errorf("/readyz took %s during the %s", took.Round(time.Millisecond), what)
		}
		if code != last {
			t.Logf("%s +%s: /readyz %d in %s (%s)", what, at.Round(time.Millisecond), code, took.Round(time.Millisecond), reason)
			last = code
		}
		if code == http.StatusServiceUnavailable && firstDown < 0 {
			firstDown = at
		}
		time.Sleep(100 * time.Millisecond)
	}
	up()
	ended := time.Now()
	switch {
	case firstDown < 0 && wantNotReady:
		t.Errorf("/readyz never reported not ready during the %s %s", length, what)
	case firstDown < 0:
		t.Logf("%s at %d/%d rows: /readyz stayed ready", what, before, env.total)
	default:
		t.Logf("%s at %d/%d rows: not ready %s after it began", what, before, env.total, firstDown.Round(time.Millisecond))
	}
	for {
		code, took, reason := readyz(t, env.base)
		if code == http.StatusOK {
			t.Logf("%s over: ready again %s after it ended (probe %s)", what, time.Since(ended).Round(time.Millisecond), took.Round(time.Millisecond))
			return
		}
		if time.Since(ended) > 30*time.Second {
			t.Fatalf("/readyz still %d 30 s after the %s ended: %s", code, what, reason)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitReady waits until /readyz says ready.
func waitReady(t *testing.T, base string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		code, _, reason := readyz(t, base)
		if code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz not ready after %s: %d %s", timeout, code, reason)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// outageLength is how long outage keeps a backend away: 5 s, or
// $PHONEPIPE_TEST_FAULT_OUTAGE (a Go duration) to try longer outages.
func outageLength(t *testing.T) time.Duration {
	t.Helper()
	v := os.Getenv("PHONEPIPE_TEST_FAULT_OUTAGE")
	if v == "" {
		return 5 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("PHONEPIPE_TEST_FAULT_OUTAGE=%q: want a positive duration such as 30s", v)
	}
	return d
}

// readyz probes /readyz and returns its status, how long it took and the
// reason given when not ready.
func readyz(t *testing.T, base string) (code int, took time.Duration, reason string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	start := time.Now()
	resp, err := client.Get(base + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body struct{ Reason string }
	_ = json.Unmarshal(b, &body)
	return resp.StatusCode, time.Since(start), body.Reason
}
