//go:build !linux

package main

import (
	"errors"
	"fmt"
	"time"
)

// procPeakRSS is only implemented on Linux.
func procPeakRSS(int) (int64, error) {
	return 0, fmt.Errorf("peak RSS: %w on this system", errors.ErrUnsupported)
}

// procCPU is only implemented on Linux.
func procCPU(int) (time.Duration, error) {
	return 0, fmt.Errorf("process CPU time: %w on this system", errors.ErrUnsupported)
}

// selfCPU is only implemented on Linux.
func selfCPU() (time.Duration, error) {
	return 0, fmt.Errorf("CPU time: %w on this system", errors.ErrUnsupported)
}

// machineInfo knows nothing on this system.
func machineInfo() (cpuModel string, memBytes int64) { return "", 0 }
