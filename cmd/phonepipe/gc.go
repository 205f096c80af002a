package main

// defaultGCPercent is the garbage collector's target of the phonepipe
// process when $GOGC is not set: the heap may grow to three times what is
// live (Go's default is twice). The pipeline allocates per message (decoded
// events, statement arguments) and keeps little, so collecting half as
// often costs a little memory and saves CPU on the writer's path. Measured
// with `phonepipe bench --rows 20000 --rss-rows 1000000 --backends sqlite
// --ack-imports 50 --watchers 0`, GOGC=100 then 200, one run each: the
// 1,000,000-row import ran at 5,119 and 5,717 numbers/s (263.7 and 231.6 µs
// of CPU per number), ack p99 106 and 79 ms, peak RSS 244.8 and 209.6 MB
// (see docs/BENCHMARKS.md). Setting GOGC chooses another target; GOMEMLIMIT
// caps the heap as usual.
const defaultGCPercent = 200

// gcPercent returns the GC percent the process should set, and false when
// the environment already chose one (GOGC is read by the runtime itself).
func gcPercent(env func(string) (string, bool)) (int, bool) {
	if v, ok := env("GOGC"); ok && v != "" {
		return 0, false
	}
	return defaultGCPercent, true
}
