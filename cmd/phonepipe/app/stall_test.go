package app

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestStallWatch(t *testing.T) {
	var backlog atomic.Int64
	var clock atomic.Int64 // seconds
	s := &stallWatch{
		name:    "project",
		backlog: func(context.Context) (int64, error) { return backlog.Load(), nil },
		every:   time.Millisecond,
		after:   time.Minute,
		now:     func() time.Time { return time.Unix(clock.Load(), 0) },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	sample := func() { time.Sleep(20 * time.Millisecond) }

	steps := []struct {
		backlog int64
		advance int64
		stalled bool
	}{
		{0, 0, false},    // idle
		{10, 30, false},  // work waiting, recently progressed
		{8, 50, false},   // shrinking
		{8, 61, true},    // no progress for over a minute
		{0, 1, false},    // drained
		{100, 300, true}, // a backlog that never moves
	}
	for i, st := range steps {
		backlog.Store(st.backlog)
		sample()
		clock.Add(st.advance)
		sample()
		if err := s.check(); (err != nil) != st.stalled {
			t.Fatalf("step %d: check() = %v, want stalled=%v", i, err, st.stalled)
		}
	}
}
