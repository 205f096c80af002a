// Package app wires phonepipe together for one process: it opens the
// backend, registers the handlers of the roles the process runs, mounts the
// HTTP API, and runs everything under one context until it is cancelled,
// then shuts down gracefully (HTTP first, then in-flight handlers drain).
package app
