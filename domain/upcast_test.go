package domain_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/domain/phone"
)

// downcast writes v in the number.validated.v0 format, independently of the
// upcaster: the format as the first releases wrote it.
func downcast(t *testing.T, v domain.NumberValidated) json.RawMessage {
	t.Helper()
	old := map[string]any{
		"row": v.Row, "raw": v.Input, "ref": v.Ref, "region": v.Region, "ok": v.Valid,
		"error": strings.ToLower(v.Reason), "e164": v.E164,
		"formats": map[string]string{"international": v.International, "national": v.National},
		"ext":     v.Extension, "country": v.CountryCode, "number_region": v.RegionCode,
		"kind": strings.ToLower(v.Type), "carrier": v.Carrier, "location": v.Location,
		"timezone": strings.Join(v.Timezones, ";"),
	}
	b, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUpcastNumberValidatedV0(t *testing.T) {
	inputs := []struct{ input, region string }{
		{"06 30 123 4567", "HU"}, {"+1 650-253-0000", ""}, {"+36 1 234 5678 x 42", ""}, {"12", "HU"},
		{"call me", ""}, {"+44 7700 900123", ""}, {"0151 23456789", "DE"}, {"+999 123 456", ""}, {"", ""},
	}
	for i, in := range inputs {
		want := domain.NumberValidated{Row: i + 1, Input: in.input, Ref: "r", Region: in.region, Result: phone.Enrich(in.input, in.region)}
		wantJSON, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		at := time.Date(2024, 3, 1, 9, 0, 0, 123, time.UTC)
		ev := domain.NumberEvent{ID: "e", Stream: "t/+1", Version: 7, Type: domain.EventNumberValidatedV0,
			OccurredAt: at, ImportID: "imp", Data: downcast(t, want)}
		got, err := domain.UpcastEvent(ev)
		if err != nil {
			t.Fatalf("%q: %v", in.input, err)
		}
		if got.Type != domain.EventNumberValidated || got.ID != "e" || got.Version != 7 || !got.OccurredAt.Equal(at) ||
			got.Stream != "t/+1" || got.ImportID != "imp" {
			t.Errorf("%q: identity not kept: %+v", in.input, got)
		}
		// Byte for byte what a validator of today writes for the row.
		if string(got.Data) != string(wantJSON) {
			t.Errorf("%q:\n got %s\nwant %s", in.input, got.Data, wantJSON)
		}
	}
}

func TestUpcastKeepsCurrentAndUnknownTypes(t *testing.T) {
	for _, typ := range []string{domain.EventNumberValidated, "number.lookup_succeeded.v1", "number.somethingelse.v9"} {
		ev := domain.NumberEvent{ID: "e", Type: typ, Data: json.RawMessage(`{"x":1}`)}
		got, err := domain.UpcastEvent(ev)
		if err != nil || got.Type != typ || string(got.Data) != `{"x":1}` {
			t.Errorf("%s: got %+v, %v; want it unchanged", typ, got, err)
		}
	}
}

func TestUpcastCorruptDataIsPermanent(t *testing.T) {
	_, err := domain.UpcastEvent(domain.NumberEvent{ID: "e", Type: domain.EventNumberValidatedV0, Data: json.RawMessage(`[1]`)})
	if !errors.Is(err, domain.ErrPermanent) {
		t.Fatalf("err = %v, want ErrPermanent", err)
	}
}

func TestSchemaVersion(t *testing.T) {
	base, v, err := domain.SchemaVersion("number.validated.v12")
	if err != nil || base != "number.validated" || v != 12 {
		t.Fatalf("got %q %d %v", base, v, err)
	}
	for _, bad := range []string{"number.validated", "v1", "x.vA", ".v1"} {
		if _, _, err := domain.SchemaVersion(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	// Every name the bus carries is versioned.
	for _, n := range []string{domain.NameImportAccepted, domain.NameValidateJob, domain.NameNumbersRecorded,
		domain.NameJobProjected, domain.NameImportProgressed, domain.NameImportCompleted,
		domain.EventNumberValidated, domain.EventNumberValidatedV0} {
		if _, _, err := domain.SchemaVersion(n); err != nil {
			t.Error(err)
		}
	}
}
