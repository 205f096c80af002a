// Package bus wires phonepipe's handlers onto a Watermill router through the
// CQRS component: topic names, the JSON marshaler with versioned message
// names, the publisher that writes inside the current unit of work (the
// transactional outbox on SQL backends), the consumer group of each handler,
// and the router middleware (correlation ids, poison queue, bounded retry,
// panic recovery, per-attempt savepoints, draining on shutdown).
package bus
