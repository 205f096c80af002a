package domain

import (
	"fmt"
	"time"
)

// This file holds the rules of the import deadline: an import that is not
// completed some time after it was accepted has whatever is still missing
// failed, so that no import stays open forever.

// DeadlinePassed reports whether the import is still open (accepted or
// processing) deadline or more after it was accepted. A deadline of 0 or
// less never passes.
func (im Import) DeadlinePassed(now time.Time, deadline time.Duration) bool {
	if deadline <= 0 {
		return false
	}
	open := im.Status == StatusAccepted || im.Status == StatusProcessing
	return open && !now.Before(im.CreatedAt.Add(deadline))
}

// JobRanges are the row ranges of the import's validation jobs when it is
// split into jobs of size rows, as the splitter does. For an import already
// split they must give its job count: a different size (processes started
// with different --job-size) would name other rows than the jobs carry, so
// that is an ErrInvariant.
func (im Import) JobRanges(size int) ([][2]int, error) {
	ranges := Split(im.Total, size)
	if len(ranges) == 0 {
		return nil, fmt.Errorf("%w: import %s: %d rows cannot be split into jobs of %d", ErrInvariant, im.ID, im.Total, size)
	}
	if im.Jobs != 0 && len(ranges) != im.Jobs {
		return nil, fmt.Errorf("%w: import %s was split into %d jobs, but jobs of %d rows make %d",
			ErrInvariant, im.ID, im.Jobs, size, len(ranges))
	}
	return ranges, nil
}

// DeadlineDetail is the detail of a row failed because its import's
// deadline passed before the row was processed.
func DeadlineDetail(deadline time.Duration) string {
	return "import deadline exceeded after " + deadline.String()
}
