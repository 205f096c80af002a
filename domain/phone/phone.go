// Package phone holds the phone-number processing rules of phonepipe.
//
// Every rule (parsing, validation, formatting, number type, carrier,
// geocoding and time zones) is delegated to github.com/nyaruka/phonenumbers,
// the Go port of Google's libphonenumber; this package only decides how the
// library's answers are mapped onto the product's [Result] and reason codes.
//
// The package is pure: it performs no I/O and keeps no package-level mutable
// state. All functions are safe for concurrent use by multiple goroutines.
// The library loads and decompresses its carrier, geocoding and time-zone
// data lazily on first use, guarding that with its own mutex and sync.Once;
// call [Warm] at start-up to pay that one-time cost before serving traffic.
package phone

import (
	"errors"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Reason codes reported in [Result.Reason] when a number is not valid.
const (
	// ReasonNotANumber means the input could not be parsed as a phone number
	// at all (empty input, garbage, no digits, ...).
	ReasonNotANumber = "NOT_A_NUMBER"
	// ReasonInvalidCountryCode means the country calling code is unknown, or
	// the input is in national form and no usable region was given.
	ReasonInvalidCountryCode = "INVALID_COUNTRY_CODE"
	// ReasonTooShort means the number has too few digits for its country.
	ReasonTooShort = "TOO_SHORT"
	// ReasonTooLong means the number has too many digits for its country
	// (or the input exceeds the library's maximum input length).
	ReasonTooLong = "TOO_LONG"
	// ReasonInvalidLength means the number's length lies between the
	// shortest and longest lengths of its country but matches none of them.
	ReasonInvalidLength = "INVALID_LENGTH"
	// ReasonInvalidButPossible means the number has a possible length for its
	// country but does not match any of the country's number ranges.
	ReasonInvalidButPossible = "INVALID_BUT_POSSIBLE"
	// ReasonProcessingFailed means the library failed in an unexpected way
	// (an unrecognised error or a recovered panic) while processing the input.
	ReasonProcessingFailed = "PROCESSING_FAILED"
)

// Number type strings reported in [Result.Type].
const (
	// TypeFixedLine is a fixed-line (landline) number.
	TypeFixedLine = "FIXED_LINE"
	// TypeMobile is a mobile number.
	TypeMobile = "MOBILE"
	// TypeFixedLineOrMobile is used where fixed-line and mobile numbers
	// cannot be told apart (e.g. the US).
	TypeFixedLineOrMobile = "FIXED_LINE_OR_MOBILE"
	// TypeTollFree is a toll-free number.
	TypeTollFree = "TOLL_FREE"
	// TypePremiumRate is a premium-rate number.
	TypePremiumRate = "PREMIUM_RATE"
	// TypeSharedCost is a shared-cost number.
	TypeSharedCost = "SHARED_COST"
	// TypeVoIP is a voice-over-IP number.
	TypeVoIP = "VOIP"
	// TypePersonalNumber is a personal number.
	TypePersonalNumber = "PERSONAL_NUMBER"
	// TypePager is a pager number.
	TypePager = "PAGER"
	// TypeUAN is a universal access (company) number.
	TypeUAN = "UAN"
	// TypeVoicemail is a voicemail access number.
	TypeVoicemail = "VOICEMAIL"
	// TypeUnknown is reported when the number matches no known type; this is
	// always the case for numbers that are not valid.
	TypeUnknown = "UNKNOWN"
)

// enrichmentLanguage is the language of carrier names and locations.
const enrichmentLanguage = "en"

// Result is the enrichment of one input.
//
// When the input could not be parsed only Valid (false) and Reason are set.
// When it parsed, the formats, CountryCode, RegionCode and Type are filled
// whether or not the number is valid, and Carrier, Location and Timezones
// are filled whenever the library has data for the number.
type Result struct {
	// Valid is true iff phonenumbers.IsValidNumber is true.
	Valid bool `json:"valid"`
	// Reason is one of the Reason* constants; it is set iff !Valid.
	Reason string `json:"reason,omitempty"`
	// E164 is the number in E.164 format, e.g. "+16502530000".
	E164 string `json:"e164,omitempty"`
	// International is the number in international format, including any
	// extension, e.g. "+1 650-253-0000 ext. 123".
	International string `json:"international,omitempty"`
	// National is the number in the national format of its country,
	// including any extension, e.g. "(650) 253-0000 ext. 123".
	National string `json:"national,omitempty"`
	// Extension is the extension parsed from the input, if any.
	Extension string `json:"extension,omitempty"`
	// CountryCode is the country calling code, e.g. 1 or 36.
	CountryCode int `json:"country_code,omitempty"`
	// RegionCode is the ISO 3166-1 alpha-2 region of the number, "001" for
	// non-geographical numbers, or empty if the library cannot tell.
	RegionCode string `json:"region_code,omitempty"`
	// Type is one of the Type* constants.
	Type string `json:"type,omitempty"`
	// Carrier is the English name of the original carrier of the number
	// range, if known. Number portability makes this a best guess.
	Carrier string `json:"carrier,omitempty"`
	// Location is the English geocoder description (city, area or country),
	// or empty if unknown.
	Location string `json:"location,omitempty"`
	// Timezones are the IANA time zones of the number, omitted if unknown.
	Timezones []string `json:"timezones,omitempty"`
}

// Enrich parses input, interpreting numbers written in national form as
// belonging to region (an ISO 3166-1 alpha-2 code; it is trimmed and
// upper-cased, and may be empty when input is in international form), and
// returns everything the library knows about it.
//
// Accepted inputs include national ("06 1 234 5678"), international
// ("+36 1 234 5678", "00 36 1 234 5678" with a region), E.164
// ("+3612345678") and RFC 3966 ("tel:+36-1-234-5678") forms, with optional
// extensions ("+1 650-253-0000 ext. 123", ";ext=123").
//
// Enrich never panics: a panic inside the library is reported as
// [ReasonProcessingFailed].
func Enrich(input, region string) (res Result) {
	defer recoverProcessingFailed(&res)
	return enrich(input, region)
}

func enrich(input, region string) Result {
	num, err := phonenumbers.Parse(input, cleanRegion(region))
	if err != nil {
		return Result{Reason: reasonForParseError(err)}
	}

	res := Result{
		Valid:         phonenumbers.IsValidNumber(num),
		E164:          phonenumbers.Format(num, phonenumbers.E164),
		International: phonenumbers.Format(num, phonenumbers.INTERNATIONAL),
		National:      phonenumbers.Format(num, phonenumbers.NATIONAL),
		Extension:     num.GetExtension(),
		CountryCode:   int(num.GetCountryCode()),
		RegionCode:    phonenumbers.GetRegionCodeForNumber(num),
		Type:          typeString(phonenumbers.GetNumberType(num)),
	}
	if !res.Valid {
		res.Reason = reasonForPossibility(phonenumbers.IsPossibleNumberWithReason(num))
	}

	// Lookup errors only mean "no data" here (e.g. the geocoder's locale
	// fallback fails for numbers without a region), so they leave the field
	// empty instead of failing the enrichment.
	if carrier, err := phonenumbers.GetCarrierForNumber(num, enrichmentLanguage); err == nil {
		res.Carrier = carrier
	}
	if location, err := phonenumbers.GetGeocodingForNumber(num, enrichmentLanguage); err == nil {
		res.Location = location
	}
	if tzs, err := phonenumbers.GetTimezonesForNumber(num); err == nil {
		res.Timezones = knownTimezones(tzs)
	}
	return res
}

// recoverProcessingFailed turns a panic of the surrounding function into a
// PROCESSING_FAILED result. It must be deferred directly.
func recoverProcessingFailed(res *Result) {
	if r := recover(); r != nil {
		*res = Result{Reason: ReasonProcessingFailed}
	}
}

// reasonForParseError maps an error returned by phonenumbers.Parse to a
// reason code.
func reasonForParseError(err error) string {
	switch {
	case errors.Is(err, phonenumbers.ErrNotANumber):
		return ReasonNotANumber
	case errors.Is(err, phonenumbers.ErrInvalidCountryCode):
		return ReasonInvalidCountryCode
	case errors.Is(err, phonenumbers.ErrTooShortNSN),
		errors.Is(err, phonenumbers.ErrTooShortAfterIDD):
		return ReasonTooShort
	case errors.Is(err, phonenumbers.ErrNumTooLong):
		return ReasonTooLong
	default:
		return ReasonProcessingFailed
	}
}

// reasonForPossibility maps the result of
// phonenumbers.IsPossibleNumberWithReason for a number that is not valid to a
// reason code.
func reasonForPossibility(v phonenumbers.ValidationResult) string {
	switch v {
	case phonenumbers.IS_POSSIBLE, phonenumbers.IS_POSSIBLE_LOCAL_ONLY:
		return ReasonInvalidButPossible
	case phonenumbers.INVALID_COUNTRY_CODE:
		return ReasonInvalidCountryCode
	case phonenumbers.TOO_SHORT:
		return ReasonTooShort
	case phonenumbers.TOO_LONG:
		return ReasonTooLong
	case phonenumbers.INVALID_LENGTH:
		return ReasonInvalidLength
	default:
		return ReasonProcessingFailed
	}
}

// typeString maps a phonenumbers number type to its Type* constant.
func typeString(t phonenumbers.PhoneNumberType) string {
	switch t {
	case phonenumbers.FIXED_LINE:
		return TypeFixedLine
	case phonenumbers.MOBILE:
		return TypeMobile
	case phonenumbers.FIXED_LINE_OR_MOBILE:
		return TypeFixedLineOrMobile
	case phonenumbers.TOLL_FREE:
		return TypeTollFree
	case phonenumbers.PREMIUM_RATE:
		return TypePremiumRate
	case phonenumbers.SHARED_COST:
		return TypeSharedCost
	case phonenumbers.VOIP:
		return TypeVoIP
	case phonenumbers.PERSONAL_NUMBER:
		return TypePersonalNumber
	case phonenumbers.PAGER:
		return TypePager
	case phonenumbers.UAN:
		return TypeUAN
	case phonenumbers.VOICEMAIL:
		return TypeVoicemail
	default:
		return TypeUnknown
	}
}

// knownTimezones returns a fresh copy of tzs without the library's
// "Etc/Unknown" marker, or nil if nothing is left. Copying matters: the
// library hands out slices of its shared lookup table.
func knownTimezones(tzs []string) []string {
	var out []string
	for _, tz := range tzs {
		if tz != phonenumbers.UNKNOWN_TIMEZONE && tz != "" {
			out = append(out, tz)
		}
	}
	return out
}

// cleanRegion trims and upper-cases a region code.
func cleanRegion(s string) string {
	return strings.ToUpper(strings.TrimSpace(s))
}

// NormalizeRegion trims and upper-cases s and reports whether the result is
// a region the library supports. "ZZ" (unknown region), "001"
// (non-geographical) and "" are not supported. On failure it returns "".
func NormalizeRegion(s string) (string, bool) {
	r := cleanRegion(s)
	if !phonenumbers.GetSupportedRegions()[r] {
		return "", false
	}
	return r, true
}

// Warm forces the library to load and decompress its lazily loaded English
// carrier and geocoding data and its time-zone data, so that the first call
// to [Enrich] is not slow. Calling it is optional (Enrich is safe for
// concurrent use without it) and calling it more than once is cheap.
func Warm() {
	num := phonenumbers.GetExampleNumberForType("US", phonenumbers.FIXED_LINE)
	if num == nil {
		return
	}
	_, _ = phonenumbers.GetCarrierForNumber(num, enrichmentLanguage)
	_, _ = phonenumbers.GetGeocodingForNumber(num, enrichmentLanguage)
	_, _ = phonenumbers.GetTimezonesForNumber(num)
}
