package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
)

// sample is one line of a generated upload.
type sample struct {
	number, region, ref string
}

// mixedRows generates n rows: several countries in national, international
// and E.164 forms, extensions, junk, and repeats of earlier rows.
func mixedRows(n int, seed uint64) []sample {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	national := []struct{ region, number string }{
		{"HU", "06 30 123 4567"}, {"HU", "(1) 234 5678"}, {"US", "(650) 253-0000"}, {"US", "212 555 0123"},
		{"GB", "020 7946 0958"}, {"GB", "07700 900123"}, {"DE", "030 123456"}, {"DE", "0151 23456789"},
		{"FR", "01 23 45 67 89"}, {"FR", "06 12 34 56 78"}, {"IN", "98765 43210"}, {"BR", "(11) 91234-5678"},
		{"JP", "03-1234-5678"}, {"AU", "0412 345 678"}, {"NG", "0803 123 4567"},
	}
	international := []string{"+36 30 123 4567", "+1 650-253-0000", "+44 20 7946 0958", "+49 30 123456",
		"+33 6 12 34 56 78", "+91 98765 43210", "+55 11 91234-5678", "+81 3-1234-5678", "+61 412 345 678",
		"tel:+1-212-555-0123", "+1 650-253-0000 ext. 123", "+36 1 234 5678 x 42", "+3612345678", "+4915123456789"}
	junk := []string{"hello", "", "++--", "12", "+999 123 456", "0000000000000000000000", "call me", "+1 555"}
	out := make([]sample, 0, n)
	for i := 0; i < n; i++ {
		ref := fmt.Sprintf("crm-%d", i+1)
		switch k := r.IntN(100); {
		case k < 40:
			s := national[r.IntN(len(national))]
			// Vary the digits so numbers differ, keeping the shape.
			out = append(out, sample{number: jitter(s.number, r), region: s.region, ref: ref})
		case k < 75:
			out = append(out, sample{number: jitter(international[r.IntN(len(international))], r), ref: ref})
		case k < 85:
			out = append(out, sample{number: junk[r.IntN(len(junk))], ref: ref})
		default:
			if len(out) == 0 {
				out = append(out, sample{number: international[0], ref: ref})
				continue
			}
			prev := out[r.IntN(len(out))]
			prev.ref = ref
			out = append(out, prev)
		}
	}
	return out
}

// jitter replaces the last two digits with random ones.
func jitter(s string, r *rand.Rand) string {
	b := []byte(s)
	changed := 0
	for i := len(b) - 1; i >= 0 && changed < 2; i-- {
		if b[i] >= '0' && b[i] <= '9' {
			b[i] = byte('0' + r.IntN(10))
			changed++
		}
	}
	return string(b)
}

func csvOf(rows []sample) []byte {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"phone", "region", "ref"})
	for _, s := range rows {
		_ = w.Write([]string{s.number, s.region, s.ref})
	}
	w.Flush()
	return buf.Bytes()
}

// startApp runs an in-process phonepipe on a fresh data dir.
func startApp(t *testing.T, cfg app.Config) *app.App {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.Addr = "127.0.0.1:0"
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("start app: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("app stopped with error: %v", err)
		}
	})
	return a
}

type importSummary struct {
	ID          string     `json:"id"`
	Status      string     `json:"status"`
	Total       int        `json:"total"`
	Processed   int        `json:"processed"`
	Valid       int        `json:"valid"`
	Invalid     int        `json:"invalid"`
	Duplicates  int        `json:"duplicates"`
	Failed      int        `json:"failed"`
	CreatedAt   time.Time  `json:"created_at"`
	CompletedAt *time.Time `json:"completed_at"`
}

type resultRow struct {
	Row         int      `json:"row"`
	Input       string   `json:"input"`
	Ref         string   `json:"ref"`
	Region      string   `json:"region"`
	Valid       bool     `json:"valid"`
	Reason      string   `json:"reason"`
	E164        string   `json:"e164"`
	Type        string   `json:"type"`
	CountryCode int      `json:"country_code"`
	RegionCode  string   `json:"region_code"`
	Timezones   []string `json:"timezones"`
	DuplicateOf int      `json:"duplicate_of"`
}

func post(t *testing.T, url, contentType string, body []byte, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if v != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("decode %s: %v", url, err)
		}
	}
	return resp.StatusCode
}

// waitCompleted polls an import until it completes, checking on the way that
// processed never decreases and equals total exactly at completion.
func waitCompleted(t *testing.T, base, id string, timeout time.Duration) importSummary {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := -1
	for {
		var s importSummary
		if code := getJSON(t, base+"/v1/imports/"+id, &s); code != http.StatusOK {
			t.Fatalf("GET import %s: %d", id, code)
		}
		if s.Processed < last {
			t.Fatalf("processed went down from %d to %d", last, s.Processed)
		}
		last = s.Processed
		if (s.Status == "completed") != (s.Processed == s.Total) {
			t.Fatalf("status %s with %d/%d processed", s.Status, s.Processed, s.Total)
		}
		if s.Status == "completed" {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("import %s not completed after %s: %+v", id, timeout, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func results(t *testing.T, base, id string) []resultRow {
	t.Helper()
	return resultRows[resultRow](t, base, id)
}

// resultRows reads an import's NDJSON results into rows of type R.
func resultRows[R any](t *testing.T, base, id string) []R {
	t.Helper()
	resp, err := http.Get(base + "/v1/imports/" + id + "/results")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []R
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r R
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("decode result line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func mustAccept(t *testing.T, base string, body []byte) string {
	t.Helper()
	resp, b := post(t, base+"/v1/imports", "text/csv", body, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/imports: %d %s", resp.StatusCode, b)
	}
	var acc struct{ ID string }
	if err := json.Unmarshal(b, &acc); err != nil || acc.ID == "" {
		t.Fatalf("bad accept body %s: %v", b, err)
	}
	if !strings.HasSuffix(resp.Header.Get("Location"), acc.ID) {
		t.Fatalf("Location %q does not name %s", resp.Header.Get("Location"), acc.ID)
	}
	return acc.ID
}
