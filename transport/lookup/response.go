package lookup

import (
	"bytes"
	"encoding/json"

	"github.com/phonepipe/phonepipe/domain"
)

// twilioLookup is the part of a Twilio Lookup v2 response the stage keeps.
type twilioLookup struct {
	Valid            *bool    `json:"valid"`
	ValidationErrors []string `json:"validation_errors"`
	LineType         *struct {
		Type              string `json:"type"`
		CarrierName       string `json:"carrier_name"`
		MobileCountryCode string `json:"mobile_country_code"`
		MobileNetworkCode string `json:"mobile_network_code"`
	} `json:"line_type_intelligence"`
	CallerName *struct {
		CallerName string `json:"caller_name"`
		CallerType string `json:"caller_type"`
	} `json:"caller_name"`
}

// twilioKeys are the top-level fields that mark a Twilio-shaped answer.
var twilioKeys = []string{"valid", "line_type_intelligence", "caller_name", "phone_number"}

// mapResponse maps a successful response body: a Twilio Lookup v2 answer
// to the lookup's fields; any other JSON kept as raw (up to maxRaw bytes,
// else only marked raw_truncated); anything that is not JSON fails.
func mapResponse(body []byte, maxRaw int) (domain.Lookup, error) {
	body = bytes.TrimSpace(body)
	if !json.Valid(body) {
		return domain.Lookup{}, &invalidResponseError{why: "not JSON"}
	}
	if lk, ok := mapTwilio(body); ok {
		return lk, nil
	}
	lk := domain.Lookup{Status: domain.LookupOK}
	var compact bytes.Buffer
	if err := json.Compact(&compact, body); err != nil {
		return domain.Lookup{}, &invalidResponseError{why: err.Error()}
	}
	if compact.Len() <= maxRaw {
		lk.Raw = compact.Bytes()
	} else {
		lk.RawTruncated = true
	}
	return lk, nil
}

// mapTwilio maps body when it is a Twilio-shaped object.
func mapTwilio(body []byte) (domain.Lookup, bool) {
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return domain.Lookup{}, false
	}
	shaped := false
	for _, k := range twilioKeys {
		if _, ok := fields[k]; ok {
			shaped = true
		}
	}
	var t twilioLookup
	if !shaped || json.Unmarshal(body, &t) != nil {
		return domain.Lookup{}, false
	}
	lk := domain.Lookup{Status: domain.LookupOK, Valid: t.Valid}
	if len(t.ValidationErrors) > 0 {
		lk.ValidationErrors = t.ValidationErrors
	}
	if t.LineType != nil {
		lk.LineType, lk.Carrier = t.LineType.Type, t.LineType.CarrierName
		lk.MCC, lk.MNC = t.LineType.MobileCountryCode, t.LineType.MobileNetworkCode
	}
	if t.CallerName != nil {
		lk.CallerName, lk.CallerType = t.CallerName.CallerName, t.CallerName.CallerType
	}
	return lk, true
}
