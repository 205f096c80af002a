package handlers_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/domain/phone"
	"github.com/phonepipe/phonepipe/handlers"
	"github.com/phonepipe/phonepipe/internal/listgen"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// benchJobRows is the default job size of the service.
const benchJobRows = 500

// listRows returns n rows of a realistic list as the upload store keeps them.
func listRows(b *testing.B, n int) []storage.StoredRow {
	b.Helper()
	g, err := listgen.New(listgen.Config{Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	rows := make([]storage.StoredRow, n)
	for i := range rows {
		r := g.Next()
		rows[i] = storage.StoredRow{Row: i + 1, Input: r.Number, Region: r.Region, Ref: r.Ref}
	}
	return rows
}

// memRows serves stored rows from memory.
type memRows []storage.StoredRow

func (m memRows) Rows(_ context.Context, _ string, first, last int) ([]storage.StoredRow, error) {
	return m[first-1 : last], nil
}

// firstVersions says every stream is new.
type firstVersions struct{}

func (firstVersions) Next(_ context.Context, streams []domain.StreamID) ([]int64, error) {
	v := make([]int64, len(streams))
	for i := range v {
		v[i] = 1
	}
	return v, nil
}

// capture keeps the last published event.
type capture struct{ last any }

func (c *capture) Publish(_ context.Context, event any) error { c.last = event; return nil }

// always says every message is new.
type always struct{}

func (always) FirstTime(context.Context, string, string) (bool, error) { return true, nil }

func newValidator(rows memRows, events *capture, workers int) handlers.Validator {
	return handlers.Validator{Rows: rows, Streams: firstVersions{}, Events: events, Dedupe: always{}, Workers: workers}
}

// BenchmarkValidatorJob is the CPU part of one validation job of 500 rows
// (read rows from memory, enrich, build and encode 500 events), without
// the database. Compare ns/row with BenchmarkBareEnrichJob: the gap is the
// validator's own overhead per row.
func BenchmarkValidatorJob(b *testing.B) {
	rows := memRows(listRows(b, benchJobRows))
	phone.Warm()
	for _, workers := range []int{1, 0} {
		name := fmt.Sprintf("workers=%d", workers)
		if workers == 0 {
			name = "workers=GOMAXPROCS"
		}
		b.Run(name, func(b *testing.B) {
			v := newValidator(rows, &capture{}, workers)
			job := &domain.ValidateJob{ImportID: "imp", Tenant: "t", Job: 1, FirstRow: 1, LastRow: benchJobRows}
			b.ReportAllocs()
			for b.Loop() {
				if err := v.Handle(context.Background(), job); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchJobRows), "ns/row")
		})
	}
}

// BenchmarkBareEnrichJob is phone.Enrich over the same 500 rows on one
// goroutine: the library's share of BenchmarkValidatorJob/workers=1.
func BenchmarkBareEnrichJob(b *testing.B) {
	rows := listRows(b, benchJobRows)
	phone.Warm()
	b.ReportAllocs()
	for b.Loop() {
		for _, r := range rows {
			phone.Enrich(r.Input, r.Region)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchJobRows), "ns/row")
}

// recordedJob returns the NumbersRecorded message a validator publishes
// for a 500-row job of a realistic list.
func recordedJob(b *testing.B) *domain.NumbersRecorded {
	b.Helper()
	events := &capture{}
	v := newValidator(memRows(listRows(b, benchJobRows)), events, 0)
	job := &domain.ValidateJob{ImportID: "imp", Tenant: "t", Job: 1, FirstRow: 1, LastRow: benchJobRows}
	if err := v.Handle(context.Background(), job); err != nil {
		b.Fatal(err)
	}
	m, ok := events.last.(*domain.NumbersRecorded)
	if !ok {
		b.Fatalf("validator published %T", events.last)
	}
	return m
}

// BenchmarkEncodeNumbersRecorded is the bus's marshaling of one job's
// NumbersRecorded message (500 events), as the validator publishes it.
func BenchmarkEncodeNumbersRecorded(b *testing.B) {
	m := recordedJob(b)
	marshaler := cqrs.JSONMarshaler{GenerateName: cqrs.NamedStruct(cqrs.StructName)}
	var size int
	b.ReportAllocs()
	for b.Loop() {
		msg, err := marshaler.Marshal(m)
		if err != nil {
			b.Fatal(err)
		}
		size = len(msg.Payload)
	}
	b.ReportMetric(float64(size), "bytes/msg")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(m.Events)), "ns/event")
}

// BenchmarkDecodeNumbersRecorded is the bus's unmarshaling of the same
// message, as the projector and aggregator receive it.
func BenchmarkDecodeNumbersRecorded(b *testing.B) {
	m := recordedJob(b)
	marshaler := cqrs.JSONMarshaler{GenerateName: cqrs.NamedStruct(cqrs.StructName)}
	msg, err := marshaler.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var out domain.NumbersRecorded
		if err := marshaler.Unmarshal(msg, &out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(m.Events)), "ns/event")
}
