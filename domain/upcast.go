package domain

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/phonepipe/phonepipe/domain/phone"
)

// Event evolution.
//
// Every message and event name ends in its schema version (".v1"). A stored
// event is never rewritten: the log keeps what was written, in the format of
// its day. Readers turn older versions into the current one on read, through
// a chain of upcasters (v0 → v1 → … → current), so projection code only ever
// sees today's shape. To change an event's data in a way old readers could
// not read: add the new version's name, make writers use it, and add an
// upcaster from the previous version here.

// EventNumberValidatedV0 is the type of the per-number event written by the
// first releases, before number.validated.v1. Its data had other field names
// and shapes; see numberValidatedV0.
const EventNumberValidatedV0 = "number.validated.v0"

// Upcaster turns the data of one version of an event into the data of the
// next version.
type Upcaster struct {
	From, To string
	Up       func(data json.RawMessage) (json.RawMessage, error)
}

// UpcasterFor returns the upcaster that reads events of type typ, if any.
func UpcasterFor(typ string) (Upcaster, bool) {
	switch typ {
	case EventNumberValidatedV0:
		return Upcaster{From: EventNumberValidatedV0, To: EventNumberValidated, Up: upNumberValidatedV0}, true
	default:
		return Upcaster{}, false
	}
}

// maxUpcasts bounds a chain of upcasters (a cycle would be a programming
// error).
const maxUpcasts = 32

// UpcastEvent returns ev in the current version of its type: its data and
// type upcast step by step while an upcaster reads its type, its identity,
// stream, version and time kept. An event whose type no upcaster reads is
// returned as it is (whether its reader knows that type is the reader's
// business). A failed upcast is an ErrPermanent: the stored event cannot be
// read, now or later.
func UpcastEvent(ev NumberEvent) (NumberEvent, error) {
	for range maxUpcasts {
		u, ok := UpcasterFor(ev.Type)
		if !ok {
			return ev, nil
		}
		data, err := u.Up(ev.Data)
		if err != nil {
			return NumberEvent{}, fmt.Errorf("event %s: upcast %s to %s: %w: %w", ev.ID, u.From, u.To, ErrPermanent, err)
		}
		ev.Type, ev.Data = u.To, data
	}
	return NumberEvent{}, fmt.Errorf("event %s: upcasting %q does not end: %w", ev.ID, ev.Type, ErrPermanent)
}

// SchemaVersion splits a versioned name ("number.validated.v1") into its
// base ("number.validated") and version (1).
func SchemaVersion(name string) (base string, version int, err error) {
	i := strings.LastIndex(name, ".v")
	if i <= 0 {
		return "", 0, fmt.Errorf("name %q has no .vN version suffix", name)
	}
	v, err := strconv.Atoi(name[i+2:])
	if err != nil || v < 0 {
		return "", 0, fmt.Errorf("name %q has no .vN version suffix", name)
	}
	return name[:i], v, nil
}

// numberValidatedV0 is the data of a number.validated.v0 event:
//
//	{"row":1,"raw":"06 30 123 4567","ref":"a","region":"HU","ok":true,
//	 "e164":"+36301234567","formats":{"international":"+36 30 123 4567","national":"06 30 123 4567"},
//	 "country":36,"number_region":"HU","kind":"mobile","carrier":"Telekom",
//	 "location":"Hungary","timezone":"Europe/Budapest"}
//
// Compared with number.validated.v1: the input was "raw", validity "ok", the
// reason "error" in lower case, the two display formats were nested under
// "formats", the extension was "ext", the calling code "country", the
// number's region "number_region", the type "kind" in lower case, and the
// time zones one string joined with ";".
type numberValidatedV0 struct {
	Row     int    `json:"row"`
	Raw     string `json:"raw"`
	Ref     string `json:"ref"`
	Region  string `json:"region"`
	OK      bool   `json:"ok"`
	Error   string `json:"error"`
	E164    string `json:"e164"`
	Formats struct {
		International string `json:"international"`
		National      string `json:"national"`
	} `json:"formats"`
	Ext          string `json:"ext"`
	Country      int    `json:"country"`
	NumberRegion string `json:"number_region"`
	Kind         string `json:"kind"`
	Carrier      string `json:"carrier"`
	Location     string `json:"location"`
	Timezone     string `json:"timezone"`
}

// upNumberValidatedV0 upcasts number.validated.v0 data to
// number.validated.v1, encoded exactly as a validator of today encodes it.
func upNumberValidatedV0(data json.RawMessage) (json.RawMessage, error) {
	var old numberValidatedV0
	if err := json.Unmarshal(data, &old); err != nil {
		return nil, fmt.Errorf("decode %s data: %w", EventNumberValidatedV0, err)
	}
	v := NumberValidated{Row: old.Row, Input: old.Raw, Ref: old.Ref, Region: old.Region, Result: phone.Result{
		Valid:         old.OK,
		E164:          old.E164,
		International: old.Formats.International,
		National:      old.Formats.National,
		Extension:     old.Ext,
		CountryCode:   old.Country,
		RegionCode:    old.NumberRegion,
		Type:          strings.ToUpper(old.Kind),
		Carrier:       old.Carrier,
		Location:      old.Location,
	}}
	if !old.OK {
		v.Reason = strings.ToUpper(old.Error)
		if v.Reason == "" {
			v.Reason = phone.ReasonNotANumber
		}
	}
	if old.Timezone != "" {
		v.Timezones = strings.Split(old.Timezone, ";")
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s data: %w", EventNumberValidated, err)
	}
	return out, nil
}
