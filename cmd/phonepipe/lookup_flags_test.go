package main

import (
	"io"
	"net/http"
	"reflect"
	"testing"
	"time"
)

func TestSplitHeaders(t *testing.T) {
	for in, want := range map[string][]string{
		"Authorization: Basic abc":                       {"Authorization: Basic abc"},
		"Authorization: Basic abc, X-Account: 42":        {"Authorization: Basic abc", "X-Account: 42"},
		"Accept: text/html, application/json":            {"Accept: text/html, application/json"},
		"A: 1\nB: 2, 3\r\nC: x":                          {"A: 1", "B: 2, 3", "C: x"},
		"X-Time: 10:30, X-Zone: UTC":                     {"X-Time: 10:30", "X-Zone: UTC"},
		"  ":                                             nil,
		"Authorization: Bearer a,b,c\n\nX-Other: thing ": {"Authorization: Bearer a,b,c", "X-Other: thing"},
	} {
		if got := splitHeaders(in); !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("splitHeaders(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLookupFlags(t *testing.T) {
	env := map[string]string{
		"PHONEPIPE_LOOKUP_URL":     "https://lookups.example/v2/PhoneNumbers/{e164}",
		"PHONEPIPE_LOOKUP_HEADER":  "Authorization: Basic abc, X-Account: 42",
		"PHONEPIPE_LOOKUP_TIMEOUT": "2s",
		"PHONEPIPE_LOOKUP_TTL":     "1h",
	}
	lookupEnv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := serveConfig([]string{"--lookup-rate", "2.5", "--lookup-concurrency", "8", "--lookup-deadline", "90s"}, io.Discard, lookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Lookup
	want := http.Header{"Authorization": {"Basic abc"}, "X-Account": {"42"}}
	if c.URL != env["PHONEPIPE_LOOKUP_URL"] || !reflect.DeepEqual(c.Headers, want) || c.Timeout != 2*time.Second ||
		c.TTL != time.Hour || c.Rate != 2.5 || c.Concurrency != 8 || c.Deadline != 90*time.Second {
		t.Errorf("lookup config from flags and environment: %+v", c)
	}

	// Flags win over the environment, and --lookup-header repeats.
	cfg, err = serveConfig([]string{"--lookup-header", "X-A: 1", "--lookup-header", "X-B: 2, 3"}, io.Discard, lookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	if want := (http.Header{"X-A": {"1"}, "X-B": {"2, 3"}}); !reflect.DeepEqual(cfg.Lookup.Headers, want) {
		t.Errorf("headers %v, want %v", cfg.Lookup.Headers, want)
	}

	// Defaults, and the stage off without a URL.
	cfg, err = serveConfig(nil, io.Discard, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.Lookup; c.Enabled() || c.Timeout != 5*time.Second || c.Deadline != 10*time.Minute || c.TTL != 24*time.Hour ||
		c.Rate != defaultLookupRate || c.Concurrency != 4 {
		t.Errorf("defaults %+v", c)
	}

	for _, bad := range [][]string{{"--lookup-header", "no colon"}, {"--lookup-header", "Bad Name: x"}} {
		if _, err := serveConfig(bad, io.Discard, func(string) (string, bool) { return "", false }); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
