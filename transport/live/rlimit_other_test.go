//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package live

import "testing"

// raiseOpenFileLimit is a no-op where RLIMIT_NOFILE does not exist.
func raiseOpenFileLimit(*testing.B, int) {}
