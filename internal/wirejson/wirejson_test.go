package wirejson_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/domain/phone"
	"github.com/phonepipe/phonepipe/internal/listgen"
	"github.com/phonepipe/phonepipe/internal/wirejson"
)

// validated returns n rows of a generated list as the validator records
// them.
func validated(t testing.TB, n int) []domain.NumberValidated {
	t.Helper()
	g, err := listgen.New(listgen.Config{Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]domain.NumberValidated, n)
	for i := range out {
		r := g.Next()
		out[i] = domain.NumberValidated{Row: i + 1, Input: r.Number, Ref: r.Ref, Region: r.Region, Result: phone.Enrich(r.Number, r.Region)}
	}
	return out
}

// recordedJob is one job's NumbersRecorded message over rows, with its
// event data encoded by encoding/json.
func recordedJob(t testing.TB, rows []domain.NumberValidated) domain.NumbersRecorded {
	t.Helper()
	at := time.Date(2026, 11, 21, 15, 4, 5, 123456789, time.UTC)
	m := domain.NumbersRecorded{ImportID: "imp-1", Tenant: "acme", Job: 3, Events: make([]domain.NumberEvent, len(rows))}
	for i, r := range rows {
		data, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		m.Events[i] = domain.NumberEvent{ID: "ev", Stream: domain.NumberStream("acme", r.E164), Version: int64(i + 1),
			Type: domain.EventNumberValidated, OccurredAt: at, ImportID: "imp-1", Data: data}
	}
	return m
}

// TestSameBytesAsEncodingJSON checks that what the pipeline encodes comes
// out byte for byte as encoding/json writes it, and decodes back to the
// same values, so messages and events written before the switch (or by
// the encoding/json code off the hot path) read the same.
func TestSameBytesAsEncodingJSON(t *testing.T) {
	rows := validated(t, 2000)
	tricky := domain.NumberValidated{Row: 9, Input: "<script>&\"quote\"\\ \u2028 \x01 é 📞 \xff", Ref: "a\tb\nc", Detail: "deadline"}
	tricky.Timezones = []string{}
	cases := []struct {
		name string
		v    any
		into func() any
	}{
		{"a job's NumbersRecorded", recordedJob(t, rows[:500]), func() any { return new(domain.NumbersRecorded) }},
		{"HTML, control, non-ASCII and invalid UTF-8 in strings", tricky, func() any { return new(domain.NumberValidated) }},
		{"an empty job", domain.NumbersRecorded{ImportID: "i"}, func() any { return new(domain.NumbersRecorded) }},
		{"a job's JobProjected", domain.JobProjected{ImportID: "i", Tenant: "t", Job: 1, Counts: domain.Counts{Processed: 500, Valid: 480, Invalid: 20, Awaiting: 3}},
			func() any { return new(domain.JobProjected) }},
	}
	for _, r := range rows {
		cases = append(cases, struct {
			name string
			v    any
			into func() any
		}{"row " + r.Input, r, func() any { return new(domain.NumberValidated) }})
	}
	for _, c := range cases {
		want, err := json.Marshal(c.v)
		if err != nil {
			t.Fatalf("%s: encoding/json: %v", c.name, err)
		}
		got, err := wirejson.Marshal(c.v)
		if err != nil {
			t.Fatalf("%s: wirejson: %v", c.name, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: encodings differ:\nwirejson      %s\nencoding/json %s", c.name, got, want)
		}
		fromStd, fromWire := c.into(), c.into()
		if err := json.Unmarshal(want, fromStd); err != nil {
			t.Fatalf("%s: encoding/json decode: %v", c.name, err)
		}
		if err := wirejson.Unmarshal(want, fromWire); err != nil {
			t.Fatalf("%s: wirejson decode: %v", c.name, err)
		}
		if !reflect.DeepEqual(fromWire, fromStd) {
			t.Fatalf("%s: decoded values differ:\nwirejson      %+v\nencoding/json %+v", c.name, fromWire, fromStd)
		}
	}
}

// TestDecodedValuesOwnTheirMemory: the decoder reuses its input buffer
// from call to call, so strings and raw messages it returns must be copies;
// a value decoded earlier must not change when later ones are decoded.
func TestDecodedValuesOwnTheirMemory(t *testing.T) {
	rows := validated(t, 1000)
	jobs := []domain.NumbersRecorded{recordedJob(t, rows[:500]), recordedJob(t, rows[500:])}
	var got []domain.NumbersRecorded
	for _, m := range jobs {
		payload, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var out domain.NumbersRecorded
		if err := wirejson.Unmarshal(payload, &out); err != nil {
			t.Fatal(err)
		}
		got = append(got, out)
		clear(payload) // the caller's buffer, too, may be reused
	}
	var first []domain.NumberValidated
	for _, m := range got {
		for _, ev := range m.Events {
			var v domain.NumberValidated
			if err := wirejson.Unmarshal(ev.Data, &v); err != nil {
				t.Fatal(err)
			}
			first = append(first, v)
		}
	}
	if !reflect.DeepEqual(got, jobs) {
		t.Fatal("messages decoded earlier changed while later ones were decoded")
	}
	if !reflect.DeepEqual(first, rows) {
		t.Fatal("event data decoded earlier changed while later data was decoded")
	}
}

// TestRejectsWhatEncodingJSONRejects: a corrupt message must fail to
// decode (the bus then sends it to the poison queue), not decode to zeros.
func TestRejectsWhatEncodingJSONRejects(t *testing.T) {
	for _, in := range []string{
		``, `{`, `{"import_id":}`, `{"job":"3"}`, `{"events":[{"version":"x"}]}`,
		`{"events":[{"occurred_at":"yesterday"}]}`, `{"events":[{"data":}]}`, `[1,2]`, `{"job":1}x`,
	} {
		var std, wire domain.NumbersRecorded
		stdErr, wireErr := json.Unmarshal([]byte(in), &std), wirejson.Unmarshal([]byte(in), &wire)
		if stdErr == nil {
			t.Fatalf("%q: encoding/json accepts it; the case is wrong", in)
		}
		if wireErr == nil {
			t.Errorf("%q: wirejson accepts what encoding/json rejects (%v): %+v", in, stdErr, wire)
		}
	}
}

// BenchmarkCodecs compares encoding/json and wirejson on a job's message
// (decoded by the projector and the statistics) and on the event data
// (encoded by the validator, decoded by the projections), side by side.
func BenchmarkCodecs(b *testing.B) {
	rows := validated(b, 500)
	m := recordedJob(b, rows)
	payload, err := json.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	codecs := []struct {
		name      string
		marshal   func(any) ([]byte, error)
		unmarshal func([]byte, any) error
	}{{"encoding-json", json.Marshal, json.Unmarshal}, {"wirejson", wirejson.Marshal, wirejson.Unmarshal}}
	perEvent := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(m.Events)), "ns/event")
	}
	for _, c := range codecs {
		b.Run("decode-message/"+c.name, func(b *testing.B) {
			for b.Loop() {
				var out domain.NumbersRecorded
				if err := c.unmarshal(payload, &out); err != nil {
					b.Fatal(err)
				}
			}
			perEvent(b)
		})
		b.Run("decode-data/"+c.name, func(b *testing.B) {
			for b.Loop() {
				for _, ev := range m.Events {
					var v domain.NumberValidated
					if err := c.unmarshal(ev.Data, &v); err != nil {
						b.Fatal(err)
					}
				}
			}
			perEvent(b)
		})
		b.Run("encode-data/"+c.name, func(b *testing.B) {
			for b.Loop() {
				for _, r := range rows {
					if _, err := c.marshal(r); err != nil {
						b.Fatal(err)
					}
				}
			}
			perEvent(b)
		})
	}
}
