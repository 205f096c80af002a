// Package web serves phonepipe's browser page: upload a CSV or JSON file of
// phone numbers, watch its progress live over the progress WebSocket, and
// download the results.
//
// The page is plain HTML, CSS and JavaScript embedded in the binary with
// go:embed. It has no build step and loads nothing from other origins, so it
// works offline and under a strict Content-Security-Policy. It talks only to
// the public API of the same origin:
//
//   - POST /v1/imports (multipart/form-data: file, default_region, webhook_url)
//   - GET /v1/imports/{id}/progress (WebSocket, resumed with ?since=N)
//   - GET /v1/imports/{id} (fallback when the socket drops)
//   - GET /v1/imports/{id}/results?format=csv|ndjson
//
// An optional API key is kept in the browser's localStorage and sent as
// "Authorization: Bearer KEY" on fetches and as ?token=KEY on the WebSocket.
//
// Mount [Handler] on [PagePattern] ("GET /{$}") and [AssetsPattern]
// ("GET /assets/").
package web
