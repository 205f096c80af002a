// Package domain holds phonepipe's pure types and rules: the commands and events
// that flow over the bus, per-number stream identities, and the rules of an
// import (its counters, its status and when it is complete). Nothing here does
// I/O; handlers load state, call these rules and persist what they return.
//
// Streams. Every parsed number has one event stream per tenant, identified by
// StreamID(tenant, e164). A row whose input does not parse has no number to
// hang events on, so it gets a stream of its own, keyed by the import and row
// ("<tenant>/row/<import>/<row>"), holding exactly one event. This keeps the
// per-number streams clean (only real numbers) while every row still has an
// event that records its outcome.
package domain
