package live_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/phonepipe/phonepipe/transport/live"
)

// Wiring the hub into an API process: the HTTP handler authorizes and calls
// Serve, the bus handler calls Publish, and Run runs for the process lifetime.
func ExampleHub() {
	ctx := context.Background()
	hub := live.NewHub(live.Config{
		AllowedOrigins: []string{"https://app.example.com"},
		Logger:         slog.Default(),
	})
	go func() { _ = hub.Run(ctx) }()

	// loadImport stands for the database read of an import summary.
	loadImport := func(ctx context.Context, id string) (seq int64, completed bool, summary json.RawMessage, err error) {
		return 1, false, json.RawMessage(`{"id":"` + id + `"}`), nil
	}

	http.HandleFunc("GET /v1/imports/{id}/progress", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		// ... authenticate, and check that import id belongs to the caller's tenant ...
		since, _ := strconv.ParseInt(r.URL.Query().Get("since"), 10, 64)
		hub.Serve(w, r, id, since, func(ctx context.Context) (live.Update, error) {
			seq, done, summary, err := loadImport(ctx, id)
			return live.Update{ImportID: id, Seq: seq, Completed: done, Import: summary}, err
		})
	})

	// In the notify handler of the message bus:
	onImportChanged := func(id string, version int64, completed bool, summary json.RawMessage) {
		hub.Publish(live.Update{ImportID: id, Seq: version, Completed: completed, Import: summary})
	}
	_ = onImportChanged
}
