package upload

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestDecodeMediaTypes(t *testing.T) {
	tests := []struct {
		name, ctype, encoding string
		err                   *wantErr
	}{
		{name: "text/csv", ctype: "text/csv"},
		{name: "application/csv", ctype: "application/csv"},
		{name: "charset ignored", ctype: "text/csv; charset=iso-8859-1"},
		{name: "identity encoding", ctype: "text/csv", encoding: "identity"},
		{name: "missing", ctype: "", err: e415()},
		{name: "text/plain", ctype: "text/plain", err: e415()},
		{name: "xml", ctype: "application/xml", err: e415()},
		{name: "form urlencoded", ctype: "application/x-www-form-urlencoded", err: e415()},
		{name: "json suffix", ctype: "application/problem+json", err: e415()},
		{name: "malformed", ctype: "text/csv; =", err: e415()},
		{name: "gzip", ctype: "text/csv", encoding: "gzip", err: e415()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRequest(tc.ctype, "", strings.NewReader("number\n+3611111\n"))
			if tc.encoding != "" {
				r.Header.Set("Content-Encoding", tc.encoding)
			}
			_, _, err := decodeRows(t, r, Limits{})
			checkErr(t, err, tc.err)
		})
	}
}

func TestDecodeMaxBytes(t *testing.T) {
	body := "number\n" + strings.Repeat("+3611111\n", 100) // 907 bytes
	tests := []struct {
		name   string
		max    int64
		length bool // send a Content-Length
		err    *wantErr
	}{
		{"declared length over the limit", 900, true, e413()},
		{"streamed body over the limit", 900, false, e413()},
		{"exactly at the limit", int64(len(body)), false, nil},
		{"exactly at the limit with length", int64(len(body)), true, nil},
		{"one byte over the limit", int64(len(body)) - 1, false, e413()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rd io.Reader = strings.NewReader(body)
			if !tc.length {
				rd = io.NopCloser(rd) // hides the length from httptest
			}
			r := newRequest("text/csv", "", rd)
			_, _, err := decodeRows(t, r, Limits{MaxBytes: tc.max})
			checkErr(t, err, tc.err)
			if err != nil && !tc.length {
				var mbe *http.MaxBytesError
				if !errors.As(err, &mbe) || mbe.Limit != tc.max {
					t.Errorf("error %v does not wrap *http.MaxBytesError{%d}", err, tc.max)
				}
			}
		})
	}

	t.Run("caller's own MaxBytesReader", func(t *testing.T) {
		rec := httptest.NewRecorder()
		r := newRequest("text/csv", "", io.NopCloser(strings.NewReader(body)))
		r.Body = http.MaxBytesReader(rec, r.Body, 100)
		_, _, err := decodeRows(t, r, Limits{})
		checkErr(t, err, e413())
	})
}

// failingReader returns some data, then an error, like a client going away.
type failingReader struct{ data io.Reader }

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.data.Read(p)
	if err == io.EOF {
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

func TestDecodeBrokenBody(t *testing.T) {
	for _, ct := range []string{"text/csv", "application/json"} {
		r := newRequest(ct, "", &failingReader{strings.NewReader("number\n+3611111\n")})
		_, _, err := decodeRows(t, r, Limits{})
		checkErr(t, err, e400(CodeIncompleteBody, 0))
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: %v does not wrap the read error", ct, err)
		}
	}
	body, ct := buildForm(t, formPart{name: "file", filename: "a.csv", body: "number\n+3611111\n"})
	cut := strings.NewReader(body.String()[:body.Len()-30]) // inside the file part
	_, _, err := decodeRows(t, newRequest(ct, "", &failingReader{cut}), Limits{})
	checkErr(t, err, e400(CodeIncompleteBody, 0))
}

func TestDecodeNoBody(t *testing.T) {
	r := newRequest("text/csv", "", nil)
	r.Body = nil
	_, err := Decode(r, t.TempDir(), Limits{})
	checkErr(t, err, e400(CodeEmptyBody, 0))
}

func TestDecodeServerError(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "does-not-exist")
	_, err := Decode(newRequest("text/csv", "", strings.NewReader("number\n1111111\n")), missing, Limits{})
	if err == nil {
		t.Fatal("expected an error for a missing temp dir")
	}
	var e *Error
	if errors.As(err, &e) {
		t.Fatalf("a temp file failure must not be a client *Error: %v", err)
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("error %v does not wrap the cause", err)
	}
}

func TestUploadEachAndClose(t *testing.T) {
	dir := t.TempDir()
	body := "number,region\n+3611111,HU\n+3622222,DE\n+3633333,AT\n"
	u, err := Decode(newRequest("text/csv", "", strings.NewReader(body)), dir, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if u.Count != 3 {
		t.Fatalf("Count = %d", u.Count)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("want one spool file, got %v", entries)
	}

	// Iterating twice gives the same rows.
	var first, second []Row
	if err := u.Each(func(r Row) error { first = append(first, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := u.Each(func(r Row) error { second = append(second, r); return nil }); err != nil {
		t.Fatal(err)
	}
	checkRows(t, second, first)

	// fn's error stops the iteration and comes back unchanged.
	stop := errors.New("stop")
	calls := 0
	err = u.Each(func(r Row) error {
		calls++
		if r.Line == 3 {
			return stop
		}
		return nil
	})
	if err != stop || calls != 2 {
		t.Fatalf("Each = %v after %d calls, want stop after 2", err, calls)
	}

	// Concurrent iterations (run with -race).
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			n := 0
			if err := u.Each(func(Row) error { n++; return nil }); err != nil || n != 3 {
				t.Errorf("concurrent Each: %d rows, %v", n, err)
			}
		})
	}
	wg.Wait()

	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if err := u.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	assertEmptyDir(t, dir)
	if err := u.Each(func(Row) error { return nil }); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Each after Close = %v, want os.ErrClosed", err)
	}
	if err := u.Each(nil); err == nil {
		t.Fatal("Each(nil) must fail")
	}
}

func TestZeroUpload(t *testing.T) {
	var u Upload
	if err := u.Each(func(Row) error { return nil }); err == nil {
		t.Fatal("Each on a zero Upload must fail")
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestErrorFormatting(t *testing.T) {
	e := badRequest(CodeMalformedCSV, 7, "the quoted field opened on line %d is never closed", 7)
	if got, want := e.Error(), "upload: malformed_csv (line 7): the quoted field opened on line 7 is never closed"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	e = emptyBody("the request body is empty")
	if got, want := e.Error(), "upload: empty_body: the request body is empty"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	wrapped := fmt.Errorf("import: %w", e)
	var target *Error
	if !errors.As(wrapped, &target) || target != e {
		t.Error("errors.As through a wrap failed")
	}
}

func TestLimitsDefaults(t *testing.T) {
	got := Limits{MaxRows: 5, MaxCellBytes: -1}.withDefaults()
	want := Limits{MaxBytes: 100 << 20, MaxRows: 5, MaxCellBytes: 1024, MaxLineBytes: 65536}
	if got != want {
		t.Fatalf("withDefaults = %+v, want %+v", got, want)
	}
}
