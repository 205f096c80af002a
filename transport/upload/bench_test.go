package upload

import (
	"bytes"
	"strconv"
	"testing"
)

// benchBody builds an upload of rows rows in the given format.
func benchBody(format string, rows int) []byte {
	var b []byte
	if format == FormatCSV {
		b = append(b, "number,region,ref\n"...)
		for i := range rows {
			b = phone(b, i)
			b = append(b, ",HU,crm-"...)
			b = strconv.AppendInt(b, int64(i), 10)
			b = append(b, '\n')
		}
		return b
	}
	b = append(b, `{"default_region":"HU","rows":[`...)
	for i := range rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n{\"number\":\""...)
		b = phone(b, i)
		b = append(b, "\",\"ref\":\"crm-"...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, "\"}"...)
	}
	return append(b, "\n]}"...)
}

// benchmarkDecode measures Decode plus one full Each over 100,000 rows.
func benchmarkDecode(b *testing.B, format, ctype string) {
	const rows = 100_000
	body := benchBody(format, rows)
	dir := b.TempDir()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		u, err := Decode(newRequest(ctype, "", bytes.NewReader(body)), dir, Limits{})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		if err := u.Each(func(Row) error { n++; return nil }); err != nil || n != rows {
			b.Fatalf("Each: %d rows, %v", n, err)
		}
		if err := u.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkDecodeCSV100k(b *testing.B)  { benchmarkDecode(b, FormatCSV, "text/csv") }
func BenchmarkDecodeJSON100k(b *testing.B) { benchmarkDecode(b, FormatJSON, "application/json") }
