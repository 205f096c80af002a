package upload

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// The seed corpus lives in testdata/fuzz/FuzzDecodeCSV.
func FuzzDecodeCSV(f *testing.F) {
	f.Add([]byte("number,region,ref\n+36301234567,HU,crm-1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodeInvariants(t, "text/csv", data)
	})
}

// The seed corpus lives in testdata/fuzz/FuzzDecodeJSON.
func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(`{"numbers":["+36301234567"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodeInvariants(t, "application/json", data)
	})
}

// checkDecodeInvariants decodes data and checks that the outcome is either a
// well-formed *Error or a consistent, repeatable set of rows.
func checkDecodeInvariants(t *testing.T, ctype string, data []byte) {
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
		return
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
}
