package app_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
)

// TestConcurrentImportsOfOneNumberKeepItsStreamInOrder imports one number
// many times at once, with two processes sharing the validators and
// projectors, and checks that its stream ends as versions 1..N — no gap,
// no repeat — with every import in it once, on every backend.
func TestConcurrentImportsOfOneNumberKeepItsStreamInOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg app.Config) {
		const imports = 20
		cfg.DataDir = t.TempDir() // shared: the embedded database lives there
		a := startApp(t, cfg)
		second := cfg
		second.Roles = []string{app.RoleValidate, app.RoleProject}
		startApp(t, second)

		ids := make([]string, imports)
		var wg sync.WaitGroup
		for i := range imports {
			wg.Go(func() { ids[i] = mustAccept(t, a.URL(), []byte("number\n+36 30 123 4567\n")) })
		}
		wg.Wait()
		for _, id := range ids {
			waitCompleted(t, a.URL(), id, 2*time.Minute)
		}

		var events struct {
			Events []struct {
				Version  int64  `json:"version"`
				ImportID string `json:"import_id"`
			} `json:"events"`
		}
		// Completion means this import's results are readable; the
		// number's stream may still be waiting for an earlier version
		// another import carries. Give it the time that import needs.
		deadline := time.Now().Add(time.Minute)
		for {
			if code := getJSON(t, a.URL()+"/v1/numbers/%2B36301234567/events", &events); code != http.StatusOK {
				t.Fatalf("GET events: %d", code)
			}
			if len(events.Events) >= imports || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if len(events.Events) != imports {
			t.Fatalf("%d events, want %d", len(events.Events), imports)
		}
		seen := map[string]bool{}
		for i, ev := range events.Events {
			if ev.Version != int64(i+1) {
				t.Fatalf("event %d has version %d: the stream has a gap or a repeat", i, ev.Version)
			}
			if seen[ev.ImportID] {
				t.Fatalf("import %s appears twice in the stream", ev.ImportID)
			}
			seen[ev.ImportID] = true
		}
		var number struct {
			Version int64    `json:"version"`
			Imports []string `json:"imports"`
		}
		if code := getJSON(t, a.URL()+"/v1/numbers/%2B36301234567", &number); code != http.StatusOK {
			t.Fatalf("GET number: %d", code)
		}
		if number.Version != imports || len(number.Imports) != imports {
			t.Fatalf("number projection at version %d with %d imports, want %d", number.Version, len(number.Imports), imports)
		}
	})
}
