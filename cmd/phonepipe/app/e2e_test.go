package app_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
)

// libraryTypes maps the library's number types to the contract's names,
// written out independently of the code under test.
var libraryTypes = map[phonenumbers.PhoneNumberType]string{
	phonenumbers.FIXED_LINE: "FIXED_LINE", phonenumbers.MOBILE: "MOBILE",
	phonenumbers.FIXED_LINE_OR_MOBILE: "FIXED_LINE_OR_MOBILE", phonenumbers.TOLL_FREE: "TOLL_FREE",
	phonenumbers.PREMIUM_RATE: "PREMIUM_RATE", phonenumbers.SHARED_COST: "SHARED_COST", phonenumbers.VOIP: "VOIP",
	phonenumbers.PERSONAL_NUMBER: "PERSONAL_NUMBER", phonenumbers.PAGER: "PAGER", phonenumbers.UAN: "UAN",
	phonenumbers.VOICEMAIL: "VOICEMAIL", phonenumbers.UNKNOWN: "UNKNOWN",
}

func TestEndToEndMixedImport(t *testing.T) {
	forEachBackend(t, testEndToEndMixedImport)
}

func testEndToEndMixedImport(t *testing.T, cfg app.Config) {
	a := startApp(t, cfg)
	base := a.URL()
	rows := mixedRows(1500, 7)
	id := mustAccept(t, base, csvOf(rows))
	sum := waitCompleted(t, base, id, 2*time.Minute)

	if sum.Total != len(rows) || sum.Processed != len(rows) {
		t.Fatalf("total %d processed %d, want %d", sum.Total, sum.Processed, len(rows))
	}
	if sum.Valid+sum.Invalid+sum.Failed != sum.Processed {
		t.Fatalf("counts do not add up: %+v", sum)
	}
	if sum.CompletedAt == nil {
		t.Fatal("completed import has no completed_at")
	}
	got := results(t, base, id)
	if len(got) != len(rows) {
		t.Fatalf("%d results, want %d", len(got), len(rows))
	}
	var valid, invalid, dups int
	firstRowOf := map[string]int{}
	for i, r := range got {
		in := rows[i]
		if r.Row != i+1 || r.Input != in.number || r.Ref != in.ref {
			t.Fatalf("row %d: got row=%d input=%q ref=%q, want %q %q", i+1, r.Row, r.Input, r.Ref, in.number, in.ref)
		}
		num, err := phonenumbers.Parse(in.number, in.region)
		wantValid := err == nil && phonenumbers.IsValidNumber(num)
		if r.Valid != wantValid {
			t.Errorf("row %d %q/%s: valid=%v, library says %v", r.Row, in.number, in.region, r.Valid, wantValid)
		}
		if err == nil {
			if want := phonenumbers.Format(num, phonenumbers.E164); r.E164 != want {
				t.Errorf("row %d %q: e164=%q, library says %q", r.Row, in.number, r.E164, want)
			}
			if want := libraryTypes[phonenumbers.GetNumberType(num)]; r.Type != want {
				t.Errorf("row %d %q: type=%q, library says %q", r.Row, in.number, r.Type, want)
			}
		} else if r.E164 != "" || r.Valid {
			t.Errorf("row %d %q does not parse but has e164 %q", r.Row, in.number, r.E164)
		}
		if r.Valid {
			valid++
		} else {
			invalid++
			if r.Reason == "" {
				t.Errorf("row %d %q invalid without reason", r.Row, in.number)
			}
		}
		if r.E164 != "" {
			if first, ok := firstRowOf[r.E164]; ok {
				dups++
				if r.DuplicateOf != first {
					t.Errorf("row %d: duplicate_of=%d, want %d", r.Row, r.DuplicateOf, first)
				}
			} else {
				firstRowOf[r.E164] = r.Row
				if r.DuplicateOf != 0 {
					t.Errorf("row %d: first occurrence has duplicate_of=%d", r.Row, r.DuplicateOf)
				}
			}
		}
	}
	if valid != sum.Valid || invalid != sum.Invalid || dups != sum.Duplicates {
		t.Fatalf("summary %+v, results count valid=%d invalid=%d duplicates=%d", sum, valid, invalid, dups)
	}
	if dups == 0 || invalid == 0 || valid == 0 {
		t.Fatalf("the sample should mix valid, invalid and repeated rows: %+v", sum)
	}
}

func TestSameNumberInTwoImportsSharesOneStream(t *testing.T) {
	a := startApp(t, app.Config{})
	base := a.URL()
	first := mustAccept(t, base, []byte("number\n+36 30 123 4567\n"))
	waitCompleted(t, base, first, time.Minute)
	second := mustAccept(t, base, []byte("number,region\n06301234567,HU\n"))
	waitCompleted(t, base, second, time.Minute)

	var events struct {
		Events []struct {
			ID       string          `json:"id"`
			Type     string          `json:"type"`
			Version  int64           `json:"version"`
			ImportID string          `json:"import_id"`
			Data     json.RawMessage `json:"data"`
		} `json:"events"`
	}
	for _, path := range []string{"/v1/numbers/%2B36301234567/events", "/v1/numbers/+36301234567/events"} {
		if code := getJSON(t, base+path, &events); code != http.StatusOK {
			t.Fatalf("GET %s: %d", path, code)
		}
		if len(events.Events) != 2 {
			t.Fatalf("%s: %d events, want 2", path, len(events.Events))
		}
		for i, ev := range events.Events {
			if ev.Version != int64(i+1) || ev.Type != "number.validated.v1" {
				t.Fatalf("event %d: %+v", i, ev)
			}
		}
		if events.Events[0].ImportID != first || events.Events[1].ImportID != second {
			t.Fatalf("events belong to %s, %s; want %s, %s", events.Events[0].ImportID, events.Events[1].ImportID, first, second)
		}
	}
	var number struct {
		E164    string   `json:"e164"`
		Version int64    `json:"version"`
		Imports []string `json:"imports"`
	}
	if code := getJSON(t, base+"/v1/numbers/%2B36301234567", &number); code != http.StatusOK {
		t.Fatalf("GET number: %d", code)
	}
	if number.Version != 2 || len(number.Imports) != 2 {
		t.Fatalf("number projection %+v, want version 2 in 2 imports", number)
	}
}
