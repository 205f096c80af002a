package bus_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/transport/bus"
)

// TestMarshalerMatchesWatermillJSON: the bus's marshaler writes what
// watermill's cqrs.JSONMarshaler wrote before it (same payload bytes, same
// name), so messages already in a log replay the same, and either reads
// the other's messages.
func TestMarshalerMatchesWatermillJSON(t *testing.T) {
	ours := bus.NewMarshaler()
	theirs := cqrs.JSONMarshaler{GenerateName: cqrs.NamedStruct(cqrs.StructName)}
	data, err := json.Marshal(domain.NumberValidated{Row: 1, Input: "+44 20 7946 0018 <x>"})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []any{
		&domain.NumbersRecorded{ImportID: "i", Tenant: "t", Job: 2, Events: []domain.NumberEvent{{
			ID: "e", Stream: domain.NumberStream("t", "+442079460018"), Version: 3, Type: domain.EventNumberValidated,
			OccurredAt: time.Date(2026, 11, 21, 1, 2, 3, 4, time.UTC), ImportID: "i", Data: data}}},
		&domain.JobProjected{ImportID: "i", Tenant: "t", Job: 2, Counts: domain.Counts{Processed: 1, Valid: 1}},
	} {
		a, err := ours.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		b, err := theirs.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Payload, b.Payload) {
			t.Fatalf("%T: payloads differ:\nours   %s\ntheirs %s", v, a.Payload, b.Payload)
		}
		if ours.NameFromMessage(a) != theirs.NameFromMessage(b) || ours.NameFromMessage(a) != v.(interface{ Name() string }).Name() {
			t.Fatalf("%T: names %q and %q", v, ours.NameFromMessage(a), theirs.NameFromMessage(b))
		}
		if a.UUID == "" || a.UUID == b.UUID {
			t.Fatalf("%T: message id %q", v, a.UUID)
		}
		back := reflect.New(reflect.TypeOf(v).Elem()).Interface()
		if err := ours.Unmarshal(b, back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, v) {
			t.Fatalf("%T: round trip gave %+v", v, back)
		}
	}
}
