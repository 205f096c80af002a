package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
	"github.com/phonepipe/phonepipe/internal/lookuptest"
)

// TestLookupResultsEndToEnd: with the stage on, valid rows wait for their
// numbers' lookups (processed < total until then), and once the import
// completes every valid row carries the provider's answer, mapped; each
// number was asked about once; the lookups are events of the number
// streams, whose versions stay gapless.
func TestLookupResultsEndToEnd(t *testing.T) {
	forEachBackend(t, func(t *testing.T, base app.Config) {
		p := lookuptest.Start(t)
		p.Hold() // released once the waiting state was seen
		// A held call must not time out and be asked again (each number is
		// asked once, below).
		a := startApp(t, lookupConfig(base, p, func(l *app.LookupConfig) { l.Timeout = time.Minute }))
		nums := hungarianMobiles(1000, 3)
		id := acceptImport(t, a.URL(), "", numbersCSV(nums[0], "hello", nums[1], nums[0], nums[2], "+1 555"))

		sawWaiting := false
		deadline := time.Now().Add(30 * time.Second)
		for {
			var s importSummary
			if code := getJSON(t, a.URL()+"/v1/imports/"+id, &s); code != http.StatusOK {
				t.Fatalf("GET import: %d", code)
			}
			if (s.Status == "completed") != (s.Processed == s.Total) {
				t.Fatalf("status %s with %d/%d processed", s.Status, s.Processed, s.Total)
			}
			if s.Status == "processing" && s.Processed == 2 && s.Invalid == 2 && s.Valid == 0 {
				sawWaiting = true // the invalid rows are done, the valid ones wait for lookups
				p.Release()
			}
			if s.Status == "completed" {
				if s.Processed != 6 || s.Valid != 4 || s.Invalid != 2 || s.Duplicates != 1 || s.Failed != 0 {
					t.Fatalf("completed with %+v, want 6 processed: 4 valid (1 repeat), 2 invalid", s)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("import not completed: %+v", s)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if !sawWaiting {
			t.Error("never saw the import processing with only its invalid rows processed while lookups were pending")
		}

		for _, r := range lookupResults(t, a.URL(), id) {
			if !r.Valid {
				if r.Lookup != nil {
					t.Errorf("row %d is invalid but has a lookup %+v", r.Row, *r.Lookup)
				}
				continue
			}
			lk := r.Lookup
			if lk == nil {
				t.Fatalf("valid row %d has no lookup", r.Row)
			}
			if lk.Status != "ok" || lk.Valid == nil || !*lk.Valid || lk.LineType != "mobile" || lk.Carrier != "Test Mobile" ||
				lk.MCC != "216" || lk.MNC != "30" || lk.CallerName != "TEST CALLER" || lk.CallerType != "CONSUMER" ||
				lk.Cached || lk.Raw != nil {
				t.Errorf("row %d lookup %+v, want the provider's answer mapped", r.Row, *lk)
			}
		}
		counts := p.Counts()
		for _, n := range nums {
			if counts[n] != 1 {
				t.Errorf("provider asked about %s %d times, want 1", n, counts[n])
			}
		}
		if len(counts) != len(nums) {
			t.Errorf("provider asked about %v, want only the valid numbers %v", counts, nums)
		}
		for _, r := range p.Requests() {
			if r.Header.Get("Authorization") != "Basic dGVzdDp0ZXN0" {
				t.Errorf("request for %s without the configured header: %v", r.E164, r.Header)
			}
		}

		var events struct {
			Events []struct {
				Type    string `json:"type"`
				Version int64  `json:"version"`
			} `json:"events"`
		}
		if code := getJSON(t, a.URL()+"/v1/numbers/"+url.PathEscape(nums[0])+"/events", &events); code != http.StatusOK {
			t.Fatalf("GET events of %s: %d", nums[0], code)
		}
		types := map[string]int{}
		for i, ev := range events.Events {
			if ev.Version != int64(i+1) {
				t.Fatalf("event %d of %s has version %d: %+v", i, nums[0], ev.Version, events.Events)
			}
			types[ev.Type]++
		}
		if types["number.validated.v1"] != 2 || types["number.lookup_succeeded.v1"] != 1 {
			t.Errorf("events of %s: %+v, want 2 validated and 1 lookup_succeeded", nums[0], events.Events)
		}
		var number struct {
			Version    int64
			LastLookup *lookupField `json:"last_lookup"`
		}
		if code := getJSON(t, a.URL()+"/v1/numbers/"+url.PathEscape(nums[0]), &number); code != http.StatusOK ||
			number.Version != int64(len(events.Events)) {
			t.Errorf("number %s at version %d (%d), want %d", nums[0], number.Version, code, len(events.Events))
		}
		if lk := number.LastLookup; lk == nil || lk.Status != "ok" || lk.Carrier != "Test Mobile" {
			t.Errorf("number %s: last_lookup %+v, want the provider's answer", nums[0], lk)
		}
	})
}

// TestLookupOncePerNumberWithinTTL: a number is looked up once within the
// TTL, whether it repeats within an import or across imports; later rows
// get the stored answer marked cached.
func TestLookupOncePerNumberWithinTTL(t *testing.T) {
	forEachBackend(t, testLookupOncePerNumberWithinTTL)
}

func testLookupOncePerNumberWithinTTL(t *testing.T, base app.Config) {
	p := lookuptest.Start(t)
	a := startApp(t, lookupConfig(base, p, nil))
	nums := hungarianMobiles(2000, 4)
	first := acceptImport(t, a.URL(), "", numbersCSV(nums[0], nums[1], nums[0], nums[2], nums[0]))
	waitCompleted(t, a.URL(), first, 30*time.Second)
	second := acceptImport(t, a.URL(), "", numbersCSV(nums[1], nums[2], nums[3], nums[3], nums[1]))
	s := waitCompleted(t, a.URL(), second, 30*time.Second)
	if s.Valid != 5 || s.Duplicates != 2 {
		t.Errorf("second import %+v, want 5 valid with 2 repeats", s)
	}
	counts := p.Counts()
	for _, n := range nums {
		if counts[n] != 1 {
			t.Errorf("provider asked about %s %d times, want 1 (requests %v)", n, counts[n], counts)
		}
	}
	for _, r := range lookupResults(t, a.URL(), first) {
		if r.Lookup == nil || r.Lookup.Status != "ok" || r.Lookup.Cached {
			t.Errorf("first import row %d: lookup %+v, want a fresh ok", r.Row, r.Lookup)
		}
	}
	for _, r := range lookupResults(t, a.URL(), second) {
		wantCached := r.E164 != nums[3]
		if r.Lookup == nil || r.Lookup.Status != "ok" || r.Lookup.Cached != wantCached || r.Lookup.Carrier != "Test Mobile" {
			t.Errorf("second import row %d (%s): lookup %+v, want ok with cached=%v", r.Row, r.E164, r.Lookup, wantCached)
		}
	}
}

// TestLookupProviderDown: with the provider refusing connections, imports
// still complete (well before the deadline: the circuit opens and the
// remaining calls are skipped), every valid row saying failed or skipped;
// when the provider is back, the circuit closes and lookups succeed again.
func TestLookupProviderDown(t *testing.T) {
	p := lookuptest.Start(t)
	p.Down()
	const deadline = 4 * time.Second
	a := startApp(t, lookupConfig(app.Config{}, p, func(c *app.LookupConfig) {
		c.Deadline = deadline
		c.BreakerFailures = 3
		c.BreakerCooldown = 300 * time.Millisecond
	}))
	start := time.Now()
	id := acceptImport(t, a.URL(), "", numbersCSV(hungarianMobiles(3000, 20)...))
	s := waitCompleted(t, a.URL(), id, 30*time.Second)
	if took := time.Since(start); took > deadline+2*time.Second {
		t.Errorf("import completed after %s, later than its lookup deadline %s allows", took, deadline)
	}
	if s.Valid != 20 {
		t.Errorf("import %+v, want 20 valid rows", s)
	}
	reasons := map[string]int{}
	for _, r := range lookupResults(t, a.URL(), id) {
		if r.Lookup == nil || (r.Lookup.Status != "failed" && r.Lookup.Status != "skipped") {
			t.Fatalf("row %d: lookup %+v, want failed or skipped", r.Row, r.Lookup)
		}
		reasons[r.Lookup.Status+"/"+r.Lookup.Reason]++
	}
	if reasons["skipped/circuit_open"] == 0 || reasons["skipped/circuit_open"]+reasons["failed/unreachable"] != 20 {
		t.Errorf("lookup outcomes %v, want failed (unreachable) until the circuit opened, skipped (circuit_open) after", reasons)
	}
	if v := metricValue(t, scrape(t, a.URL()), `phonepipe_lookup_circuit_changes_total{to="open"}`); v < 1 {
		t.Errorf("circuit opened %v times, want at least once", v)
	}

	p.Up()
	time.Sleep(400 * time.Millisecond) // the breaker's cooldown
	again := acceptImport(t, a.URL(), "", numbersCSV(hungarianMobiles(4000, 5)...))
	waitCompleted(t, a.URL(), again, 30*time.Second)
	for _, r := range lookupResults(t, a.URL(), again) {
		if r.Lookup == nil || r.Lookup.Status != "ok" {
			t.Errorf("after recovery, row %d: lookup %+v, want ok", r.Row, r.Lookup)
		}
	}
	if v := metricValue(t, scrape(t, a.URL()), `phonepipe_lookup_circuit_changes_total{to="closed"}`); v < 1 {
		t.Errorf("circuit closed %v times after the provider came back, want at least once", v)
	}
	if v := metricValue(t, scrape(t, a.URL()), `phonepipe_lookup_circuit_state`); v != 0 {
		t.Errorf("circuit state %v, want 0 (closed)", v)
	}
}

// TestLookupDeadline: an import whose lookups outlast --lookup-deadline
// completes at the deadline, its waiting rows skipped (deadline), and
// completes once: late answers change nothing and one webhook is sent.
func TestLookupDeadline(t *testing.T) {
	forEachBackend(t, testLookupDeadline)
}

func testLookupDeadline(t *testing.T, base app.Config) {
	p := lookuptest.Start(t)
	p.SetMode(lookuptest.Slow)
	p.SetDelay(1500 * time.Millisecond)
	hooks := &hookCounter{}
	hookSrv := httptest.NewServer(hooks)
	t.Cleanup(hookSrv.Close)
	const deadline = 400 * time.Millisecond
	base.WebhookAllowPrivate = true
	cfg := lookupConfig(base, p, func(c *app.LookupConfig) {
		c.Deadline = deadline
		c.Timeout = 5 * time.Second
	})
	a := startApp(t, cfg)
	nums := hungarianMobiles(5000, 3)
	id := acceptImport(t, a.URL(), "?webhook_url="+url.QueryEscape(hookSrv.URL+"/hook"), numbersCSV(nums[0], "hello", nums[1], nums[2]))
	s := waitCompleted(t, a.URL(), id, 30*time.Second)
	if s.Valid != 3 || s.Invalid != 1 {
		t.Errorf("import %+v, want 3 valid and 1 invalid", s)
	}
	// Skipped (deadline) rows mean the import completed at the deadline,
	// before the provider's answers.
	for _, r := range lookupResults(t, a.URL(), id) {
		if r.Valid && (r.Lookup == nil || r.Lookup.Status != "skipped" || r.Lookup.Reason != "deadline") {
			t.Errorf("row %d: lookup %+v, want skipped (deadline)", r.Row, r.Lookup)
		}
	}
	// The answers arrive after the deadline: they are recorded for the
	// numbers, and change nothing about the completed import.
	waitFor(t, 10*time.Second, "late lookups recorded", func() bool {
		var events struct{ Events []struct{ Type string } }
		getJSON(t, a.URL()+"/v1/numbers/"+url.PathEscape(nums[2])+"/events", &events)
		for _, ev := range events.Events {
			if ev.Type == "number.lookup_succeeded.v1" {
				return true
			}
		}
		return false
	})
	waitFor(t, 10*time.Second, "the completion webhook", func() bool { return hooks.count("import.completed "+id) > 0 })
	time.Sleep(300 * time.Millisecond)
	var after importSummary
	getJSON(t, a.URL()+"/v1/imports/"+id, &after)
	if after.Status != "completed" || after.Processed != 4 || !after.CompletedAt.Equal(*s.CompletedAt) {
		t.Errorf("after the late answers the import is %+v, want it as completed: %+v", after, s)
	}
	if n := hooks.count("import.completed " + id); n != 1 {
		t.Errorf("import.completed sent %d times, want once", n)
	}
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReplayKeepsLookupEvents: lookup events take versions of the number
// streams, so replaying the numbers projection applies them too: after
// damage, a replay restores the streams (gapless, with their lookups) and
// the per-number last lookups exactly.
func TestReplayKeepsLookupEvents(t *testing.T) {
	forEachBackend(t, func(t *testing.T, base app.Config) {
		base.DataDir = t.TempDir()
		p := lookuptest.Start(t)
		cfg := lookupConfig(base, p, nil)
		a := startApp(t, cfg)
		nums := hungarianMobiles(6000, 5)
		first := acceptImport(t, a.URL(), "", numbersCSV(nums[0], nums[1], nums[2], "hello"))
		waitCompleted(t, a.URL(), first, 30*time.Second)
		p.SetMode(lookuptest.Flaky)
		second := acceptImport(t, a.URL(), "", numbersCSV(nums[2], nums[3], nums[4], nums[0]))
		waitCompleted(t, a.URL(), second, 30*time.Second)

		before := checksums(t, cfg)
		db := openLive(t, cfg)
		for _, q := range []string{
			`DELETE FROM number_events WHERE type <> 'number.validated.v1'`,
			`DELETE FROM number_lookups`,
			`UPDATE numbers SET version = 1`,
		} {
			if _, err := db.Write.ExecContext(context.Background(), q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		if damaged := checksums(t, cfg); reflect.DeepEqual(damaged, before) {
			t.Fatal("damage did not change the checksums")
		}
		replayAll(t, cfg)
		if after := checksums(t, cfg); !reflect.DeepEqual(after, before) {
			t.Fatalf("replay did not restore the lookups:\nbefore %v\n after %v", before, after)
		}
		var events struct {
			Events []struct {
				Type    string `json:"type"`
				Version int64  `json:"version"`
			} `json:"events"`
		}
		getJSON(t, a.URL()+"/v1/numbers/"+url.PathEscape(nums[0])+"/events", &events)
		lookups := 0
		for i, ev := range events.Events {
			if ev.Version != int64(i+1) {
				t.Fatalf("events after replay: %+v", events.Events)
			}
			if ev.Type == "number.lookup_succeeded.v1" {
				lookups++
			}
		}
		if lookups != 1 {
			t.Errorf("events of %s after replay: %+v, want its lookup", nums[0], events.Events)
		}
	})
}

// TestOpenAPIDescribesLookupAnswers checks the lookup stage's requests and
// answers against openapi.yaml: ?lookup=false, result rows with `lookup`,
// numbers with `last_lookup` and streams with lookup events.
func TestOpenAPIDescribesLookupAnswers(t *testing.T) {
	p := lookuptest.Start(t)
	a := startApp(t, lookupConfig(app.Config{APIKeys: "acme:key-acme"}, p, nil))
	c := &specClient{t: t, spec: fetchSpec(t, a.URL()), base: a.URL(), key: "key-acme"}
	nums := hungarianMobiles(7000, 2)
	body := numbersCSV(nums[0], "hello", nums[1], nums[0])
	ids := map[string]string{}
	for _, q := range []string{"", "?lookup=false"} {
		_, b := c.do(apiCall{method: "POST", path: "/v1/imports" + q, contentType: "text/csv", body: body, want: http.StatusAccepted})
		var acc struct{ ID string }
		if err := json.Unmarshal(b, &acc); err != nil {
			t.Fatal(err)
		}
		ids[q] = acc.ID
	}
	for q, id := range ids {
		end := time.Now().Add(30 * time.Second)
		for {
			_, b := c.do(apiCall{method: "GET", path: "/v1/imports/" + id, want: http.StatusOK})
			var s importSummary
			if err := json.Unmarshal(b, &s); err != nil {
				t.Fatal(err)
			}
			if s.Status == "completed" {
				break
			}
			if time.Now().After(end) {
				t.Fatalf("import%s not completed: %+v", q, s)
			}
			time.Sleep(20 * time.Millisecond)
		}
		for _, format := range []string{"", "?format=json"} {
			_, b := c.do(apiCall{method: "GET", path: "/v1/imports/" + id + "/results" + format, want: http.StatusOK})
			if got := strings.Contains(string(b), `"lookup":{"status":"ok"`); got != (q == "") {
				t.Errorf("results of the import%s%s: lookups %v, want %v:\n%s", q, format, got, q == "", b)
			}
		}
	}
	c.do(apiCall{method: "GET", path: "/v1/numbers/" + url.PathEscape(nums[0]), want: http.StatusOK})
	_, b := c.do(apiCall{method: "GET", path: "/v1/numbers/" + url.PathEscape(nums[0]) + "/events", want: http.StatusOK})
	if !strings.Contains(string(b), "number.lookup_succeeded.v1") {
		t.Errorf("events without the lookup: %s", b)
	}
	if counts := p.Counts(); counts[nums[0]] != 1 || counts[nums[1]] != 1 {
		t.Errorf("provider requests %v, want one per number (the lookup=false import asks nothing)", counts)
	}
}
