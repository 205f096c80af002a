package periodic_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/internal/periodic"
)

func TestRunCallsUntilCancelledAndReportsErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls, reported atomic.Int32
	boom := errors.New("boom")
	done := make(chan error, 1)
	go func() {
		done <- periodic.Run(ctx, time.Millisecond, func(context.Context) error {
			if calls.Add(1)%2 == 0 {
				return boom
			}
			return nil
		}, func(err error) {
			if !errors.Is(err, boom) {
				t.Errorf("reported %v, want boom", err)
			}
			reported.Add(1)
		})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for calls.Load() < 6 {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls in 10 s", calls.Load())
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v after cancel, want nil", err)
	}
	if reported.Load() == 0 {
		t.Fatal("no error reported")
	}
	after := calls.Load()
	time.Sleep(20 * time.Millisecond)
	if calls.Load() != after {
		t.Fatal("fn still called after Run returned")
	}
}

func TestRunDoesNotReportTheEndingAsAnError(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	err := periodic.Run(ctx, time.Millisecond, func(ctx context.Context) error {
		cancel()
		return ctx.Err()
	}, func(err error) { t.Errorf("reported %v while ending", err) })
	if err != nil {
		t.Fatal(err)
	}
}
