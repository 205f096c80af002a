package upload

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// The seed corpus lives in testdata/fuzz/FuzzDecodeCSV.
func FuzzDecodeCSV(f *testing.F) {
	f.Add([]byte("number,region,ref\n+36301234567,HU,crm-1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := checkDecodeInvariants(t, "text/csv", data)
		compareWithEncodingCSV(t, data, rows, err)
	})
}

// The seed corpus lives in testdata/fuzz/FuzzDecodeJSON.
func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(`{"numbers":["+36301234567"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = checkDecodeInvariants(t, "application/json", data)
	})
}

// checkDecodeInvariants decodes data and checks that the outcome is either a
// well-formed *Error or a consistent, repeatable set of rows, which it
// returns.
func checkDecodeInvariants(t *testing.T, ctype string, data []byte) ([]Row, error) {
	// Small limits, so that the fuzzer reaches every one of them.
	fuzzLimits := Limits{MaxBytes: 1 << 16, MaxRows: 200, MaxCellBytes: 64, MaxLineBytes: 256}
	dir := t.TempDir()
	u, err := Decode(newRequest(ctype, "", bytes.NewReader(data)), dir, fuzzLimits)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("error is not an *Error: %v", err)
		}
		if e.Status < 400 || e.Status > 499 || e.Code == "" || e.Message == "" || e.Line < 0 {
			t.Fatalf("bad *Error: %+v", e)
		}
		assertEmptyDir(t, dir)
		return nil, err
	}
	defer func() {
		if err := u.Close(); err != nil {
			t.Fatal(err)
		}
		assertEmptyDir(t, dir)
	}()
	if u.Count < 1 || u.Count > fuzzLimits.MaxRows {
		t.Fatalf("Count = %d", u.Count)
	}
	collect := func() []Row {
		var rows []Row
		if err := u.Each(func(r Row) error { rows = append(rows, r); return nil }); err != nil {
			t.Fatalf("Each after a successful Decode: %v", err)
		}
		return rows
	}
	rows := collect()
	if len(rows) != u.Count {
		t.Fatalf("Each gave %d rows, Count = %d", len(rows), u.Count)
	}
	maxLine := bytes.Count(data, []byte{'\n'}) + bytes.Count(data, []byte{'\r'}) + 1
	prev := 0
	for i, r := range rows {
		if r.Line < 1 || r.Line > maxLine || r.Line < prev || (ctype == "text/csv" && r.Line == prev) {
			t.Fatalf("row %d: line %d after line %d (at most %d)", i+1, r.Line, prev, maxLine)
		}
		prev = r.Line
		for _, v := range []string{r.Number, r.Region, r.Ref} {
			if v != strings.TrimSpace(v) || len(v) > fuzzLimits.MaxCellBytes || !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
				t.Fatalf("row %d: bad value %q", i+1, v)
			}
		}
	}
	if again := collect(); !reflect.DeepEqual(rows, again) {
		t.Fatalf("a second Each gave different rows")
	}
	return rows, nil
}

// compareWithEncodingCSV checks the lexer against encoding/csv on the inputs
// both are meant to read alike: strict RFC 4180 input that encoding/csv
// accepts, without CR, BOM, invalid UTF-8 or NUL. Given the same delimiter,
// the rows must match, and the only acceptable failures are limits.
func compareWithEncodingCSV(t *testing.T, data []byte, rows []Row, err error) {
	if bytes.ContainsAny(data, "\r\x00\ufeff") || !utf8.Valid(data) {
		return
	}
	delim, derr := detectDelimiter(bytes.NewReader(data), 1<<20)
	if derr != nil {
		t.Fatal(derr)
	}
	cr := csv.NewReader(bytes.NewReader(data))
	cr.Comma = rune(delim)
	cr.FieldsPerRecord = -1
	var want []Row
	var cols csvColumns
	header := true
	for {
		rec, cerr := cr.Read()
		if cerr == io.EOF {
			break
		}
		if cerr != nil {
			return // not strict RFC 4180: the lexer is more lenient
		}
		blank := true
		for _, f := range rec {
			if strings.Trim(f, " \t") != "" {
				blank = false
			}
		}
		if blank {
			continue
		}
		line, _ := cr.FieldPos(0)
		if header {
			header = false
			var h headerScan
			h.reset()
			for i, f := range rec {
				h.field(i, []byte(f))
			}
			var herr error
			if cols, herr = h.columns(line); herr != nil {
				return
			}
			if !cols.headerless {
				continue
			}
		}
		cell := func(i int) string {
			if i < 0 || i >= len(rec) {
				return ""
			}
			return strings.TrimSpace(rec[i])
		}
		want = append(want, Row{Line: line, Number: cell(cols.number), Region: cell(cols.region), Ref: cell(cols.ref)})
	}
	if err != nil {
		e, _ := errors.AsType[*Error](err)
		switch e.Code {
		case CodeCellTooLong, CodeLineTooLong, CodeTooManyRows, CodeEmptyBody, CodeNoRows:
			return
		}
		t.Fatalf("encoding/csv reads %d rows, Decode fails: %v", len(want), err)
	}
	if !reflect.DeepEqual(rows, want) {
		t.Fatalf("rows differ from encoding/csv:\n got %#v\nwant %#v", rows, want)
	}
}
