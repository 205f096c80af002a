package phone

import (
	"fmt"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// sentinelError is an error type whose values can be constants.
type sentinelError string

// Error implements the error interface.
func (e sentinelError) Error() string { return string(e) }

// ErrNotE164 is wrapped by every error returned from [ParseE164]; test for it
// with errors.Is. When the library rejected the number, its own error
// (e.g. phonenumbers.ErrInvalidCountryCode) is wrapped as well.
const ErrNotE164 = sentinelError("phone: not an E.164 number")

// ParseE164 parses s, the {e164} path parameter, and returns the number in
// canonical E.164 form ("+3612345678").
//
// s must already be URL-decoded ("%2B36..." is the caller's job) and, after
// trimming surrounding white space, must start with "+" followed by the
// country calling code; national numbers and "3612345678" without the plus
// are rejected, as are numbers with an extension, which E.164 cannot
// express. Punctuation the library understands is tolerated, so
// "+36 1 234-5678" also yields "+3612345678". The number only has to parse,
// not be valid: use [Enrich] on the result to learn whether it is valid.
func ParseE164(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "+") {
		return "", fmt.Errorf("%w: %q does not start with '+'", ErrNotE164, s)
	}
	num, err := phonenumbers.Parse(s, "")
	if err != nil {
		return "", fmt.Errorf("%w: %q: %w", ErrNotE164, s, err)
	}
	if num.GetExtension() != "" {
		return "", fmt.Errorf("%w: %q has an extension", ErrNotE164, s)
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}
