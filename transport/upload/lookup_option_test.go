package upload

import (
	"strings"
	"testing"
)

func TestLookupOption(t *testing.T) {
	for query, off := range map[string]bool{
		"": false, "lookup=false": true, "lookup=0": true, "lookup=No": true, "lookup=off": true,
		"lookup=true": false, "lookup=": false, "lookup=maybe": false, "default_region=HU&lookup=false": true,
	} {
		for _, ct := range []string{"text/csv", "application/json"} {
			body := "number\n+36301234567\n"
			if ct == "application/json" {
				body = `{"numbers":["+36301234567"]}`
			}
			u, _, err := decodeRows(t, newRequest(ct, query, strings.NewReader(body)), Limits{})
			if err != nil {
				t.Fatalf("%s ?%s: %v", ct, query, err)
			}
			if u.Options.NoLookup != off {
				t.Errorf("%s ?%s: NoLookup %v, want %v", ct, query, u.Options.NoLookup, off)
			}
		}
	}
}
