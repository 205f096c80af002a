package main

import "github.com/phonepipe/phonepipe/cmd/phonepipe/app"

// embeddedGCPercent is the garbage collector's target of `phonepipe serve`
// on the embedded backend when $GOGC is not set: the heap may grow to
// three times what is live (Go's default is twice). There the pipeline
// allocates per message (decoded events, statement arguments) and keeps
// little, and most of the process's memory is SQLite's, outside the Go
// heap, so collecting half as often saves CPU on the single writer's path
// for little memory. Measured with `phonepipe bench --rows 20000 --rss-rows
// 1000000 --backends sqlite --ack-imports 50 --watchers 0`, two pairs run
// back to back, GOGC=200 against GOGC=100: the 1,000,000-row import 5,717 ·
// 5,123 against 5,119 · 4,796 numbers/s, 231.6 · 248.0 against 263.7 ·
// 273.9 µs of CPU per number, ack max 79 · 93 against 106 · 123 ms.
//
// The other backends keep Go's default: on kafka+postgres (`--backends
// kafka`, 100,000 rows, alternating) GOGC=200 raised the service's peak RSS
// from 296 · 263 MB to 374 · 419 MB and did not make it faster (see
// docs/BENCHMARKS.md).
const embeddedGCPercent = 200

// gcPercent returns the GC percent serve should set for backend, and false
// when it should leave the runtime's (the environment chose one with GOGC,
// which the runtime reads itself, or the backend keeps Go's default).
func gcPercent(env func(string) (string, bool), backend string) (int, bool) {
	if v, ok := env("GOGC"); ok && v != "" {
		return 0, false
	}
	if backend != app.BackendSQLite {
		return 0, false
	}
	return embeddedGCPercent, true
}
