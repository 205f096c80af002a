// Package httpapi is phonepipe's HTTP edge: the /v1 JSON API of
// ../shared/CONTRACT.md (imports, results, numbers and their event streams),
// authentication by API key, the error shape, and health endpoints. It
// accepts uploads by storing them durably and publishing ImportAccepted in
// one transaction, then answers 202 before any row is processed.
package httpapi
