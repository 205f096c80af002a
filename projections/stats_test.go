package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/domain/phone"
	"github.com/phonepipe/phonepipe/projections"
	"github.com/phonepipe/phonepipe/transport/storage"
)

func newStatsDB(t *testing.T) *storage.DB {
	t.Helper()
	db, err := storage.OpenSQLite(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := projections.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	return db
}

// statsMessages makes messages in which numbers reappear with higher
// versions, some with another carrier or validity than before.
func statsMessages(t *testing.T) []domain.NumbersRecorded {
	t.Helper()
	carriers := []string{"A", "B", ""}
	version := map[string]int64{}
	var out []domain.NumbersRecorded
	for job := 1; job <= 12; job++ {
		m := domain.NumbersRecorded{ImportID: "imp", Tenant: "t", Job: job}
		for i := range 9 {
			e164 := fmt.Sprintf("+3630000%04d", (job*7+i*3)%23)
			version[e164]++
			v := domain.NumberValidated{Row: i + 1, Input: e164, Result: phone.Result{
				Valid: (job+i)%4 != 0, E164: e164, RegionCode: []string{"HU", "AT"}[(job+i)%2],
				Carrier: carriers[(job*i)%3]}}
			data, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			m.Events = append(m.Events, domain.NumberEvent{ID: fmt.Sprintf("%d-%d", job, i), Stream: domain.NumberStream("t", e164),
				Version: version[e164], Type: domain.EventNumberValidated, OccurredAt: time.Unix(int64(job), 0), ImportID: "imp", Data: data})
		}
		// A row that did not parse is not counted.
		m.Events = append(m.Events, domain.NumberEvent{ID: fmt.Sprintf("%d-x", job), Stream: domain.RowStream("t", "imp", 99),
			Version: 1, Type: domain.EventNumberValidated, Data: json.RawMessage(`{"row":99,"input":"x","valid":false,"reason":"NOT_A_NUMBER"}`)})
		out = append(out, m)
	}
	return out
}

func projectStats(t *testing.T, db *storage.DB, msgs []domain.NumbersRecorded) projections.Checksum {
	t.Helper()
	ctx := context.Background()
	for _, m := range msgs {
		if err := storage.InTx(ctx, db.Write, func(ctx context.Context) error {
			return projections.NewCarrierStats(db).Project(ctx, m)
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range projections.Catalog(projections.Handlers{Project: "p", Stats: "s"}) {
		if p.Name == projections.ProjectionStats {
			sum, err := projections.ChecksumOf(ctx, db, p)
			if err != nil {
				t.Fatal(err)
			}
			return sum
		}
	}
	t.Fatal("no stats projection")
	return projections.Checksum{}
}

// TestCarrierStatsDependOnlyOnTheEventsApplied applies the same messages in
// different orders and compares the content, and checks the counts: each
// number once, in the bucket of its latest event.
func TestCarrierStatsDependOnlyOnTheEventsApplied(t *testing.T) {
	msgs := statsMessages(t)
	db := newStatsDB(t)
	want := projectStats(t, db, msgs)
	for seed := range uint64(5) {
		shuffled := append([]domain.NumbersRecorded(nil), msgs...)
		rand.New(rand.NewPCG(seed, seed)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if got := projectStats(t, newStatsDB(t), shuffled); got != want {
			t.Fatalf("order %d: %v, want %v", seed, got, want)
		}
	}
	// Expected counts, from the messages directly.
	latest := map[string]domain.NumberValidated{}
	top := map[string]int64{}
	for _, m := range msgs {
		for _, ev := range m.Events {
			var v domain.NumberValidated
			_ = json.Unmarshal(ev.Data, &v)
			if v.E164 != "" && ev.Version > top[v.E164] {
				top[v.E164], latest[v.E164] = ev.Version, v
			}
		}
	}
	type bucket struct{ numbers, valid int64 }
	wantBuckets := map[[2]string]bucket{}
	for _, v := range latest {
		b := wantBuckets[[2]string{v.RegionCode, v.Carrier}]
		b.numbers++
		if v.Valid {
			b.valid++
		}
		wantBuckets[[2]string{v.RegionCode, v.Carrier}] = b
	}
	got, err := projections.NewCarrierStats(db).Carriers(context.Background(), "t", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(wantBuckets) {
		t.Fatalf("%d buckets, want %d: %+v", len(got), len(wantBuckets), got)
	}
	for _, c := range got {
		if b := wantBuckets[[2]string{c.RegionCode, c.Carrier}]; b.numbers != c.Numbers || b.valid != c.Valid || c.Numbers == 0 {
			t.Errorf("bucket %+v, want %+v", c, b)
		}
	}
	if other, _ := projections.NewCarrierStats(db).Carriers(context.Background(), "someone-else", ""); len(other) != 0 {
		t.Errorf("another tenant sees %+v", other)
	}
	hu, _ := projections.NewCarrierStats(db).Carriers(context.Background(), "t", "HU")
	for _, c := range hu {
		if c.RegionCode != "HU" {
			t.Errorf("region filter returned %+v", c)
		}
	}
}

func TestSelect(t *testing.T) {
	catalog := projections.Catalog(projections.Handlers{Project: "p", Stats: "s"})
	all, err := projections.Select(catalog, nil, true)
	if err != nil || len(all) != 3 {
		t.Fatalf("--all: %v, %v; want numbers, results and stats", projections.Names(all), err)
	}
	one, err := projections.Select(catalog, []string{"stats"}, false)
	if err != nil || len(one) != 1 || one[0].Name != "stats" {
		t.Fatalf("stats: %v, %v", projections.Names(one), err)
	}
	for _, bad := range [][]string{{"imports"}, {"nope"}, nil} {
		if _, err := projections.Select(catalog, bad, false); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
