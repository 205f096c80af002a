package phone_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nyaruka/phonenumbers"

	"github.com/phonepipe/phonepipe/domain/phone"
)

// allReasons is the closed set of reason codes.
var allReasons = []string{
	phone.ReasonNotANumber,
	phone.ReasonInvalidCountryCode,
	phone.ReasonTooShort,
	phone.ReasonTooLong,
	phone.ReasonInvalidLength,
	phone.ReasonInvalidButPossible,
	phone.ReasonProcessingFailed,
}

// countryNumber is one valid number of a country, written in two forms.
type countryNumber struct {
	region        string
	national      string // as dialled inside the country
	international string // as dialled from abroad, "+CC ..."
	e164          string
	countryCode   int
	typ           string
}

var countryNumbers = []countryNumber{
	{"HU", "06 1 234 5678", "+36 1 234 5678", "+3612345678", 36, "FIXED_LINE"},
	{"HU", "06 30 123 4567", "+36 30 123 4567", "+36301234567", 36, "MOBILE"},
	{"US", "(650) 253-0000", "+1 650-253-0000", "+16502530000", 1, "FIXED_LINE_OR_MOBILE"},
	{"US", "1 800 253 0000", "+1 800-253-0000", "+18002530000", 1, "TOLL_FREE"},
	{"GB", "020 7946 0018", "+44 20 7946 0018", "+442079460018", 44, "FIXED_LINE"},
	{"GB", "07400 123456", "+44 7400 123456", "+447400123456", 44, "MOBILE"},
	{"DE", "030 123456", "+49 30 123456", "+4930123456", 49, "FIXED_LINE"},
	{"FR", "06 12 34 56 78", "+33 6 12 34 56 78", "+33612345678", 33, "MOBILE"},
	{"IN", "098765 43210", "+91 98765 43210", "+919876543210", 91, "MOBILE"},
	{"BR", "(11) 91234-5678", "+55 11 91234-5678", "+5511912345678", 55, "MOBILE"},
	{"NG", "0803 123 4567", "+234 803 123 4567", "+2348031234567", 234, "MOBILE"},
	{"JP", "03-1234-5678", "+81 3-1234-5678", "+81312345678", 81, "FIXED_LINE"},
	{"AU", "(02) 9876 5432", "+61 2 9876 5432", "+61298765432", 61, "FIXED_LINE"},
}

// TestEnrichCountries checks every country number in national,
// international, E.164 and RFC 3966 form.
func TestEnrichCountries(t *testing.T) {
	for _, c := range countryNumbers {
		forms := []struct{ name, input, region string }{
			{"national", c.national, c.region},
			{"national-lowercase-region", c.national, " " + strings.ToLower(c.region) + " "},
			{"international", c.international, ""},
			{"international-with-region", c.international, c.region},
			{"e164", c.e164, ""},
			{"rfc3966", "tel:" + strings.ReplaceAll(c.international, " ", "-"), ""},
		}
		for _, f := range forms {
			t.Run(c.region+"/"+f.name+"/"+f.input, func(t *testing.T) {
				got := phone.Enrich(f.input, f.region)
				if !got.Valid || got.Reason != "" {
					t.Fatalf("Enrich(%q, %q) = %+v, want valid", f.input, f.region, got)
				}
				if got.E164 != c.e164 {
					t.Errorf("E164 = %q, want %q", got.E164, c.e164)
				}
				if got.International != c.international {
					t.Errorf("International = %q, want %q", got.International, c.international)
				}
				if got.National == "" {
					t.Error("National is empty")
				}
				if got.CountryCode != c.countryCode {
					t.Errorf("CountryCode = %d, want %d", got.CountryCode, c.countryCode)
				}
				if got.RegionCode != c.region {
					t.Errorf("RegionCode = %q, want %q", got.RegionCode, c.region)
				}
				if got.Type != c.typ {
					t.Errorf("Type = %q, want %q", got.Type, c.typ)
				}
				if got.Location == "" {
					t.Error("Location is empty")
				}
				if len(got.Timezones) == 0 {
					t.Error("Timezones is empty")
				}
				if slices.Contains(got.Timezones, phonenumbers.UNKNOWN_TIMEZONE) {
					t.Errorf("Timezones = %v contains %q", got.Timezones, phonenumbers.UNKNOWN_TIMEZONE)
				}
				if got.Extension != "" {
					t.Errorf("Extension = %q, want none", got.Extension)
				}
			})
		}
	}
}

// TestEnrichDetails pins the full result for a few well-known numbers.
func TestEnrichDetails(t *testing.T) {
	tests := []struct {
		input, region string
		want          phone.Result
	}{
		{"+1 650-253-0000 ext. 123", "", phone.Result{
			Valid: true, E164: "+16502530000", International: "+1 650-253-0000 ext. 123",
			National: "(650) 253-0000 ext. 123", Extension: "123", CountryCode: 1, RegionCode: "US",
			Type: "FIXED_LINE_OR_MOBILE", Location: "Mountain View, CA", Timezones: []string{"America/Los_Angeles"},
		}},
		{"tel:+1-650-253-0000;ext=99", "", phone.Result{
			Valid: true, E164: "+16502530000", International: "+1 650-253-0000 ext. 99",
			National: "(650) 253-0000 ext. 99", Extension: "99", CountryCode: 1, RegionCode: "US",
			Type: "FIXED_LINE_OR_MOBILE", Location: "Mountain View, CA", Timezones: []string{"America/Los_Angeles"},
		}},
		{"06 30 123 4567", "HU", phone.Result{
			Valid: true, E164: "+36301234567", International: "+36 30 123 4567", National: "06 30 123 4567",
			CountryCode: 36, RegionCode: "HU", Type: "MOBILE", Carrier: "Magyar Telekom", Location: "Hungary",
			Timezones: []string{"Europe/Budapest"},
		}},
		{"00 36 1 234 5678", "DE", phone.Result{
			Valid: true, E164: "+3612345678", International: "+36 1 234 5678", National: "(06 1) 234 5678",
			CountryCode: 36, RegionCode: "HU", Type: "FIXED_LINE", Location: "Budapest",
			Timezones: []string{"Europe/Budapest"},
		}},
		// Non-geographical number: region "001", the library has no time zone.
		{"+800 1234 5678", "", phone.Result{
			Valid: true, E164: "+80012345678", International: "+800 1234 5678", National: "1234 5678",
			CountryCode: 800, RegionCode: "001", Type: "TOLL_FREE", Location: "World",
		}},
		// Parsed but invalid: formats, country code and type are still filled.
		{"+1 999 999 9999", "", phone.Result{
			Reason: phone.ReasonInvalidButPossible, E164: "+19999999999", International: "+1 999-999-9999",
			National: "(999) 999-9999", CountryCode: 1, Type: "UNKNOWN",
			Timezones: mustTimezones(t, "+19999999999"),
		}},
		{"hello", "US", phone.Result{Reason: phone.ReasonNotANumber}},
	}
	for _, tt := range tests {
		got := phone.Enrich(tt.input, tt.region)
		gotJSON, _ := json.Marshal(got)
		wantJSON, _ := json.Marshal(tt.want)
		if string(gotJSON) != string(wantJSON) {
			t.Errorf("Enrich(%q, %q)\n got %s\nwant %s", tt.input, tt.region, gotJSON, wantJSON)
		}
	}
}

func mustTimezones(t *testing.T, e164 string) []string {
	t.Helper()
	num, err := phonenumbers.Parse(e164, "")
	if err != nil {
		t.Fatal(err)
	}
	tzs, err := phonenumbers.GetTimezonesForNumber(num)
	if err != nil {
		t.Fatal(err)
	}
	return tzs
}

// TestEnrichReasons covers every reason code reachable through Enrich.
func TestEnrichReasons(t *testing.T) {
	tests := []struct {
		name, input, region string
		want                string
		parsed              bool // whether formats must be filled
	}{
		{"empty", "", "US", phone.ReasonNotANumber, false},
		{"word", "hello", "US", phone.ReasonNotANumber, false},
		{"punctuation", "++--", "", phone.ReasonNotANumber, false},
		{"plus only", "+", "", phone.ReasonNotANumber, false},
		{"blank", "   ", "HU", phone.ReasonNotANumber, false},
		{"single digit", "0", "HU", phone.ReasonNotANumber, false},
		{"unknown country code", "+999 1234 5678", "", phone.ReasonInvalidCountryCode, false},
		{"national without region", "06 1 234 5678", "", phone.ReasonInvalidCountryCode, false},
		{"national with ZZ", "06 1 234 5678", "ZZ", phone.ReasonInvalidCountryCode, false},
		{"national with unsupported region", "06 1 234 5678", "XX", phone.ReasonInvalidCountryCode, false},
		{"parse too short", "+36 1", "", phone.ReasonTooShort, false},
		{"parse too short after IDD", "011 12", "US", phone.ReasonTooShort, false},
		{"parse too short after IDD DE", "00 12", "DE", phone.ReasonTooShort, false},
		{"plus and two digits", "+12", "", phone.ReasonNotANumber, false},
		{"possible too short", "+36 1 23", "", phone.ReasonTooShort, true},
		{"possible too short national", "12", "US", phone.ReasonTooShort, true},
		{"parse too long input", strings.Repeat("1", 251), "US", phone.ReasonTooLong, false},
		{"parse too long NSN", "+36 123456789012345678", "", phone.ReasonTooLong, false},
		{"possible too long", "+36 12345678 9012", "", phone.ReasonTooLong, true},
		{"possible too long US", "+1 650 253 00000", "", phone.ReasonTooLong, true},
		{"invalid length CH", "+41 21 234 56785", "", phone.ReasonInvalidLength, true},
		{"invalid length AU", "+61 2 1234 567855", "", phone.ReasonInvalidLength, true},
		{"invalid but possible US", "+1 999 999 9999", "", phone.ReasonInvalidButPossible, true},
		{"invalid but possible DE", "+49 1234", "", phone.ReasonInvalidButPossible, true},
		{"possible local only US", "253 0000", "US", phone.ReasonInvalidButPossible, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := phone.Enrich(tt.input, tt.region)
			if got.Valid {
				t.Fatalf("Enrich(%q, %q) = %+v, want invalid", tt.input, tt.region, got)
			}
			if got.Reason != tt.want {
				t.Errorf("Reason = %q, want %q (result %+v)", got.Reason, tt.want, got)
			}
			if tt.parsed {
				if got.E164 == "" || got.International == "" || got.National == "" || got.CountryCode == 0 || got.Type != "UNKNOWN" {
					t.Errorf("parsed but invalid number lacks formats/type: %+v", got)
				}
			} else if !onlyReason(got) {
				t.Errorf("unparsed input has fields besides Reason: %+v", got)
			}
		})
	}
}

// onlyReason reports whether no field other than Valid and Reason is set.
func onlyReason(r phone.Result) bool {
	r.Reason = ""
	b, _ := json.Marshal(r)
	return string(b) == `{"valid":false}`
}

// directTypeNames is the test's own, independent spelling of the type names.
var directTypeNames = map[phonenumbers.PhoneNumberType]string{
	phonenumbers.FIXED_LINE:           "FIXED_LINE",
	phonenumbers.MOBILE:               "MOBILE",
	phonenumbers.FIXED_LINE_OR_MOBILE: "FIXED_LINE_OR_MOBILE",
	phonenumbers.TOLL_FREE:            "TOLL_FREE",
	phonenumbers.PREMIUM_RATE:         "PREMIUM_RATE",
	phonenumbers.SHARED_COST:          "SHARED_COST",
	phonenumbers.VOIP:                 "VOIP",
	phonenumbers.PERSONAL_NUMBER:      "PERSONAL_NUMBER",
	phonenumbers.PAGER:                "PAGER",
	phonenumbers.UAN:                  "UAN",
	phonenumbers.VOICEMAIL:            "VOICEMAIL",
	phonenumbers.UNKNOWN:              "UNKNOWN",
}

type input struct{ number, region string }

// comparisonInputs returns hand-picked inputs plus the library's example
// number of every type for every supported region, in national and E.164
// form.
func comparisonInputs() []input {
	ins := []input{
		{"+1 650-253-0000 ext. 123", ""}, {"+1 999 999 9999", ""}, {"253 0000", "US"},
		{"+36 1 23", ""}, {"+49 1234", ""}, {"+800 1234 5678", ""}, {"hello", ""},
		{"1-800-FLOWERS", "US"}, {"+41 21 234 56785", ""}, {"0011 36 1 234 5678", "AU"},
	}
	for _, c := range countryNumbers {
		ins = append(ins, input{c.national, c.region}, input{c.international, ""}, input{c.e164, ""})
	}
	regions := make([]string, 0, len(phonenumbers.GetSupportedRegions()))
	for r := range phonenumbers.GetSupportedRegions() {
		regions = append(regions, r)
	}
	slices.Sort(regions)
	for _, r := range regions {
		for typ := range directTypeNames {
			num := phonenumbers.GetExampleNumberForType(r, typ)
			if num == nil {
				continue
			}
			ins = append(ins,
				input{phonenumbers.Format(num, phonenumbers.NATIONAL), r},
				input{phonenumbers.Format(num, phonenumbers.E164), ""})
		}
	}
	return ins
}

// TestEnrichMatchesLibrary checks Valid, E164 and Type against calling
// phonenumbers directly.
func TestEnrichMatchesLibrary(t *testing.T) {
	ins := comparisonInputs()
	if len(ins) < 1000 {
		t.Fatalf("only %d comparison inputs", len(ins))
	}
	for _, in := range ins {
		got := phone.Enrich(in.number, in.region)
		num, err := phonenumbers.Parse(in.number, in.region)
		if err != nil {
			if got.Valid || got.E164 != "" || got.Type != "" {
				t.Errorf("Enrich(%q, %q) = %+v, but library fails to parse: %v", in.number, in.region, got, err)
			}
			continue
		}
		wantValid := phonenumbers.IsValidNumber(num)
		wantE164 := phonenumbers.Format(num, phonenumbers.E164)
		wantType := directTypeNames[phonenumbers.GetNumberType(num)]
		if got.Valid != wantValid || got.E164 != wantE164 || got.Type != wantType {
			t.Errorf("Enrich(%q, %q) = {Valid:%v E164:%q Type:%q}, library says {%v %q %q}",
				in.number, in.region, got.Valid, got.E164, got.Type, wantValid, wantE164, wantType)
		}
		if got.Valid != (got.Reason == "") {
			t.Errorf("Enrich(%q, %q): Valid=%v but Reason=%q", in.number, in.region, got.Valid, got.Reason)
		}
	}
}

// TestEnrichConcurrent calls Enrich from many goroutines at once. The
// goroutines start together, so when this test runs first (go test -race
// -run TestEnrichConcurrent) they also race on the library's lazy loading
// of carrier, geocoding and time-zone data.
func TestEnrichConcurrent(t *testing.T) {
	// A spread-out sample keeps the test fast under -race.
	var ins []input
	for i, in := range comparisonInputs() {
		if i < 50 || i%10 == 0 {
			ins = append(ins, in)
		}
	}
	const workers = 32
	start := make(chan struct{})
	results := make([][]phone.Result, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out := make([]phone.Result, len(ins))
			// Each worker walks the inputs from a different offset.
			for i := range ins {
				j := (i + w*len(ins)/workers) % len(ins)
				out[j] = phone.Enrich(ins[j].number, ins[j].region)
			}
			results[w] = out
		}()
	}
	close(start)
	wg.Wait()
	for i, in := range ins {
		want, _ := json.Marshal(phone.Enrich(in.number, in.region))
		for w := range workers {
			got, _ := json.Marshal(results[w][i])
			if string(got) != string(want) {
				t.Fatalf("worker %d: Enrich(%q, %q) = %s, serial = %s", w, in.number, in.region, got, want)
			}
		}
	}
}

// TestEnrichTimezonesNotShared makes sure callers can modify the returned
// slice without corrupting the library's lookup table.
func TestEnrichTimezonesNotShared(t *testing.T) {
	first := phone.Enrich("+36 1 234 5678", "")
	if len(first.Timezones) == 0 {
		t.Fatal("no time zones")
	}
	first.Timezones[0] = "Mars/Olympus_Mons"
	second := phone.Enrich("+36 1 234 5678", "")
	if second.Timezones[0] != "Europe/Budapest" {
		t.Errorf("time zones leaked a mutation: %v", second.Timezones)
	}
}

func TestResultJSON(t *testing.T) {
	b, err := json.Marshal(phone.Enrich("", ""))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"valid":false,"reason":"NOT_A_NUMBER"}`; string(b) != want {
		t.Errorf("json = %s, want %s", b, want)
	}
	b, err = json.Marshal(phone.Enrich("+1 650-253-0000 ext. 123", ""))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"valid":true,"e164":"+16502530000","international":"+1 650-253-0000 ext. 123",` +
		`"national":"(650) 253-0000 ext. 123","extension":"123","country_code":1,"region_code":"US",` +
		`"type":"FIXED_LINE_OR_MOBILE","location":"Mountain View, CA","timezones":["America/Los_Angeles"]}`
	if string(b) != want {
		t.Errorf("json = %s\nwant %s", b, want)
	}
}

func TestNormalizeRegion(t *testing.T) {
	tests := []struct {
		in     string
		want   string
		wantOK bool
	}{
		{"HU", "HU", true},
		{" hu ", "HU", true},
		{"us", "US", true},
		{"Gb\n", "GB", true},
		{"", "", false},
		{"  ", "", false},
		{"ZZ", "", false},
		{"zz", "", false},
		{"001", "", false},
		{"XX", "", false},
		{"HUN", "", false},
		{"UK", "", false},
	}
	for _, tt := range tests {
		got, ok := phone.NormalizeRegion(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("NormalizeRegion(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestParseE164(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr error // checked with errors.Is in addition to ErrNotE164
	}{
		{"+3612345678", "+3612345678", nil},
		{" +16502530000 ", "+16502530000", nil},
		{"+36 1 234-5678", "+3612345678", nil},
		{"+19999999999", "+19999999999", nil}, // parses, though not valid
		{"+80012345678", "+80012345678", nil},
		{"3612345678", "", nil},
		{"%2B3612345678", "", nil},
		{"", "", nil},
		{"+", "", phonenumbers.ErrNotANumber},
		{"+hello", "", phonenumbers.ErrNotANumber},
		{"+9991234567", "", phonenumbers.ErrInvalidCountryCode},
		{"+36 1", "", phonenumbers.ErrTooShortNSN},
		{"+16502530000;ext=123", "", nil},
		{"+1 650 253 0000 ext. 1", "", nil},
		{"tel:+16502530000", "", nil},
	}
	for _, tt := range tests {
		got, err := phone.ParseE164(tt.in)
		if tt.want != "" {
			if err != nil || got != tt.want {
				t.Errorf("ParseE164(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			continue
		}
		if err == nil || got != "" {
			t.Errorf("ParseE164(%q) = %q, %v; want error", tt.in, got, err)
			continue
		}
		if !errors.Is(err, phone.ErrNotE164) {
			t.Errorf("ParseE164(%q) error %v does not wrap ErrNotE164", tt.in, err)
		}
		if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
			t.Errorf("ParseE164(%q) error %v does not wrap %v", tt.in, err, tt.wantErr)
		}
	}
}

// TestParseE164RoundTrip checks that the E.164 form Enrich reports is
// accepted by ParseE164 unchanged.
func TestParseE164RoundTrip(t *testing.T) {
	for _, in := range comparisonInputs() {
		res := phone.Enrich(in.number, in.region)
		if res.E164 == "" {
			continue
		}
		got, err := phone.ParseE164(res.E164)
		if err != nil || got != res.E164 {
			t.Errorf("ParseE164(%q) = %q, %v", res.E164, got, err)
		}
	}
}

func TestMetadataVersion(t *testing.T) {
	v := phone.MetadataVersion()
	t.Logf("MetadataVersion() = %q", v)
	if !strings.HasPrefix(v, "v1.") {
		t.Errorf("MetadataVersion() = %q, want a v1.x module version", v)
	}
}

func TestWarm(t *testing.T) {
	phone.Warm()
	phone.Warm()
	if got := phone.Enrich("+36 30 123 4567", ""); got.Carrier == "" {
		t.Errorf("no carrier after Warm: %+v", got)
	}
}

func FuzzEnrich(f *testing.F) {
	seeds := []input{
		{"+1 650-253-0000 ext. 123", ""}, {"06 1 234 5678", "HU"}, {"tel:+44-20-7946-0018", ""},
		{"hello", ""}, {"", ""}, {"++--", "US"}, {"+999 1", ""}, {"0011 36 1", "AU"},
		{"tel:;phone-context=+1;tel:", "US"}, {"+36 1 23", "hu"}, {"\xff\xfe1234567", "DE"},
		{"1-800-FLOWERS", "US"}, {"+800 1234 5678 x 99", ""}, {"+64 21 123 4567 8888", "ZZ"},
	}
	for _, s := range seeds {
		f.Add(s.number, s.region)
	}
	f.Fuzz(func(t *testing.T, number, region string) {
		res := phone.Enrich(number, region)
		if res.Valid {
			if res.E164 == "" || res.Reason != "" || !strings.HasPrefix(res.E164, "+") {
				t.Fatalf("Enrich(%q, %q): valid result %+v", number, region, res)
			}
			if got, err := phone.ParseE164(res.E164); err != nil || got != res.E164 {
				t.Fatalf("ParseE164(%q) = %q, %v", res.E164, got, err)
			}
		} else if !slices.Contains(allReasons, res.Reason) {
			t.Fatalf("Enrich(%q, %q): invalid result with reason %q", number, region, res.Reason)
		}
		if slices.Contains(res.Timezones, phonenumbers.UNKNOWN_TIMEZONE) {
			t.Fatalf("Enrich(%q, %q): timezones %v", number, region, res.Timezones)
		}
	})
}

// benchInputs is a mix of valid, invalid and unparsable inputs.
var benchInputs = []input{
	{"+36 1 234 5678", ""}, {"06 30 123 4567", "HU"}, {"+1 650-253-0000 ext. 123", ""},
	{"(650) 253-0000", "US"}, {"+44 7400 123456", ""}, {"030 123456", "DE"},
	{"tel:+33-6-12-34-56-78", ""}, {"+91 98765 43210", ""}, {"(11) 91234-5678", "BR"},
	{"+2348031234567", ""}, {"03-1234-5678", "JP"}, {"+61 2 9876 5432", ""},
	{"+1 999 999 9999", ""}, {"hello", "US"},
}

func BenchmarkEnrich(b *testing.B) {
	phone.Warm()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		in := benchInputs[i%len(benchInputs)]
		phone.Enrich(in.number, in.region)
		i++
	}
}

func BenchmarkEnrichParallel(b *testing.B) {
	phone.Warm()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			in := benchInputs[i%len(benchInputs)]
			phone.Enrich(in.number, in.region)
			i++
		}
	})
}
