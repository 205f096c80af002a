// Package storage owns phonepipe's SQL databases: opening them for a backend,
// the unit of work that lets a message handler write its effects in the same
// transaction that consumes the message, and the durable store of uploaded
// rows.
package storage
