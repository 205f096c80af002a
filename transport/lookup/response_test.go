package lookup

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sony/gobreaker"

	"github.com/phonepipe/phonepipe/domain"
)

func TestMapResponse(t *testing.T) {
	twilio := `{"calling_country_code":"1","country_code":"US","phone_number":"+14159929960","national_format":"(415) 992-9960",
		"valid":false,"validation_errors":["TOO_SHORT"],"caller_name":{"caller_name":"SMITH,JOHN","caller_type":"CONSUMER","error_code":null},
		"line_type_intelligence":{"carrier_name":"Verizon Wireless","error_code":null,"mobile_country_code":"311","mobile_network_code":"489","type":"mobile"}}`
	lk, err := mapResponse([]byte(twilio), 4096)
	if err != nil {
		t.Fatal(err)
	}
	if lk.Status != domain.LookupOK || lk.Valid == nil || *lk.Valid || len(lk.ValidationErrors) != 1 || lk.LineType != "mobile" ||
		lk.Carrier != "Verizon Wireless" || lk.MCC != "311" || lk.MNC != "489" || lk.CallerName != "SMITH,JOHN" ||
		lk.CallerType != "CONSUMER" || lk.Raw != nil {
		t.Errorf("Twilio answer mapped to %+v", lk)
	}

	// Twilio-shaped with the optional packages absent (null).
	lk, err = mapResponse([]byte(`{"phone_number":"+14159929960","valid":true,"caller_name":null,"line_type_intelligence":null}`), 4096)
	if err != nil || lk.Status != domain.LookupOK || lk.Valid == nil || !*lk.Valid || lk.LineType != "" || lk.Raw != nil {
		t.Errorf("minimal Twilio answer mapped to %+v, %v", lk, err)
	}

	for _, other := range []string{`{"foo": 1, "bar": [true]}`, `[1,2,3]`, `"text"`, `{"valid":"yes"}`} {
		lk, err := mapResponse([]byte(other), 4096)
		if err != nil || lk.Status != domain.LookupOK || len(lk.Raw) == 0 || lk.RawTruncated {
			t.Errorf("%s mapped to %+v, %v; want ok with raw", other, lk, err)
		}
	}
	lk, err = mapResponse([]byte(`{ "foo" : 1 }`), 4096)
	if err != nil || string(lk.Raw) != `{"foo":1}` {
		t.Errorf("raw kept as %s, %v; want it compacted", lk.Raw, err)
	}
	big := `{"blob":"` + strings.Repeat("x", 5000) + `"}`
	if lk, err := mapResponse([]byte(big), 4096); err != nil || lk.Raw != nil || !lk.RawTruncated || lk.Status != domain.LookupOK {
		t.Errorf("large JSON mapped to raw of %d bytes, truncated %v, %v", len(lk.Raw), lk.RawTruncated, err)
	}
	for _, bad := range []string{`<html>down</html>`, ``, `{"a":`} {
		var ir *invalidResponseError
		if _, err := mapResponse([]byte(bad), 4096); !errors.As(err, &ir) {
			t.Errorf("%q: error %v, want an invalid response", bad, err)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":     0,
		"3":    3 * time.Second,
		"-1":   0,
		"soon": 0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Minute).Format(http.TimeFormat):     0,
	} {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("Retry-After %q = %s, want %s", v, got, want)
		}
	}
}

func TestOutcomes(t *testing.T) {
	for _, tc := range []struct {
		err           error
		status        domain.LookupStatus
		reason        string
		retry, health bool
	}{
		{gobreaker.ErrOpenState, domain.LookupSkipped, domain.LookupReasonCircuitOpen, false, true},
		{gobreaker.ErrTooManyRequests, domain.LookupSkipped, domain.LookupReasonCircuitOpen, true, false},
		{&rateLimitedError{retryAfter: time.Second}, domain.LookupSkipped, domain.LookupReasonRateLimited, true, true},
		{&statusError{code: 503}, domain.LookupFailed, "http_503", true, false},
		{&statusError{code: 404}, domain.LookupFailed, "http_404", false, true},
		{&statusError{code: 302}, domain.LookupFailed, "http_302", false, true},
		{&invalidResponseError{why: "x"}, domain.LookupFailed, domain.LookupReasonInvalidResponse, false, true},
		{context.DeadlineExceeded, domain.LookupFailed, domain.LookupReasonTimeout, true, false},
		{errors.New("connection refused"), domain.LookupFailed, domain.LookupReasonUnreachable, true, false},
	} {
		lk := outcomeOf(tc.err)
		if lk.Status != tc.status || lk.Reason != tc.reason {
			t.Errorf("%v: outcome %s/%s, want %s/%s", tc.err, lk.Status, lk.Reason, tc.status, tc.reason)
		}
		if err := lk.Validate(); err != nil {
			t.Errorf("%v: %v", tc.err, err)
		}
		if got := retryable(tc.err); got != tc.retry && !errors.Is(tc.err, gobreaker.ErrOpenState) {
			t.Errorf("%v: retryable %v, want %v", tc.err, got, tc.retry)
		}
		if got := providerHealthy(tc.err); got != tc.health && !errors.Is(tc.err, gobreaker.ErrOpenState) &&
			!errors.Is(tc.err, gobreaker.ErrTooManyRequests) {
			t.Errorf("%v: provider healthy %v, want %v", tc.err, got, tc.health)
		}
	}
}

func TestConfig(t *testing.T) {
	for _, u := range []string{"", "http://x/lookup", "ftp://x/{e164}", "/relative/{e164}"} {
		if err := (Config{URL: u}).Validate(); err == nil {
			t.Errorf("URL %q accepted", u)
		}
	}
	if err := (Config{URL: "https://lookups.example/v2/PhoneNumbers/{e164}", Headers: http.Header{"Bad Name": {"x"}}}).Validate(); err == nil {
		t.Error("header name with a space accepted")
	}
	if err := (Config{URL: "https://x/{e164}", Headers: http.Header{"X-A": {"a\nb"}}}).Validate(); err == nil {
		t.Error("header value with a newline accepted")
	}
	if err := (Config{URL: "https://x/{e164}", Timeout: -time.Second}).Validate(); err == nil {
		t.Error("negative timeout accepted")
	}
	c, err := NewClient(Config{URL: "https://x/v2/PhoneNumbers/{e164}?q={e164}"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.URL("+3612345678"); got != "https://x/v2/PhoneNumbers/%2B3612345678?q=%2B3612345678" {
		t.Errorf("URL = %s", got)
	}
}
