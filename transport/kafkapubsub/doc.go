// Package kafkapubsub configures Watermill's Kafka Pub/Sub (watermill-kafka,
// Sarama) the way phonepipe uses it: an idempotent producer that waits for
// every in-sync replica (acks=all), messages keyed for partitioning, one
// consumer group per role that starts a new group at the oldest offset (the
// log is the source of truth and can be replayed), broadcast subscribers
// without a group that start at the newest offset, and topics created with
// unlimited retention.
package kafkapubsub
