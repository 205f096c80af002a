package upload

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"
)

// newRequest builds a POST request with the given Content-Type (none when
// empty), raw query and body.
func newRequest(contentType, query string, body io.Reader) *http.Request {
	target := "/imports"
	if query != "" {
		target += "?" + query
	}
	r := httptest.NewRequest(http.MethodPost, target, body)
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

// decodeRows decodes r into a fresh temporary directory and collects its
// rows. It checks that the Upload cleans up after itself.
func decodeRows(t testing.TB, r *http.Request, lim Limits) (*Upload, []Row, error) {
	t.Helper()
	dir := t.TempDir()
	u, err := Decode(r, dir, lim)
	if err != nil {
		if u != nil {
			t.Fatalf("Decode returned an Upload with error %v", err)
		}
		assertEmptyDir(t, dir)
		return nil, nil, err
	}
	var rows []Row
	if err := u.Each(func(row Row) error { rows = append(rows, row); return nil }); err != nil {
		t.Fatalf("Each: %v", err)
	}
	if len(rows) != u.Count {
		t.Fatalf("Each delivered %d rows, Count is %d", len(rows), u.Count)
	}
	if err := u.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	assertEmptyDir(t, dir)
	return u, rows, nil
}

// assertEmptyDir fails unless dir holds no files.
func assertEmptyDir(t testing.TB, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("temporary files left behind in %s: %v", dir, entries)
	}
}

// wantErr describes an expected *Error; Line -1 means "any line".
type wantErr struct {
	Status int
	Code   string
	Line   int
	Msg    string // substring of the message, if set
}

// checkErr compares err with want.
func checkErr(t testing.TB, err error, want *wantErr) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("got no error, want %s (%d)", want.Code, want.Status)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if e.Status != want.Status || e.Code != want.Code || (want.Line >= 0 && e.Line != want.Line) {
		t.Fatalf("got %d %s line %d (%q), want %d %s line %d", e.Status, e.Code, e.Line, e.Message, want.Status, want.Code, want.Line)
	}
	if want.Msg != "" && !strings.Contains(e.Message, want.Msg) {
		t.Fatalf("message %q does not contain %q", e.Message, want.Msg)
	}
}

// checkRows compares rows with want.
func checkRows(t testing.TB, got, want []Row) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows:\n got %#v\nwant %#v", got, want)
	}
}

// nums builds rows holding only a number, on consecutive lines from first.
func nums(first int, numbers ...string) []Row {
	rows := make([]Row, len(numbers))
	for i, n := range numbers {
		rows[i] = Row{Line: first + i, Number: n}
	}
	return rows
}

// e400 and friends shorten expectations.
func e400(code string, line int) *wantErr { return &wantErr{Status: 400, Code: code, Line: line} }
func e413() *wantErr                      { return &wantErr{Status: 413, Code: CodePayloadTooLarge} }
func e415() *wantErr                      { return &wantErr{Status: 415, Code: CodeUnsupportedMediaType} }
func e422(code string, line int) *wantErr { return &wantErr{Status: 422, Code: code, Line: line} }
