package phone

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

func TestReasonForParseError(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{phonenumbers.ErrNotANumber, ReasonNotANumber},
		{phonenumbers.ErrInvalidCountryCode, ReasonInvalidCountryCode},
		{phonenumbers.ErrTooShortNSN, ReasonTooShort},
		{phonenumbers.ErrTooShortAfterIDD, ReasonTooShort},
		{phonenumbers.ErrNumTooLong, ReasonTooLong},
		{fmt.Errorf("wrapped: %w", phonenumbers.ErrNumTooLong), ReasonTooLong},
		{errors.New("something unexpected"), ReasonProcessingFailed},
	}
	for _, tt := range tests {
		if got := reasonForParseError(tt.err); got != tt.want {
			t.Errorf("reasonForParseError(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestReasonForPossibility(t *testing.T) {
	tests := []struct {
		v    phonenumbers.ValidationResult
		want string
	}{
		{phonenumbers.IS_POSSIBLE, ReasonInvalidButPossible},
		{phonenumbers.IS_POSSIBLE_LOCAL_ONLY, ReasonInvalidButPossible},
		{phonenumbers.INVALID_COUNTRY_CODE, ReasonInvalidCountryCode},
		{phonenumbers.TOO_SHORT, ReasonTooShort},
		{phonenumbers.TOO_LONG, ReasonTooLong},
		{phonenumbers.INVALID_LENGTH, ReasonInvalidLength},
		{phonenumbers.ValidationResult(99), ReasonProcessingFailed},
	}
	for _, tt := range tests {
		if got := reasonForPossibility(tt.v); got != tt.want {
			t.Errorf("reasonForPossibility(%d) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestTypeString(t *testing.T) {
	tests := []struct {
		t    phonenumbers.PhoneNumberType
		want string
	}{
		{phonenumbers.FIXED_LINE, "FIXED_LINE"},
		{phonenumbers.MOBILE, "MOBILE"},
		{phonenumbers.FIXED_LINE_OR_MOBILE, "FIXED_LINE_OR_MOBILE"},
		{phonenumbers.TOLL_FREE, "TOLL_FREE"},
		{phonenumbers.PREMIUM_RATE, "PREMIUM_RATE"},
		{phonenumbers.SHARED_COST, "SHARED_COST"},
		{phonenumbers.VOIP, "VOIP"},
		{phonenumbers.PERSONAL_NUMBER, "PERSONAL_NUMBER"},
		{phonenumbers.PAGER, "PAGER"},
		{phonenumbers.UAN, "UAN"},
		{phonenumbers.VOICEMAIL, "VOICEMAIL"},
		{phonenumbers.UNKNOWN, "UNKNOWN"},
		{phonenumbers.PhoneNumberType(99), "UNKNOWN"},
	}
	for _, tt := range tests {
		if got := typeString(tt.t); got != tt.want {
			t.Errorf("typeString(%d) = %q, want %q", tt.t, got, tt.want)
		}
	}
}

func TestRecoverProcessingFailed(t *testing.T) {
	got := func() (res Result) {
		defer recoverProcessingFailed(&res)
		res.E164 = "+1"
		panic("library bug")
	}()
	if want := (Result{Reason: ReasonProcessingFailed}); got.Valid || got.Reason != want.Reason || got.E164 != "" {
		t.Errorf("after panic got %+v, want %+v", got, want)
	}
}

func TestKnownTimezones(t *testing.T) {
	if got := knownTimezones([]string{phonenumbers.UNKNOWN_TIMEZONE}); got != nil {
		t.Errorf("knownTimezones(unknown) = %v, want nil", got)
	}
	if got := knownTimezones(nil); got != nil {
		t.Errorf("knownTimezones(nil) = %v, want nil", got)
	}
	in := []string{"Europe/Budapest", phonenumbers.UNKNOWN_TIMEZONE, "Europe/Vienna"}
	got := knownTimezones(in)
	if len(got) != 2 || got[0] != "Europe/Budapest" || got[1] != "Europe/Vienna" {
		t.Fatalf("knownTimezones(%v) = %v", in, got)
	}
	got[0] = "mutated"
	if in[0] != "Europe/Budapest" {
		t.Error("knownTimezones aliases its input")
	}
}
