package webhooks

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// openDB opens the SQLite database at path the way the product does.
func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// newTestStore returns a migrated Store on a fresh SQLite file and the file's
// path, for opening it again as another "process" would.
func newTestStore(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "webhooks.db")
	s := NewStore(openDB(t, path), DialectSQLite)
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return s, path
}

// enqueue runs Store.Enqueue in its own committed transaction.
func enqueue(t *testing.T, s *Store, ev Event, tenantSecret string) {
	t.Helper()
	ctx := context.Background()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	if err := s.Enqueue(ctx, tx, ev, tenantSecret); err != nil {
		_ = tx.Rollback()
		t.Fatalf("enqueue %s: %v", ev.ID, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

func testEvent(id, tenant, typ string) Event {
	return Event{
		ID: id, Tenant: tenant, Type: typ,
		Timestamp:     time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
		Data:          []byte(`{"import_id":"` + id + `","rows":3}`),
		CorrelationID: "corr-" + id,
	}
}

// request is one request a receiver got.
type request struct {
	at        time.Time
	header    http.Header
	body      []byte
	verifyErr error
}

// receiver is a webhook endpoint on 127.0.0.1 that verifies signatures and
// answers with whatever respond says for the n-th request (0-based).
type receiver struct {
	srv     *httptest.Server
	secret  string // set before events are sent; "" skips verification
	respond func(n int, w http.ResponseWriter)

	mu   sync.Mutex
	reqs []request
}

func newReceiver(t *testing.T, respond func(n int, w http.ResponseWriter)) *receiver {
	t.Helper()
	r := &receiver{respond: respond}
	r.srv = httptest.NewUnstartedServer(r)
	r.srv.Start()
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	secret := r.secret
	rec := request{at: time.Now(), header: req.Header.Clone(), body: body}
	if secret != "" {
		rec.verifyErr = Verify(secret, req.Header, body, time.Now(), time.Minute)
	}
	n := len(r.reqs)
	r.reqs = append(r.reqs, rec)
	r.mu.Unlock()
	r.respond(n, w)
}

func (r *receiver) setSecret(secret string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secret = secret
}

func (r *receiver) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.reqs...)
}

func (r *receiver) url() string { return r.srv.URL + "/hook" }

// statusSeq answers the n-th request with codes[n], and the last code after.
func statusSeq(codes ...int) func(int, http.ResponseWriter) {
	return func(n int, w http.ResponseWriter) {
		w.WriteHeader(codes[min(n, len(codes)-1)])
	}
}

// testConfig is a dispatcher config for tests: receivers are on 127.0.0.1, the
// schedule is short and polling fast.
func testConfig(schedule ...time.Duration) DispatcherConfig {
	return DispatcherConfig{
		Schedule:     schedule,
		Timeout:      5 * time.Second,
		PollInterval: 10 * time.Millisecond,
		AllowPrivate: true,
		Logger:       slog.New(slog.DiscardHandler),
	}
}

// startDispatcher runs a dispatcher until the returned stop is called or the
// test ends; stop waits for Run to return.
func startDispatcher(t *testing.T, s *Store, cfg DispatcherConfig) (stop func()) {
	t.Helper()
	d, err := NewDispatcher(s, cfg)
	if err != nil {
		t.Fatalf("NewDispatcher: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// eventually polls cond until it holds, failing the test after 15s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// onlyDelivery returns the single delivery of tenant's subscriptionID.
func onlyDelivery(t *testing.T, s *Store, tenant, subscriptionID string) Delivery {
	t.Helper()
	ds, err := s.ListDeliveries(context.Background(), tenant, subscriptionID)
	if err != nil {
		t.Fatalf("ListDeliveries: %v", err)
	}
	if len(ds) != 1 {
		t.Fatalf("got %d deliveries, want 1", len(ds))
	}
	return ds[0]
}

// waitStatus waits until the only delivery of tenant's subscriptionID has the
// given status and returns it.
func waitStatus(t *testing.T, s *Store, tenant, subscriptionID, status string) Delivery {
	t.Helper()
	var d Delivery
	eventually(t, "delivery "+status, func() bool {
		d = onlyDelivery(t, s, tenant, subscriptionID)
		return d.Status == status
	})
	return d
}

func statusCodes(as []Attempt) []int {
	codes := make([]int, len(as))
	for i, a := range as {
		codes[i] = a.StatusCode
	}
	return codes
}
