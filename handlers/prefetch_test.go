package handlers

import (
	"errors"
	"testing"

	"github.com/phonepipe/phonepipe/domain"
)

func TestPrefetcher(t *testing.T) {
	rows := func(first, n int) func() ([]domain.NumberValidated, error) {
		return func() ([]domain.NumberValidated, error) {
			out := make([]domain.NumberValidated, n)
			for i := range out {
				out[i].Row = first + i
			}
			return out, nil
		}
	}
	p := NewPrefetcher(2)
	p.start("imp", 1, rows(1, 3))
	p.start("imp", 1, func() ([]domain.NumberValidated, error) { t.Error("started twice"); return nil, nil })
	got, ok := p.take("imp", 1)
	if !ok || len(got) != 3 || got[0].Row != 1 {
		t.Fatalf("take = %v, %v", got, ok)
	}
	if _, ok := p.take("imp", 1); ok {
		t.Fatal("a taken job is returned again")
	}
	p.start("imp", 4, rows(4, 3))
	p.start("imp", 7, rows(7, 3))
	p.start("imp", 10, rows(10, 3)) // evicts the job at row 4
	if _, ok := p.take("imp", 4); ok {
		t.Fatal("the oldest job was not evicted")
	}
	if got, ok := p.take("imp", 10); !ok || got[0].Row != 10 {
		t.Fatalf("take(10) = %v, %v", got, ok)
	}
	p.start("other", 1, func() ([]domain.NumberValidated, error) { return nil, errors.New("read failed") })
	if _, ok := p.take("other", 1); ok {
		t.Fatal("a failed prefetch is used")
	}
}
