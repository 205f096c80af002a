//go:build !linux

package main

import (
	"errors"
	"fmt"
	"time"
)

// benchPeakRSS is only implemented on Linux.
func benchPeakRSS(int) (int64, error) {
	return 0, fmt.Errorf("peak RSS: %w on this system", errors.ErrUnsupported)
}

// benchProcCPU is only implemented on Linux.
func benchProcCPU(int) (time.Duration, error) {
	return 0, fmt.Errorf("process CPU time: %w on this system", errors.ErrUnsupported)
}

// benchSelfCPU is only implemented on Linux.
func benchSelfCPU() (time.Duration, error) {
	return 0, fmt.Errorf("CPU time: %w on this system", errors.ErrUnsupported)
}

// benchMachineInfo knows nothing on this system.
func benchMachineInfo() (cpuModel string, memBytes int64) { return "", 0 }
