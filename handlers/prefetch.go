package handlers

import (
	"fmt"
	"sync"

	"github.com/phonepipe/phonepipe/domain"
)

// Prefetcher enriches the next job of an import in the background while the
// current one is being written. Enrichment is a pure function of a job's
// stored rows, which never change once accepted, so a result computed ahead
// of time is the result the job would compute; the job still writes it in
// its own unit of work. On the embedded backend the job holds the single
// writer while it runs, so this is what lets enrichment (one core) overlap
// with writing (the other).
//
// It keeps at most a few results; one that is never asked for (another
// process took that job) is dropped when newer ones arrive.
type Prefetcher struct {
	mu    sync.Mutex
	jobs  map[string]*prefetched
	order []string
	limit int
}

// prefetched is one job enriched ahead, or being enriched.
type prefetched struct {
	done chan struct{}
	out  []domain.NumberValidated
	err  error
}

// NewPrefetcher returns a prefetcher holding at most limit jobs.
func NewPrefetcher(limit int) *Prefetcher {
	return &Prefetcher{jobs: map[string]*prefetched{}, limit: max(limit, 1)}
}

func prefetchKey(importID string, firstRow int) string {
	return fmt.Sprintf("%s/%d", importID, firstRow)
}

// start runs load in the background for the job of importID that begins at
// firstRow, unless it is already there.
func (p *Prefetcher) start(importID string, firstRow int, load func() ([]domain.NumberValidated, error)) {
	key := prefetchKey(importID, firstRow)
	p.mu.Lock()
	if _, ok := p.jobs[key]; ok {
		p.mu.Unlock()
		return
	}
	job := &prefetched{done: make(chan struct{})}
	p.jobs[key] = job
	p.order = append(p.order, key)
	for len(p.order) > p.limit {
		delete(p.jobs, p.order[0])
		p.order = p.order[1:]
	}
	p.mu.Unlock()
	go func() {
		defer close(job.done)
		job.out, job.err = load()
	}()
}

// take returns (and forgets) the enriched rows of the job of importID that
// begins at firstRow, waiting for them if they are being computed.
func (p *Prefetcher) take(importID string, firstRow int) ([]domain.NumberValidated, bool) {
	key := prefetchKey(importID, firstRow)
	p.mu.Lock()
	job, ok := p.jobs[key]
	if ok {
		delete(p.jobs, key)
		for i, k := range p.order {
			if k == key {
				p.order = append(p.order[:i], p.order[i+1:]...)
				break
			}
		}
	}
	p.mu.Unlock()
	if !ok {
		return nil, false
	}
	<-job.done
	return job.out, job.err == nil
}
