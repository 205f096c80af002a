// Package periodic runs a piece of work at a fixed interval until its
// context ends: the loop of the sweepers (the import and lookup deadline
// watchdogs).
package periodic

import (
	"context"
	"time"
)

// Run calls fn every interval, the first time one interval after it
// starts, until ctx is done; then it returns nil. An error of fn goes to
// onErr (unless ctx is done: the error is then the ending itself), and fn
// runs again at the next tick.
func Run(ctx context.Context, interval time.Duration, fn func(context.Context) error, onErr func(error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				onErr(err)
			}
		}
	}
}
