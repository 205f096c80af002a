package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
	"github.com/phonepipe/phonepipe/projections"
	"github.com/phonepipe/phonepipe/transport/sqlitepubsub"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// carrierBucket is one row of GET /v1/stats/carriers.
type carrierBucket struct {
	RegionCode string `json:"region_code"`
	Carrier    string `json:"carrier"`
	Numbers    int64  `json:"numbers"`
	Valid      int64  `json:"valid"`
}

// enrichedRow is the part of a result row the statistics count.
type enrichedRow struct {
	E164       string `json:"e164"`
	RegionCode string `json:"region_code"`
	Carrier    string `json:"carrier"`
	Valid      bool   `json:"valid"`
}

// expectedCarriers computes the statistics from the results of imports,
// independently of the projection: each distinct number once, in its
// region and carrier.
func expectedCarriers(t *testing.T, base string, imports ...string) []carrierBucket {
	t.Helper()
	numbers := map[string]enrichedRow{}
	for _, id := range imports {
		resp, err := http.Get(base + "/v1/imports/" + id + "/results")
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var r enrichedRow
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatal(err)
			}
			if r.E164 != "" {
				numbers[r.E164] = r
			}
		}
		resp.Body.Close()
	}
	buckets := map[[2]string]*carrierBucket{}
	for _, r := range numbers {
		k := [2]string{r.RegionCode, r.Carrier}
		if buckets[k] == nil {
			buckets[k] = &carrierBucket{RegionCode: r.RegionCode, Carrier: r.Carrier}
		}
		buckets[k].Numbers++
		if r.Valid {
			buckets[k].Valid++
		}
	}
	out := make([]carrierBucket, 0, len(buckets))
	for _, b := range buckets {
		out = append(out, *b)
	}
	sortBuckets(out)
	return out
}

func sortBuckets(bs []carrierBucket) {
	slices.SortFunc(bs, func(a, b carrierBucket) int {
		return strings.Compare(a.RegionCode+"\x00"+a.Carrier, b.RegionCode+"\x00"+b.Carrier)
	})
}

// carriers reads GET /v1/stats/carriers, sorted bytewise.
func carriers(t *testing.T, base string) []carrierBucket {
	t.Helper()
	var body struct {
		Carriers []carrierBucket `json:"carriers"`
	}
	if code := getJSON(t, base+"/v1/stats/carriers", &body); code != http.StatusOK {
		t.Fatalf("GET /v1/stats/carriers: %d", code)
	}
	sortBuckets(body.Carriers)
	return body.Carriers
}

// waitCarriers polls the statistics until they equal want.
func waitCarriers(t *testing.T, base string, want []carrierBucket, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := carriers(t, base)
		if reflect.DeepEqual(got, want) || len(got) == 0 && len(want) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("carrier statistics after %s:\n got %v\nwant %v", timeout, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// openLive opens the database of cfg's deployment, to corrupt it.
func openLive(t *testing.T, cfg app.Config) *storage.DB {
	t.Helper()
	ctx := context.Background()
	var (
		db  *storage.DB
		err error
	)
	switch {
	case cfg.Backend == app.BackendPostgres || cfg.Backend == app.BackendKafka && cfg.PostgresDSN != "":
		db, err = storage.OpenPostgres(ctx, cfg.PostgresDSN)
	case cfg.Backend == app.BackendMySQL:
		db, err = storage.OpenMySQL(ctx, cfg.MySQLDSN)
	default:
		db, err = storage.OpenSQLite(cfg.DataDir)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func checksums(t *testing.T, cfg app.Config) []projections.Checksum {
	t.Helper()
	sums, err := app.Checksums(context.Background(), cfg)
	if err != nil {
		t.Fatalf("checksums: %v", err)
	}
	return sums
}

func replayAll(t *testing.T, cfg app.Config) projections.ReplayReport {
	t.Helper()
	return replayParts(t, cfg, 0)
}

// replayParts replays every projection building partitions shadows in
// parallel (0: the default).
func replayParts(t *testing.T, cfg app.Config, partitions int) projections.ReplayReport {
	t.Helper()
	rep, err := app.Replay(context.Background(), cfg, app.ReplayOptions{All: true, Partitions: partitions})
	if err != nil {
		t.Fatalf("replay --all: %v", err)
	}
	return rep
}

// changedRows sums the live rows a replay changed.
func changedRows(rep projections.ReplayReport) int64 {
	var n int64
	for _, c := range rep.Changed {
		n += c
	}
	return n
}

// importsWithRepeats uploads two lists that share numbers (so that streams
// have several versions across imports) and waits for both.
func importsWithRepeats(t *testing.T, base string, n int) []string {
	t.Helper()
	first := mixedRows(n, 11)
	second := append(mixedRows(n/2, 12), first[:n/4]...)
	ids := []string{mustAccept(t, base, csvOf(first)), mustAccept(t, base, csvOf(second))}
	for _, id := range ids {
		waitCompleted(t, base, id, 3*time.Minute)
	}
	return ids
}

// TestReplayRebuildsIdenticalProjections replays every projection on every
// backend: the checksums after `replay --all` equal those before; a
// replay repairs tables that were damaged; and a replay that runs while an
// import is being processed leaves the projections exactly as a rebuild
// from scratch makes them.
func TestReplayRebuildsIdenticalProjections(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg app.Config) {
		cfg.DataDir = t.TempDir()
		a := startApp(t, cfg)
		base := a.URL()
		ids := importsWithRepeats(t, base, 600)
		want := expectedCarriers(t, base, ids...)
		waitCarriers(t, base, want, time.Minute)
		resultsBefore := results(t, base, ids[1])

		before := checksums(t, cfg)
		if len(before) != 4 {
			t.Fatalf("checksums %v, want numbers, results, stats and imports", before)
		}
		rep := replayParts(t, cfg, 3)
		if rep.Events != 600+450 || rep.Rows["results"] != 600+450 || changedRows(rep) != 0 {
			t.Fatalf("replay report %+v, want 1050 events and results, and no live row changed", rep)
		}
		if after := checksums(t, cfg); !reflect.DeepEqual(after, before) {
			t.Fatalf("checksums changed by replay --all:\nbefore %v\n after %v", before, after)
		}

		// Damage every replayable projection; a replay repairs it.
		db := openLive(t, cfg)
		for _, q := range []string{
			`DELETE FROM results WHERE row_num % 3 = 0`,
			`UPDATE import_numbers SET seen = seen + 1`,
			`UPDATE numbers SET state = '{}'`,
			`DELETE FROM number_events WHERE version = 1`,
			`DELETE FROM carrier_stats`,
		} {
			if _, err := db.Write.ExecContext(context.Background(), q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		damaged := checksums(t, cfg)
		for i := range 3 {
			if damaged[i] == before[i] {
				t.Fatalf("damage did not change %s", before[i].Projection)
			}
		}
		if rep := replayParts(t, cfg, 1); changedRows(rep) == 0 {
			t.Fatalf("repairing replay changed no row: %+v", rep)
		}
		if after := checksums(t, cfg); !reflect.DeepEqual(after, before) {
			t.Fatalf("replay did not repair:\nbefore %v\n after %v", before, after)
		}
		if got := results(t, base, ids[1]); !reflect.DeepEqual(got, resultsBefore) {
			t.Fatal("results differ after the replay")
		}
		if got := carriers(t, base); !reflect.DeepEqual(got, want) {
			t.Fatalf("statistics after the replay %v, want %v", got, want)
		}

		// Replay while the pipeline works on another import.
		third := mustAccept(t, base, csvOf(append(mixedRows(2000, 13), mixedRows(200, 11)...)))
		replayAll(t, cfg)
		waitCompleted(t, base, third, 3*time.Minute)
		checkDuplicates(t, base, third)
		waitCarriers(t, base, expectedCarriers(t, base, append(ids, third)...), time.Minute)
		live := checksums(t, cfg)
		replayAll(t, cfg)
		if rebuilt := checksums(t, cfg); !reflect.DeepEqual(rebuilt, live) {
			t.Fatalf("after a replay during processing, the projections differ from a rebuild:\nlive    %v\nrebuilt %v", live, rebuilt)
		}
		if cfg.Backend == "" || cfg.Backend == app.BackendSQLite {
			if left, _ := filepath.Glob(filepath.Join(cfg.DataDir, "replay-*")); len(left) > 0 {
				t.Fatalf("shadow files left behind: %v", left)
			}
		}
	})
}

// checkDuplicates checks an import's duplicates count against its results.
func checkDuplicates(t *testing.T, base, id string) {
	t.Helper()
	var sum importSummary
	getJSON(t, base+"/v1/imports/"+id, &sum)
	dups := 0
	first := map[string]int{}
	for _, r := range results(t, base, id) {
		if r.E164 == "" {
			continue
		}
		if f, ok := first[r.E164]; ok {
			dups++
			if r.DuplicateOf != f {
				t.Fatalf("row %d: duplicate_of %d, want %d", r.Row, r.DuplicateOf, f)
			}
		} else {
			first[r.E164] = r.Row
		}
	}
	if dups != sum.Duplicates {
		t.Fatalf("summary says %d duplicates, results %d", sum.Duplicates, dups)
	}
}

// TestStatsCatchUpFromHistory runs imports with the carrier statistics
// handler left out, then starts a process with it: its new consumer group
// reads the log from the first message and the statistics reach the right
// counts, then follow new imports.
func TestStatsCatchUpFromHistory(t *testing.T) {
	cfg := app.Config{DataDir: t.TempDir()}
	ctx, cancel := context.WithCancel(context.Background())
	old, err := app.New(ctx, func() app.Config {
		c := app.WithoutStats(cfg)
		c.Addr = "127.0.0.1:0"
		return c
	}())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- old.Run(ctx) }()
	ids := importsWithRepeats(t, old.URL(), 600)
	if got := carriers(t, old.URL()); len(got) != 0 {
		t.Fatalf("statistics without their handler: %v", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("first process: %v", err)
	}

	a := startApp(t, cfg)
	waitCarriers(t, a.URL(), expectedCarriers(t, a.URL(), ids...), 2*time.Minute)
	more := mustAccept(t, a.URL(), csvOf(mixedRows(500, 21)))
	waitCompleted(t, a.URL(), more, time.Minute)
	waitCarriers(t, a.URL(), expectedCarriers(t, a.URL(), append(ids, more)...), time.Minute)
}

// logRecord is one line of a JSON Lines event-log fixture.
type logRecord struct {
	Topic    string            `json:"topic"`
	UUID     string            `json:"uuid"`
	Metadata map[string]string `json:"metadata"`
	Payload  json.RawMessage   `json:"payload"`
}

// loadEventLog appends the messages of a fixture to the event log of a new
// embedded database in dataDir.
func loadEventLog(t *testing.T, dataDir, fixture string) {
	t.Helper()
	f, err := os.Open(fixture)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	db, err := storage.OpenSQLite(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pub, err := sqlitepubsub.NewPublisher(db.Write, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec logRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		if err := sqlitepubsub.InitializeTopic(ctx, db.Write, rec.Topic); err != nil {
			t.Fatal(err)
		}
		msg := message.NewMessage(rec.UUID, message.Payload(rec.Payload))
		for k, v := range rec.Metadata {
			msg.Metadata.Set(k, v)
		}
		if err := pub.Publish(rec.Topic, msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestReplayOldEventFormat projects and replays a log written in the
// number.validated.v0 format (testdata/eventlog-v0.jsonl): both the live
// projector and a replay upcast it into today's projections.
func TestReplayOldEventFormat(t *testing.T) {
	cfg := app.Config{DataDir: t.TempDir(), Roles: []string{app.RoleAPI, app.RoleProject}}
	loadEventLog(t, cfg.DataDir, filepath.Join("testdata", "eventlog-v0.jsonl"))

	check := func(t *testing.T, base string) {
		t.Helper()
		var number struct {
			Version   int64     `json:"version"`
			FirstSeen time.Time `json:"first_seen"`
			LastSeen  time.Time `json:"last_seen"`
			Imports   []string  `json:"imports"`
			Latest    struct {
				Valid     bool     `json:"valid"`
				Type      string   `json:"type"`
				Carrier   string   `json:"carrier"`
				National  string   `json:"national"`
				Timezones []string `json:"timezones"`
			} `json:"latest"`
		}
		deadline := time.Now().Add(time.Minute)
		for number.Version < 3 {
			if time.Now().After(deadline) {
				t.Fatalf("number not projected: %+v", number)
			}
			getJSON(t, base+"/v1/numbers/%2B36301234567", &number)
			time.Sleep(20 * time.Millisecond)
		}
		l := number.Latest
		if !l.Valid || l.Type != "MOBILE" || l.Carrier != "Magyar Telekom" || l.National != "06 30 123 4567" ||
			!slices.Equal(l.Timezones, []string{"Europe/Budapest"}) {
			t.Errorf("latest state %+v", l)
		}
		if !number.FirstSeen.Equal(time.Date(2024, 3, 1, 9, 0, 0, 123456789, time.UTC)) ||
			!number.LastSeen.Equal(time.Date(2024, 3, 2, 10, 30, 0, 5e8, time.UTC)) ||
			!slices.Equal(number.Imports, []string{"imp_v0_a", "imp_v0_b"}) {
			t.Errorf("number %+v", number)
		}
		var events struct {
			Events []struct {
				Type    string          `json:"type"`
				Version int64           `json:"version"`
				Data    json.RawMessage `json:"data"`
			} `json:"events"`
		}
		getJSON(t, base+"/v1/numbers/%2B36301234567/events", &events)
		wantData := []string{
			`{"row":1,"input":"06 30 123 4567","ref":"crm-1","region":"HU","valid":true,"e164":"+36301234567","international":"+36 30 123 4567","national":"06 30 123 4567","country_code":36,"region_code":"HU","type":"MOBILE","carrier":"Magyar Telekom","location":"Hungary","timezones":["Europe/Budapest"]}`,
			`{"row":4,"input":"+36301234567","ref":"crm-4","valid":true,"e164":"+36301234567","international":"+36 30 123 4567","national":"06 30 123 4567","country_code":36,"region_code":"HU","type":"MOBILE","carrier":"Magyar Telekom","location":"Hungary","timezones":["Europe/Budapest"]}`,
			`{"row":1,"input":"+36 30 123 4567","valid":true,"e164":"+36301234567","international":"+36 30 123 4567","national":"06 30 123 4567","country_code":36,"region_code":"HU","type":"MOBILE","carrier":"Magyar Telekom","location":"Hungary","timezones":["Europe/Budapest"]}`,
		}
		if len(events.Events) != len(wantData) {
			t.Fatalf("%d events, want %d", len(events.Events), len(wantData))
		}
		for i, ev := range events.Events {
			if ev.Type != "number.validated.v1" || ev.Version != int64(i+1) || string(ev.Data) != wantData[i] {
				t.Errorf("event %d: %s v%d %s\nwant number.validated.v1 v%d %s", i, ev.Type, ev.Version, ev.Data, i+1, wantData[i])
			}
		}
		waitCarriers(t, base, []carrierBucket{
			{RegionCode: "", Carrier: "O2", Numbers: 1, Valid: 0},
			{RegionCode: "DE", Carrier: "T-Mobile", Numbers: 1, Valid: 1},
			{RegionCode: "HU", Carrier: "Magyar Telekom", Numbers: 1, Valid: 1},
			{RegionCode: "US", Carrier: "", Numbers: 1, Valid: 1},
		}, time.Minute)
	}

	// The live projector upcasts on read.
	ctx, cancel := context.WithCancel(context.Background())
	first, err := app.New(ctx, func() app.Config { c := cfg; c.Addr = "127.0.0.1:0"; return c }())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := first.Run(ctx); err != nil {
			t.Errorf("run: %v", err)
		}
	})
	check(t, first.URL())
	cancel()
	wg.Wait()
	live := checksums(t, cfg)

	// A replay into emptied projections builds the same from the old log.
	db := openLive(t, cfg)
	for _, table := range []string{"numbers", "number_events", "results", "import_numbers",
		"carrier_stats", "carrier_stats_numbers"} {
		if _, err := db.Write.ExecContext(context.Background(), `DELETE FROM `+table); err != nil {
			t.Fatal(err)
		}
	}
	_ = db.Close()
	rep := replayAll(t, cfg)
	if rep.Events != 7 || rep.Rows["results"] != 7 {
		t.Fatalf("replay report %+v, want 7 events and 7 result rows", rep)
	}
	if rebuilt := checksums(t, cfg); !reflect.DeepEqual(rebuilt, live) {
		t.Fatalf("replayed projections differ:\nlive     %v\nreplayed %v", live, rebuilt)
	}
	a := startApp(t, cfg)
	check(t, a.URL())

	// Results in today's format, as stored.
	var row3 string
	if err := openLive(t, cfg).Read.QueryRowContext(context.Background(),
		`SELECT data FROM results WHERE import_id = 'imp_v0_a' AND row_num = 3`).Scan(&row3); err != nil {
		t.Fatal(err)
	}
	if want := `{"row":3,"input":"call me","ref":"crm-3","valid":false,"reason":"NOT_A_NUMBER"}`; row3 != want {
		t.Fatalf("result row 3: %s, want %s", row3, want)
	}
}

// TestReplayRefusesWhatItCannotRebuild checks the names replay accepts.
func TestReplayRefusesWhatItCannotRebuild(t *testing.T) {
	cfg := app.Config{DataDir: t.TempDir()}
	for _, names := range [][]string{{"imports"}, {"nosuch"}} {
		if _, err := app.Replay(context.Background(), cfg, app.ReplayOptions{Projections: names}); err == nil {
			t.Errorf("replay %v: no error", names)
		} else {
			t.Logf("replay %v: %v", names, err)
		}
	}
	if _, err := app.Replay(context.Background(), cfg, app.ReplayOptions{}); err == nil {
		t.Error("replay of nothing: no error")
	}
	// On an empty deployment, a replay of everything is a no-op.
	rep, err := app.Replay(context.Background(), cfg, app.ReplayOptions{Projections: []string{"numbers", "stats"}})
	if err != nil || rep.Messages != 0 {
		t.Fatalf("replay of an empty log: %+v, %v", rep, err)
	}
}
