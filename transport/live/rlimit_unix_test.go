//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package live

import (
	"syscall"
	"testing"
)

// raiseOpenFileLimit raises the soft limit on open files to at least need
// (up to the hard limit), skipping the benchmark if that is not enough.
func raiseOpenFileLimit(b *testing.B, need int) {
	b.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Skipf("getrlimit: %v", err)
	}
	if lim.Cur >= uint64(need) {
		return
	}
	lim.Cur = min(uint64(need), lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Skipf("setrlimit(%d): %v", lim.Cur, err)
	}
	if lim.Cur < uint64(need) {
		b.Skipf("open file limit %d < %d needed (hard limit)", lim.Cur, need)
	}
}
