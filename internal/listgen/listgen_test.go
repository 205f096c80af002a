package listgen_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/phonepipe/phonepipe/domain/phone"
	"github.com/phonepipe/phonepipe/internal/listgen"
)

func rows(t *testing.T, cfg listgen.Config, n int) []listgen.Row {
	t.Helper()
	g, err := listgen.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]listgen.Row, n)
	for i := range out {
		out[i] = g.Next()
	}
	return out
}

func TestDeterministic(t *testing.T) {
	a := rows(t, listgen.Config{Seed: 7}, 5000)
	b := rows(t, listgen.Config{Seed: 7}, 5000)
	if !slices.Equal(a, b) {
		t.Fatal("the same seed gave different lists")
	}
	c := rows(t, listgen.Config{Seed: 8}, 5000)
	same := 0
	for i := range a {
		if a[i].Number == c[i].Number {
			same++
		}
	}
	if same > len(a)/10 {
		t.Fatalf("seeds 7 and 8 share %d of %d numbers", same, len(a))
	}
}

func TestProportions(t *testing.T) {
	const n = 40000
	var st listgen.Stats
	for _, r := range rows(t, listgen.Config{Seed: 1}, n) {
		st.Add(r)
	}
	near := func(name string, got int, want float64) {
		t.Helper()
		if share := float64(got) / n; math.Abs(share-want) > 0.01 {
			t.Errorf("%s: %.3f of rows, want %.3f ± 0.01", name, share, want)
		}
	}
	near("junk", st.Junk, listgen.DefaultJunkRate)
	near("repeats", st.Repeats, listgen.DefaultRepeatRate)
	for _, s := range listgen.Styles() {
		if st.Styles[s] < n/50 {
			t.Errorf("style %s: only %d rows", s, st.Styles[s])
		}
	}
	if len(st.Countries) < len(listgen.DefaultCountries()) {
		t.Errorf("%d countries present, want all %d", len(st.Countries), len(listgen.DefaultCountries()))
	}
	if top := st.TopCountries(1); top[0] != "US" {
		t.Errorf("most frequent country %s, want US", top[0])
	}
}

// TestRowsMeanWhatTheySay checks the rows against the phone rule itself:
// fresh rows are valid numbers of their country, junk is not valid,
// repeats repeat an earlier row's number.
func TestRowsMeanWhatTheySay(t *testing.T) {
	const n = 6000
	seen := map[string]bool{}
	var fresh, freshValid, junk, junkValid, repeats, repeatsSeen int
	for _, r := range rows(t, listgen.Config{Seed: 3}, n) {
		res := phone.Enrich(r.Number, r.Region)
		switch r.Kind {
		case listgen.KindFresh:
			fresh++
			if res.Valid && res.RegionCode == r.Country {
				freshValid++
			}
		case listgen.KindJunk:
			junk++
			if res.Valid {
				junkValid++
				t.Logf("junk row %q (%s) is valid", r.Number, r.Region)
			}
		case listgen.KindRepeat:
			repeats++
			if seen[res.E164] {
				repeatsSeen++
			} else {
				t.Logf("repeat %q (%s) → %q %s not seen", r.Number, r.Region, res.E164, res.Reason)
			}
		}
		if res.E164 != "" {
			seen[res.E164] = true
		}
	}
	if float64(freshValid) < 0.95*float64(fresh) {
		t.Errorf("%d of %d fresh rows are valid numbers of their country, want ≥ 95 %%", freshValid, fresh)
	}
	if float64(junkValid) > 0.02*float64(junk) {
		t.Errorf("%d of %d junk rows are valid numbers", junkValid, junk)
	}
	if repeatsSeen != repeats {
		t.Errorf("%d of %d repeats repeat an earlier number", repeatsSeen, repeats)
	}
}

func TestWriteCSV(t *testing.T) {
	var buf bytes.Buffer
	st, err := listgen.WriteCSV(context.Background(), &buf, listgen.Config{Seed: 5}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1001 || st.Rows != 1000 {
		t.Fatalf("%d records (stats: %d rows), want header + 1000", len(recs), st.Rows)
	}
	if !slices.Equal(recs[0], listgen.Header()) {
		t.Fatalf("header %v", recs[0])
	}
	want := rows(t, listgen.Config{Seed: 5}, 1000)
	for i, r := range want {
		if got := recs[i+1]; got[0] != r.Number || got[1] != r.Region || got[2] != r.Ref {
			t.Fatalf("row %d: %v, want %+v", i+1, got, r)
		}
	}
}

func TestWriteCSVStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := listgen.WriteCSV(ctx, &bytes.Buffer{}, listgen.Config{}, 10)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestValidate(t *testing.T) {
	for _, cfg := range []listgen.Config{
		{JunkRate: 0.6, RepeatRate: 0.5},
		{JunkRate: -1},
		{Countries: []listgen.Country{{"XX", 1}}},
		{Countries: []listgen.Country{{"US", 0}}},
	} {
		if _, err := listgen.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

func BenchmarkNext(b *testing.B) {
	g, err := listgen.New(listgen.Config{Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		g.Next()
	}
}
