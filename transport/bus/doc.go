// Package bus wires phonepipe's handlers onto a Watermill router through the
// CQRS component: topic names, partition keys, the JSON marshaler with
// versioned message names, the publisher that writes inside the current
// unit of work (the transactional outbox on SQL backends), the consumer
// group of each handler, and the router middleware (correlation ids, poison
// queue, bounded retry, panic recovery, per-attempt savepoints, draining on
// shutdown).
//
// Backends: SQLiteBackend (embedded), SQLBackend (PostgreSQL, MySQL) and
// KafkaBackend. On the SQL backends a message is consumed in a database
// transaction that the handler writes through; a conflict that ruins that
// transaction (serialization failure, deadlock) gives it up (Abandon) so
// the batch is delivered again in a new one. On Kafka each handler attempt
// gets a transaction of its own (UnitOfWork) and what it publishes goes
// through an SQL outbox that a forwarder moves to Kafka.
package bus
