// Package testenv gives tests isolated backends: a fresh PostgreSQL schema
// or MySQL database per test on the servers named by the environment, and
// an in-process Kafka-protocol cluster (kfake). Tests that need a server
// the environment does not name are skipped with a message saying which
// variable to set; CI sets them all.
package testenv
