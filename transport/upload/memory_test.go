package upload

import (
	"bufio"
	"io"
	"runtime"
	"strconv"
	"sync"
	"testing"
)

// heapPeak records the largest HeapInuse seen by sample.
type heapPeak struct {
	mu   sync.Mutex
	peak uint64
}

// sample reads the memory statistics and keeps the peak.
func (h *heapPeak) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h.mu.Lock()
	h.peak = max(h.peak, ms.HeapInuse)
	h.mu.Unlock()
}

// generate writes a header, then rows lines made by line, to a pipe, sampling
// the heap every 50,000 rows; it returns the read end.
func generate(rows int, header, footer string, line func(b []byte, i int) []byte, h *heapPeak) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		bw := bufio.NewWriterSize(pw, 64<<10)
		_, _ = bw.WriteString(header)
		var b []byte
		for i := range rows {
			b = line(b[:0], i)
			if _, err := bw.Write(b); err != nil {
				pw.CloseWithError(err)
				return
			}
			if i%50_000 == 0 {
				h.sample()
			}
		}
		_, _ = bw.WriteString(footer)
		pw.CloseWithError(bw.Flush())
	}()
	return pr
}

// phone appends a distinct phone number for row i.
func phone(b []byte, i int) []byte {
	b = append(b, "+3620"...)
	var digits [20]byte
	s := strconv.AppendInt(digits[:0], int64(i), 10)
	for range 7 - len(s) {
		b = append(b, '0')
	}
	return append(b, s...)
}

// checkStreaming decodes a generated upload of rows rows and iterates it,
// checking that the heap stays small and that allocation does not grow with
// the upload beyond the strings handed to fn.
//
// maxDecodeAlloc bounds the bytes Decode may allocate per row (the validation
// pass), maxEachAlloc those of Each, where every row's strings are new.
func checkStreaming(t *testing.T, ctype string, rows int, body io.Reader, h *heapPeak, wantLine func(i int) int, maxDecodeAlloc, maxEachAlloc uint64) {
	const maxHeap = 50 << 20
	var before, decoded, iterated runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	u, err := Decode(newRequest(ctype, "", body), t.TempDir(), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := u.Close(); err != nil {
			t.Error(err)
		}
	}()
	h.sample()
	runtime.ReadMemStats(&decoded)
	if u.Count != rows {
		t.Fatalf("Count = %d, want %d", u.Count, rows)
	}

	n := 0
	var want []byte
	err = u.Each(func(r Row) error {
		want = phone(want[:0], n)
		if r.Number != string(want) || r.Line != wantLine(n) {
			t.Fatalf("row %d = %+v, want number %s line %d", n+1, r, want, wantLine(n))
		}
		n++
		if n%50_000 == 0 {
			h.sample()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&iterated)
	if n != rows {
		t.Fatalf("Each delivered %d rows", n)
	}

	decodeAlloc := decoded.TotalAlloc - before.TotalAlloc
	eachAlloc := iterated.TotalAlloc - decoded.TotalAlloc
	t.Logf("%s, %d rows: peak HeapInuse %.1f MiB (baseline %.1f MiB); allocated %.1f MiB in Decode, %.1f MiB in Each (%d B/row)",
		ctype, rows, mib(h.peak), mib(before.HeapInuse), mib(decodeAlloc), mib(eachAlloc), eachAlloc/uint64(rows))
	if h.peak > maxHeap {
		t.Errorf("peak HeapInuse %.1f MiB, want < %.0f MiB", mib(h.peak), mib(maxHeap))
	}
	if decodeAlloc/uint64(rows) > maxDecodeAlloc {
		t.Errorf("Decode allocated %d B/row, want <= %d", decodeAlloc/uint64(rows), maxDecodeAlloc)
	}
	if eachAlloc/uint64(rows) > maxEachAlloc {
		t.Errorf("Each allocated %d B/row, want <= %d", eachAlloc/uint64(rows), maxEachAlloc)
	}
}

// mib converts bytes to MiB.
func mib(n uint64) float64 { return float64(n) / (1 << 20) }

func TestMemoryMillionRowCSV(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 1,000,000 rows")
	}
	const rows = 1_000_000
	var h heapPeak
	body := generate(rows, "number,region,ref\n", "", func(b []byte, i int) []byte {
		b = phone(b, i)
		b = append(b, ",HU,crm-"...)
		b = strconv.AppendInt(b, int64(i), 10)
		return append(b, '\n')
	}, &h)
	// The CSV validation pass allocates nothing per row; Each allocates the
	// row's strings.
	checkStreaming(t, "text/csv", rows, body, &h, func(i int) int { return i + 2 }, 1, 128)
}

func TestMemoryMillionRowJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 1,000,000 rows")
	}
	const rows = 1_000_000
	var h heapPeak
	body := generate(rows, "{\"default_region\":\"HU\",\"numbers\":[", "\n]}", func(b []byte, i int) []byte {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n\""...)
		b = phone(b, i)
		return append(b, '"')
	}, &h)
	// encoding/json's Token allocates for every token: garbage, not growth.
	checkStreaming(t, "application/json", rows, body, &h, func(i int) int { return i + 2 }, 512, 512)
}
