package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
	"github.com/phonepipe/phonepipe/internal/lookuptest"
)

// lookupField is the `lookup` field of a result row.
type lookupField struct {
	Status       string          `json:"status"`
	Reason       string          `json:"reason"`
	Cached       bool            `json:"cached"`
	Valid        *bool           `json:"valid"`
	LineType     string          `json:"line_type"`
	Carrier      string          `json:"carrier"`
	MCC          string          `json:"mcc"`
	MNC          string          `json:"mnc"`
	CallerName   string          `json:"caller_name"`
	CallerType   string          `json:"caller_type"`
	Raw          json.RawMessage `json:"raw"`
	RawTruncated bool            `json:"raw_truncated"`
	Attempts     int             `json:"attempts"`
}

// lookupRow is a result row with its lookup.
type lookupRow struct {
	Row         int          `json:"row"`
	Valid       bool         `json:"valid"`
	E164        string       `json:"e164"`
	DuplicateOf int          `json:"duplicate_of"`
	Lookup      *lookupField `json:"lookup"`
}

// lookupConfig is an app configuration with the lookup stage on against
// p, with short bounds for tests; base may carry a backend.
func lookupConfig(base app.Config, p *lookuptest.Provider, mod func(*app.LookupConfig)) app.Config {
	base.Lookup = app.LookupConfig{
		URL:             p.URL(),
		Headers:         http.Header{"Authorization": {"Basic dGVzdDp0ZXN0"}},
		Timeout:         2 * time.Second,
		Concurrency:     4,
		Deadline:        time.Minute,
		MaxRetries:      2,
		RetryInitial:    20 * time.Millisecond,
		BreakerFailures: 5,
		BreakerCooldown: 500 * time.Millisecond,
		PollInterval:    20 * time.Millisecond,
	}
	if mod != nil {
		mod(&base.Lookup)
	}
	if base.PollInterval == 0 {
		base.PollInterval = 20 * time.Millisecond
	}
	return base
}

// lookupResults reads an import's results with their lookups.
func lookupResults(t *testing.T, base, id string) []lookupRow {
	t.Helper()
	return resultRows[lookupRow](t, base, id)
}

// hungarianMobiles returns n distinct valid Hungarian mobile numbers
// (+36 30 …) starting at seq, in E.164.
func hungarianMobiles(seq, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("+3630%07d", seq+i)
	}
	return out
}

// numbersCSV is a CSV upload of the given inputs.
func numbersCSV(inputs ...string) []byte {
	var b strings.Builder
	b.WriteString("number\n")
	for _, in := range inputs {
		b.WriteString(in + "\n")
	}
	return []byte(b.String())
}

// acceptImport uploads body (with query, e.g. "?lookup=false") and
// returns the import id.
func acceptImport(t *testing.T, base, query string, body []byte) string {
	t.Helper()
	resp, b := post(t, base+"/v1/imports"+query, "text/csv", body, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/imports%s: %d %s", query, resp.StatusCode, b)
	}
	var acc struct{ ID string }
	if err := json.Unmarshal(b, &acc); err != nil || acc.ID == "" {
		t.Fatalf("bad accept body %s: %v", b, err)
	}
	return acc.ID
}

// hookCounter is a webhook endpoint that counts import.completed per import.
type hookCounter struct {
	mu  sync.Mutex
	got map[string]int
}

func (h *hookCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Type string `json:"type"`
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	h.mu.Lock()
	if h.got == nil {
		h.got = map[string]int{}
	}
	h.got[body.Type+" "+body.Data.ID]++
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookCounter) count(key string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.got[key]
}
