// Package lookup is phonepipe's third-party number lookup stage (line type,
// current carrier, caller name; shaped after Twilio Lookup v2), built so that
// a slow or dead provider never holds back the rest of the pipeline.
//
// Nothing here runs inside a bus handler: on SQLite the message subscriber
// holds the single write lock while a handler runs, so an HTTP call there
// would stall every writer. Instead lookups are durable rows (see
// projections.Lookups): the projector makes valid rows wait for their
// number's call, and this package's Worker claims due calls under a lease,
// feeds them to an in-process Watermill router over a gochannel pub/sub,
// and makes each call there wrapped in Watermill middleware — a per-attempt
// Timeout, a bounded Retry that honours 429 Retry-After, a CircuitBreaker
// and a Throttle — with bounded concurrency. Outcomes are recorded in short
// batched transactions of their own that settle the calls, take the number
// streams' next versions and publish LookupsRecorded through the event bus.
// The Watchdog ends the wait of imports whose lookup deadline passed.
//
// Outcomes: ok (the provider answered), failed (errors or unusable answers
// after bounded retries), skipped (circuit open, rate budget exhausted,
// deadline).
package lookup
