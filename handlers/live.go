package handlers

import (
	"context"

	"github.com/phonepipe/phonepipe/domain"
)

// ProgressSink receives import state changes for live watchers. It must not
// block: watchers that cannot keep up are the sink's problem.
type ProgressSink interface {
	ImportChanged(s domain.ImportSummary)
}

// LiveFeed forwards progress and completion events from the bus to the
// live watchers of this process. Every API process runs its own (a
// broadcast subscription), so it works when the workers are elsewhere. It
// writes nothing, so redelivery is harmless.
type LiveFeed struct {
	Sink ProgressSink
}

// HandleProgressed forwards one progress event.
func (l LiveFeed) HandleProgressed(_ context.Context, ev *domain.ImportProgressed) error {
	l.Sink.ImportChanged(ev.Import)
	return nil
}

// HandleCompleted forwards one completion event.
func (l LiveFeed) HandleCompleted(_ context.Context, ev *domain.ImportCompleted) error {
	l.Sink.ImportChanged(ev.Import)
	return nil
}
