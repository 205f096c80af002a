package app

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/phonepipe/phonepipe/internal/periodic"
)

// stallWatch tells /readyz when a projection is stalled: it has messages
// waiting and its backlog has not gone down for longer than after.
type stallWatch struct {
	name    string
	backlog func(ctx context.Context) (int64, error)
	every   time.Duration
	after   time.Duration
	now     func() time.Time

	mu       sync.Mutex
	last     int64
	progress time.Time // last time the backlog was empty or shrank
}

// Run samples the backlog until ctx is done.
func (s *stallWatch) Run(ctx context.Context) error {
	s.mu.Lock()
	s.progress = s.now()
	s.mu.Unlock()
	return periodic.Run(ctx, s.every, s.sample, func(error) {})
}

// sample reads the backlog once and notes progress. A failed read is not
// an error here: the database check of /readyz reports outages.
func (s *stallWatch) sample(ctx context.Context) error {
	n, err := s.backlog(ctx)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n == 0 || n < s.last {
		s.progress = s.now()
	}
	s.last = n
	return nil
}

// check returns an error while the projection is stalled.
func (s *stallWatch) check() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last > 0 && !s.progress.IsZero() && s.now().Sub(s.progress) > s.after {
		return fmt.Errorf("projection %s is stalled: %d messages waiting, no progress for %s",
			s.name, s.last, s.now().Sub(s.progress).Round(time.Second))
	}
	return nil
}
