package listgen

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
)

// Header is the header row of the CSV lists: the number, the region
// column the service understands, and the caller's reference.
func Header() []string { return []string{"phone", "region", "ref"} }

// WriteCSV writes Header and then n rows of the list cfg describes to w,
// one row at a time, and returns what it wrote. It stops early with the
// context's error when ctx is done.
func WriteCSV(ctx context.Context, w io.Writer, cfg Config, n int) (Stats, error) {
	g, err := New(cfg)
	if err != nil {
		return Stats{}, fmt.Errorf("write list: %w", err)
	}
	return g.WriteCSV(ctx, w, n)
}

// WriteCSV writes Header and then the next n rows of g to w, as
// [WriteCSV] does. Calling it again continues the same list, so one
// generator can cut a list into several uploads.
func (g *Generator) WriteCSV(ctx context.Context, w io.Writer, n int) (Stats, error) {
	var st Stats
	if n < 0 {
		return st, fmt.Errorf("write list: row count %d is negative", n)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	cw := csv.NewWriter(bw)
	if err := cw.Write(Header()); err != nil {
		return st, fmt.Errorf("write list header: %w", err)
	}
	rec := make([]string, 3)
	for i := range n {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return st, fmt.Errorf("write list: %w", err)
			}
		}
		r := g.Next()
		st.Add(r)
		rec[0], rec[1], rec[2] = r.Number, r.Region, r.Ref
		if err := cw.Write(rec); err != nil {
			return st, fmt.Errorf("write list row %d: %w", i+1, err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return st, fmt.Errorf("write list: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return st, fmt.Errorf("write list: %w", err)
	}
	return st, nil
}
