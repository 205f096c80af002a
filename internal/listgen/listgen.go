// Package listgen generates realistic phone-number lists for benchmarks and
// load tests: what a customer's CRM export looks like rather than a clean
// column of E.164 strings.
//
// A list mixes a dozen-plus countries weighted like a real customer base
// (see [DefaultCountries]), writes numbers in national, international, E.164
// and RFC 3966 (tel:) style, carries a region column most of the time,
// and contains about 8 % junk (empty cells, words, truncated or overlong
// numbers, unknown calling codes) and 5 % repeats of numbers listed
// earlier, often written in another style. Numbers are built from the
// phone library's own example numbers for each country, so nearly every
// non-junk row is a valid number of its country.
//
// Generation is deterministic: the same [Config] yields the same rows, on
// every machine. A [Generator] produces one row at a time, and [WriteCSV]
// streams rows to a writer, so lists of millions of rows never sit in
// memory. Nothing here keeps package-level mutable state; a Generator is
// not safe for concurrent use, separate Generators are independent.
package listgen

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Country is one country of a list and its share of the rows.
type Country struct {
	// Region is the ISO 3166-1 alpha-2 code, e.g. "US".
	Region string
	// Weight is the country's relative share of the rows.
	Weight int
}

// DefaultCountries is the country mix of a typical international customer
// list: heavy on the US and western Europe, with a long tail.
func DefaultCountries() []Country {
	return []Country{
		{"US", 28}, {"GB", 10}, {"DE", 8}, {"IN", 8}, {"FR", 6}, {"BR", 6},
		{"MX", 4}, {"ES", 4}, {"IT", 4}, {"JP", 4}, {"AU", 3}, {"PL", 3},
		{"NG", 3}, {"ZA", 3}, {"CA", 3}, {"NL", 2}, {"HU", 1},
	}
}

// Default rates of the special kinds of rows.
const (
	DefaultJunkRate   = 0.08
	DefaultRepeatRate = 0.05
)

// Config says what list to generate.
type Config struct {
	// Seed makes the list: the same seed, the same rows.
	Seed uint64
	// Countries is the country mix; DefaultCountries() when empty.
	Countries []Country
	// JunkRate is the share of rows that are not phone numbers, in [0, 1).
	// Zero means DefaultJunkRate.
	JunkRate float64
	// RepeatRate is the share of rows that repeat an earlier number, in
	// [0, 1). Zero means DefaultRepeatRate.
	RepeatRate float64
}

func (c *Config) setDefaults() {
	if len(c.Countries) == 0 {
		c.Countries = DefaultCountries()
	}
	if c.JunkRate == 0 {
		c.JunkRate = DefaultJunkRate
	}
	if c.RepeatRate == 0 {
		c.RepeatRate = DefaultRepeatRate
	}
}

// Validate checks the configuration (after defaults are applied).
func (c Config) Validate() error {
	if c.JunkRate < 0 || c.RepeatRate < 0 || c.JunkRate+c.RepeatRate >= 1 {
		return fmt.Errorf("junk rate %.3f and repeat rate %.3f must be non-negative and add up to less than 1", c.JunkRate, c.RepeatRate)
	}
	for _, co := range c.Countries {
		if co.Weight <= 0 {
			return fmt.Errorf("country %s: weight %d must be positive", co.Region, co.Weight)
		}
		if phonenumbers.GetCountryCodeForRegion(co.Region) == 0 {
			return fmt.Errorf("country %q: not a region the phone library knows", co.Region)
		}
	}
	return nil
}

// Kind says how a row was made.
type Kind int

// The kinds of rows.
const (
	// KindFresh is a number not listed before (by construction; two fresh
	// rows may still collide by chance, rarely).
	KindFresh Kind = iota
	// KindRepeat repeats the number of an earlier row, in any style.
	KindRepeat
	// KindJunk is not a valid phone number.
	KindJunk
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case KindFresh:
		return "fresh"
	case KindRepeat:
		return "repeat"
	case KindJunk:
		return "junk"
	default:
		return "Kind(" + strconv.Itoa(int(k)) + ")"
	}
}

// Style is how a number is written.
type Style int

// The styles of numbers. Junk rows have StyleNone.
const (
	StyleNone Style = iota
	// StyleNational is the country's own way, e.g. "(201) 555-0123" or
	// "02012345678"; it needs the region column to be understood.
	StyleNational
	// StyleInternational is e.g. "+1 201-555-0123".
	StyleInternational
	// StyleE164 is e.g. "+12015550123".
	StyleE164
	// StyleRFC3966 is e.g. "tel:+1-201-555-0123".
	StyleRFC3966
)

// Styles lists the styles numbers are written in.
func Styles() []Style {
	return []Style{StyleNational, StyleInternational, StyleE164, StyleRFC3966}
}

// String names the style.
func (s Style) String() string {
	switch s {
	case StyleNone:
		return "none"
	case StyleNational:
		return "national"
	case StyleInternational:
		return "international"
	case StyleE164:
		return "e164"
	case StyleRFC3966:
		return "rfc3966"
	default:
		return "Style(" + strconv.Itoa(int(s)) + ")"
	}
}

// Row is one generated row.
type Row struct {
	// Number is the cell as a user would have typed it.
	Number string
	// Region is the row's country column; empty for some rows in
	// international form, as in real exports.
	Region string
	// Ref is the caller's own id of the row, unique in the list.
	Ref string
	// Kind and Style say how the row was made, for tests and statistics.
	Kind  Kind
	Style Style
	// Country is the country the row was drawn for (junk rows too).
	Country string
}

// Generator produces the rows of one list, one at a time.
type Generator struct {
	cfg       Config
	rng       *rand.Rand
	countries []countryPlan
	total     int // sum of weights
	n         int // rows produced so far
	// seen is a uniform sample of earlier numbers, for repeats.
	seen      []drawn
	seenSeen  int // how many numbers were offered to seen
	junkWords []string
}

// seenCap bounds the memory kept for repeats.
const seenCap = 16384

// countryPlan holds the number ranges a country's numbers are drawn from.
type countryPlan struct {
	region string
	weight int
	// bases are valid numbers; a drawn number keeps all but the last
	// suffixDigits digits of one of them.
	mobile, fixed []base
}

type base struct {
	cc            int32
	nn            uint64
	leadingZero   bool
	suffixDigits  int
	suffixModulus uint64
}

// drawn is one number of the list.
type drawn struct {
	region string
	num    base // with the drawn national number
	ext    string
}

// New returns the generator of the list cfg describes.
func New(cfg Config) (*Generator, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Countries = slices.Clone(cfg.Countries)
	g := &Generator{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x6c697374_67656e21)),
		junkWords: junkWords()}
	for _, co := range cfg.Countries {
		p, err := planCountry(g.rng, co)
		if err != nil {
			return nil, err
		}
		g.countries = append(g.countries, p)
		g.total += co.Weight
	}
	return g, nil
}

// basesPerType is how many number ranges each country and type gets.
const basesPerType = 64

// planCountry finds number ranges of a country by varying the library's
// example mobile and fixed-line numbers and keeping the variants the
// library accepts as valid numbers of the same type.
func planCountry(rng *rand.Rand, co Country) (countryPlan, error) {
	p := countryPlan{region: co.Region, weight: co.Weight}
	for _, t := range []struct {
		typ phonenumbers.PhoneNumberType
		out *[]base
	}{{phonenumbers.MOBILE, &p.mobile}, {phonenumbers.FIXED_LINE, &p.fixed}} {
		ex := phonenumbers.GetExampleNumberForType(co.Region, t.typ)
		if ex == nil {
			continue
		}
		// Vary every digit but the first: numbers spread over the
		// country's area codes and mobile prefixes.
		vary := len(strconv.FormatUint(ex.GetNationalNumber(), 10)) - 1
		if vary < 1 {
			continue
		}
		suffix := min(4, vary)
		b := base{cc: ex.GetCountryCode(), nn: ex.GetNationalNumber(), leadingZero: ex.GetItalianLeadingZero(),
			suffixDigits: suffix, suffixModulus: pow10(suffix)}
		*t.out = append(*t.out, b)
		mod := pow10(vary)
		for try := 0; try < 40*basesPerType && len(*t.out) < basesPerType; try++ {
			c := b
			c.nn = b.nn - b.nn%mod + rng.Uint64N(mod)
			if n := c.phoneNumber(""); phonenumbers.IsValidNumberForRegion(n, co.Region) && sameType(phonenumbers.GetNumberType(n), t.typ) {
				*t.out = append(*t.out, c)
			}
		}
	}
	if len(p.mobile) == 0 && len(p.fixed) == 0 {
		return p, fmt.Errorf("country %s: the phone library has no example numbers", co.Region)
	}
	if len(p.mobile) == 0 {
		p.mobile = p.fixed
	}
	if len(p.fixed) == 0 {
		p.fixed = p.mobile
	}
	return p, nil
}

// sameType reports whether a number of type got counts as type want.
func sameType(got, want phonenumbers.PhoneNumberType) bool {
	return got == want || got == phonenumbers.FIXED_LINE_OR_MOBILE
}

func pow10(n int) uint64 {
	v := uint64(1)
	for range n {
		v *= 10
	}
	return v
}

// phoneNumber is b as the library's type.
func (b base) phoneNumber(ext string) *phonenumbers.PhoneNumber {
	cc, nn, lz := b.cc, b.nn, b.leadingZero
	n := &phonenumbers.PhoneNumber{CountryCode: &cc, NationalNumber: &nn}
	if lz {
		n.ItalianLeadingZero = &lz
	}
	if ext != "" {
		n.Extension = &ext
	}
	return n
}

// Next returns the next row of the list.
func (g *Generator) Next() Row {
	g.n++
	ref := fmt.Sprintf("cust-%07d", g.n)
	x := g.rng.Float64()
	switch {
	case x < g.cfg.JunkRate:
		return g.junk(ref)
	case x < g.cfg.JunkRate+g.cfg.RepeatRate && len(g.seen) > 0:
		d := g.seen[g.rng.IntN(len(g.seen))]
		return g.write(d, ref, KindRepeat)
	default:
		d := g.fresh()
		g.remember(d)
		return g.write(d, ref, KindFresh)
	}
}

// country draws a country by weight.
func (g *Generator) country() *countryPlan {
	w := g.rng.IntN(g.total)
	for i := range g.countries {
		if w < g.countries[i].weight {
			return &g.countries[i]
		}
		w -= g.countries[i].weight
	}
	return &g.countries[len(g.countries)-1]
}

// fresh draws a new number: about two in three are mobiles, one in a
// hundred has an extension.
func (g *Generator) fresh() drawn {
	c := g.country()
	pool := c.fixed
	if g.rng.IntN(3) < 2 {
		pool = c.mobile
	}
	b := pool[g.rng.IntN(len(pool))]
	b.nn = b.nn - b.nn%b.suffixModulus + g.rng.Uint64N(b.suffixModulus)
	d := drawn{region: c.region, num: b}
	if g.rng.IntN(100) == 0 {
		d.ext = strconv.Itoa(10 + g.rng.IntN(990))
	}
	return d
}

// remember keeps a uniform sample of the numbers seen (reservoir sampling),
// so repeats reach back over the whole list in bounded memory.
func (g *Generator) remember(d drawn) {
	g.seenSeen++
	if len(g.seen) < seenCap {
		g.seen = append(g.seen, d)
		return
	}
	if i := g.rng.IntN(g.seenSeen); i < seenCap {
		g.seen[i] = d
	}
}

// style draws how a number is written: national 45 %, international 30 %,
// E.164 20 %, tel: URI 5 %.
func (g *Generator) style() Style {
	switch x := g.rng.IntN(100); {
	case x < 45:
		return StyleNational
	case x < 75:
		return StyleInternational
	case x < 95:
		return StyleE164
	default:
		return StyleRFC3966
	}
}

// write renders a number as a row.
func (g *Generator) write(d drawn, ref string, kind Kind) Row {
	st := g.style()
	n := d.num.phoneNumber(d.ext)
	var text string
	switch st {
	case StyleNational:
		if g.rng.IntN(4) == 0 { // digits only, as typed into a plain field
			text = digitsOnly(phonenumbers.Format(d.num.phoneNumber(""), phonenumbers.NATIONAL))
			if d.ext != "" {
				text += " x" + d.ext
			}
		} else {
			text = phonenumbers.Format(n, phonenumbers.NATIONAL)
		}
	case StyleInternational:
		text = phonenumbers.Format(n, phonenumbers.INTERNATIONAL)
	case StyleE164:
		text = phonenumbers.Format(n, phonenumbers.E164)
	default:
		text = phonenumbers.Format(n, phonenumbers.RFC3966)
	}
	if g.rng.IntN(50) == 0 { // stray whitespace from copy and paste
		text = " " + text + " "
	}
	region := d.region
	if st != StyleNational && g.rng.IntN(100) < 15 {
		region = ""
	}
	return Row{Number: text, Region: region, Ref: ref, Kind: kind, Style: st, Country: d.region}
}

// digitsOnly keeps the digits of s.
func digitsOnly(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// junkWords are cells seen in real lists where a number should be.
func junkWords() []string {
	return []string{"", "", "", "n/a", "N/A", "none", "-", "unknown", "TBD", "call reception",
		"see notes", "john.doe@example.com", "0", "123", "x"}
}

// junk returns a row that is not a valid number: a word, a placeholder, a
// truncated or overlong number, or an unknown calling code.
func (g *Generator) junk(ref string) Row {
	c := g.country()
	r := Row{Region: c.region, Ref: ref, Kind: KindJunk, Country: c.region}
	switch g.rng.IntN(6) {
	case 0, 1:
		r.Number = g.junkWords[g.rng.IntN(len(g.junkWords))]
	case 2: // truncated: only the calling code and a few digits survived
		n := g.fresh().num.phoneNumber("")
		r.Number = "+" + strconv.Itoa(int(n.GetCountryCode())) + phonenumbers.GetNationalSignificantNumber(n)[:3]
	case 3: // overlong: the digits typed twice
		n := g.fresh().num.phoneNumber("")
		r.Number = phonenumbers.Format(n, phonenumbers.INTERNATIONAL) + " " + phonenumbers.GetNationalSignificantNumber(n)
	case 4: // unknown calling code
		r.Number = fmt.Sprintf("+999 %03d %04d", g.rng.IntN(1000), g.rng.IntN(10000))
	default: // placeholder digits
		r.Number = strings.Repeat("0", 6+g.rng.IntN(5))
	}
	return r
}

// Stats counts what a list contains.
type Stats struct {
	Rows    int
	Fresh   int
	Repeats int
	Junk    int
	// Styles counts the rows of each style (junk rows under StyleNone).
	Styles map[Style]int
	// Countries counts the rows drawn for each country.
	Countries map[string]int
}

// Add counts one row.
func (s *Stats) Add(r Row) {
	if s.Styles == nil {
		s.Styles = map[Style]int{}
		s.Countries = map[string]int{}
	}
	s.Rows++
	switch r.Kind {
	case KindFresh:
		s.Fresh++
	case KindRepeat:
		s.Repeats++
	case KindJunk:
		s.Junk++
	}
	s.Styles[r.Style]++
	s.Countries[r.Country]++
}

// TopCountries returns the n countries with the most rows, most first.
func (s Stats) TopCountries(n int) []string {
	out := make([]string, 0, len(s.Countries))
	for c := range s.Countries {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b string) int {
		return cmp.Or(cmp.Compare(s.Countries[b], s.Countries[a]), cmp.Compare(a, b))
	})
	return out[:min(n, len(out))]
}
