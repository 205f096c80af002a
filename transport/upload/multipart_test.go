package upload

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/textproto"
	"strings"
	"testing"
)

// formPart is one part of a test form: a field, or the file when filename or
// ctype is set.
type formPart struct {
	name, filename, ctype, body string
}

// buildForm encodes parts as multipart/form-data and returns the body and
// its Content-Type.
func buildForm(t testing.TB, parts ...formPart) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		disp := fmt.Sprintf("form-data; name=%q", p.name)
		if p.filename != "" {
			disp += fmt.Sprintf("; filename=%q", p.filename)
		}
		h.Set("Content-Disposition", disp)
		if p.ctype != "" {
			h.Set("Content-Type", p.ctype)
		}
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, p.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, mw.FormDataContentType()
}

func TestDecodeMultipart(t *testing.T) {
	const csvBody = "number,ref\n+3611111,a\n+3622222,b\n"
	csvRows := []Row{{2, "+3611111", "", "a"}, {3, "+3622222", "", "b"}}
	const jsonBody = "{\"default_region\":\"AT\",\n\"numbers\":[\"+3611111\"]}"

	tests := []struct {
		name   string
		parts  []formPart
		query  string
		lim    Limits
		format string
		want   []Row
		opts   Options
		err    *wantErr
	}{
		{
			name: "CSV with fields before the file",
			parts: []formPart{
				{name: "default_region", body: " HU "},
				{name: "webhook_url", body: "https://example.com/h"},
				{name: "file", filename: "list.csv", ctype: "text/csv", body: csvBody},
			},
			format: FormatCSV, want: csvRows,
			opts: Options{DefaultRegion: "HU", WebhookURL: "https://example.com/h"},
		},
		{
			name: "CSV with fields after the file",
			parts: []formPart{
				{name: "file", filename: "list.csv", ctype: "text/csv", body: csvBody},
				{name: "default_region", body: "HU"},
				{name: "webhook_url", body: "https://example.com/h"},
			},
			format: FormatCSV, want: csvRows,
			opts: Options{DefaultRegion: "HU", WebhookURL: "https://example.com/h"},
		},
		{
			name: "JSON with fields after the file override JSON and query",
			parts: []formPart{
				{name: "file", filename: "list.json", ctype: "application/json", body: jsonBody},
				{name: "webhook_url", body: "https://form.example/"},
			},
			query:  "webhook_url=https://q.example/&default_region=DE",
			format: FormatJSON, want: nums(2, "+3611111"),
			opts: Options{DefaultRegion: "AT", WebhookURL: "https://form.example/"},
		},
		{
			name: "JSON with fields before the file",
			parts: []formPart{
				{name: "default_region", body: "HU"},
				{name: "file", filename: "upload.bin", ctype: "application/json", body: jsonBody},
			},
			format: FormatJSON, want: nums(2, "+3611111"),
			opts: Options{DefaultRegion: "AT"},
		},
		{
			name:   "JSON by extension",
			parts:  []formPart{{name: "file", filename: "LIST.JSON", ctype: "application/octet-stream", body: jsonBody}},
			format: FormatJSON, want: nums(2, "+3611111"), opts: Options{DefaultRegion: "AT"},
		},
		{
			name:   "CSV by extension without Content-Type",
			parts:  []formPart{{name: "file", filename: "list.csv", body: csvBody}},
			format: FormatCSV, want: csvRows,
		},
		{
			name:   "CSV sent as vnd.ms-excel by Windows browsers",
			parts:  []formPart{{name: "file", filename: "list.csv", ctype: "application/vnd.ms-excel", body: csvBody}},
			format: FormatCSV, want: csvRows,
		},
		{
			name:   ".txt is CSV",
			parts:  []formPart{{name: "file", filename: "list.txt", ctype: "text/plain", body: "+3611111\n+3622222\n"}},
			format: FormatCSV, want: nums(1, "+3611111", "+3622222"),
		},
		{
			name:   "text/plain with another name is CSV",
			parts:  []formPart{{name: "file", filename: "list", ctype: "text/plain; charset=utf-8", body: csvBody}},
			format: FormatCSV, want: csvRows,
		},
		{
			name: "other parts are ignored",
			parts: []formPart{
				{name: "comment", body: strings.Repeat("x", 100)},
				{name: "file", filename: "list.csv", body: csvBody},
				{name: "attachment", filename: "a.png", ctype: "image/png", body: "\x89PNG"},
			},
			format: FormatCSV, want: csvRows,
		},
		{
			name:  "unsupported file type",
			parts: []formPart{{name: "file", filename: "list.xlsx", ctype: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", body: "PK"}},
			err:   e415(),
		},
		{
			name:  "missing file",
			parts: []formPart{{name: "default_region", body: "HU"}},
			err:   e400(CodeMissingFile, 0),
		},
		{
			name: "two files",
			parts: []formPart{
				{name: "file", filename: "a.csv", body: csvBody},
				{name: "file", filename: "b.csv", body: csvBody},
			},
			err: e400(CodeMalformedMultipart, 0),
		},
		{
			name: "duplicate field",
			parts: []formPart{
				{name: "default_region", body: "HU"},
				{name: "file", filename: "a.csv", body: csvBody},
				{name: "default_region", body: "DE"},
			},
			err: e400(CodeMalformedMultipart, 0),
		},
		{
			name: "field too long",
			parts: []formPart{
				{name: "webhook_url", body: strings.Repeat("x", 101)},
				{name: "file", filename: "a.csv", body: csvBody},
			},
			lim: Limits{MaxLineBytes: 100},
			err: e400(CodeMalformedMultipart, 0),
		},
		{
			name:  "empty file",
			parts: []formPart{{name: "file", filename: "a.csv", body: ""}},
			err:   e400(CodeEmptyBody, 0),
		},
		{
			name:  "CSV errors count lines within the file",
			parts: []formPart{{name: "default_region", body: "HU"}, {name: "file", filename: "a.csv", body: "number\n1111111\n\"2222222\n"}},
			err:   e400(CodeMalformedCSV, 3),
		},
		{
			name:  "JSON errors in a form",
			parts: []formPart{{name: "file", filename: "a.json", body: `{"numbers":[1]}`}},
			err:   e400(CodeInvalidJSON, 1),
		},
		{
			name:  "file larger than MaxBytes",
			parts: []formPart{{name: "file", filename: "a.csv", body: "number\n" + strings.Repeat("+3611111\n", 200)}},
			lim:   Limits{MaxBytes: 1000},
			err:   e413(),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, ct := buildForm(t, tc.parts...)
			r := newRequest(ct, tc.query, io.NopCloser(body)) // no ContentLength: limits apply while reading
			u, rows, err := decodeRows(t, r, tc.lim)
			checkErr(t, err, tc.err)
			if err != nil {
				return
			}
			checkRows(t, rows, tc.want)
			if u.Format != tc.format {
				t.Errorf("Format = %q, want %q", u.Format, tc.format)
			}
			if u.Options != tc.opts {
				t.Errorf("Options = %+v, want %+v", u.Options, tc.opts)
			}
		})
	}
}

func TestDecodeMultipartMalformed(t *testing.T) {
	full, ct := buildForm(t, formPart{name: "file", filename: "a.csv", body: "number\n+3611111\n"})
	tests := []struct {
		name, ctype, body string
		err               *wantErr
	}{
		{"no boundary", "multipart/form-data", full.String(), e400(CodeMalformedMultipart, 0)},
		{"wrong boundary", "multipart/form-data; boundary=nope", full.String(), e400(CodeMalformedMultipart, 0)},
		{"truncated in the file", ct, full.String()[:full.Len()/2], &wantErr{400, CodeMalformedMultipart, 0, "ended before"}},
		{"truncated before the end boundary", ct, strings.TrimSuffix(full.String(), "--\r\n"), e400(CodeMalformedMultipart, 0)},
		{"empty", ct, "", e400(CodeEmptyBody, 0)},
		{"truncated in a later part's header", ct, strings.TrimSuffix(full.String(), "--\r\n") + "\r\nContent-Disposition: form-da", e400(CodeMalformedMultipart, 0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := decodeRows(t, newRequest(tc.ctype, "", strings.NewReader(tc.body)), Limits{})
			checkErr(t, err, tc.err)
		})
	}
}
