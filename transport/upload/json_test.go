package upload

import (
	"strings"
	"testing"
)

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		ctype string // default application/json
		query string
		lim   Limits
		want  []Row
		opts  Options
		err   *wantErr
	}{
		{
			name: "numbers shape with options",
			body: `{"default_region":" HU ","webhook_url":"https://example.com/h","numbers":["+3611111"," +3622222 "]}`,
			want: []Row{{1, "+3611111", "", ""}, {1, "+3622222", "", ""}},
			opts: Options{DefaultRegion: "HU", WebhookURL: "https://example.com/h"},
		},
		{
			name: "numbers shape pretty printed has lines",
			body: "{\n  \"numbers\": [\n    \"+3611111\",\n\n    \"+3622222\"\n  ]\n}\n",
			want: []Row{{3, "+3611111", "", ""}, {5, "+3622222", "", ""}},
		},
		{
			name: "rows shape",
			body: "{\"rows\":[\n{\"number\":\"+3611111\",\"region\":\"HU\",\"ref\":\"crm-1\"},\n" +
				"{\"ref\":\"crm-2\",\"number\":\" +4915112345678 \",\"extra\":{\"deep\":[1,2,{\"x\":null}]}},\n" +
				"{\"number\":\"+3633333\",\"region\":null,\"ref\":null}\n]}",
			want: []Row{{2, "+3611111", "HU", "crm-1"}, {3, "+4915112345678", "", "crm-2"}, {4, "+3633333", "", ""}},
		},
		{
			name:  "BOM and charset",
			body:  "\ufeff{\"numbers\":[\"+3611111\"]}",
			ctype: "application/json; charset=utf-8",
			want:  nums(1, "+3611111"),
		},
		{
			name: "unknown top-level keys are ignored",
			body: `{"version":2,"meta":{"a":[1,{"b":true}],"c":"d"},"numbers":["+3611111"],"tail":[[[]]],"n":null}`,
			want: nums(1, "+3611111"),
		},
		{
			name:  "query options without JSON options",
			body:  `{"numbers":["+3611111"]}`,
			query: "default_region=DE&webhook_url=https://q.example/",
			want:  nums(1, "+3611111"),
			opts:  Options{DefaultRegion: "DE", WebhookURL: "https://q.example/"},
		},
		{
			name:  "JSON options override query options",
			body:  `{"default_region":"HU","webhook_url":null,"numbers":["+3611111"]}`,
			query: "default_region=DE&webhook_url=https://q.example/",
			want:  nums(1, "+3611111"),
			opts:  Options{DefaultRegion: "HU", WebhookURL: "https://q.example/"},
		},
		{
			name: "number given as a JSON number",
			body: "{\"numbers\":[\n\"+3611111\",\n3622222]}",
			err:  &wantErr{400, CodeInvalidJSON, 3, "numbers[1] (row 2) must be a string, not a number"},
		},
		{
			name: "nested array in numbers",
			body: `{"numbers":["+3611111",["+3622222"]]}`,
			err:  &wantErr{400, CodeInvalidJSON, 1, "numbers[1] (row 2) must be a string, not an array"},
		},
		{
			name: "null in numbers",
			body: `{"numbers":[null]}`,
			err:  &wantErr{400, CodeInvalidJSON, 1, "numbers[0] (row 1)"},
		},
		{
			name: "row that is a string",
			body: `{"rows":["+3611111"]}`,
			err:  &wantErr{400, CodeInvalidJSON, 1, "rows[0] (row 1) must be an object, not a string"},
		},
		{
			name: "row number as a JSON number",
			body: "{\"rows\":[{\"number\":\"1111111\"},\n{\"number\":2222222}]}",
			err:  &wantErr{400, CodeInvalidJSON, 2, "rows[1].number (row 2) must be a string, not a number"},
		},
		{
			name: "row number null",
			body: `{"rows":[{"number":null}]}`,
			err:  &wantErr{400, CodeInvalidJSON, 1, "rows[0].number (row 1) must be a string, not null"},
		},
		{
			name: "row region as an object",
			body: `{"rows":[{"number":"1111111","region":{"code":"HU"}}]}`,
			err:  &wantErr{400, CodeInvalidJSON, 1, "rows[0].region (row 1) must be a string, not an object"},
		},
		{
			name: "row ref as a boolean",
			body: `{"rows":[{"number":"1111111","ref":true}]}`,
			err:  &wantErr{400, CodeInvalidJSON, 1, "not a boolean"},
		},
		{
			name: "row without number",
			body: "{\"rows\":[\n{\"region\":\"HU\"}]}",
			err:  &wantErr{400, CodeInvalidJSON, 2, "rows[0] (row 1) has no \"number\""},
		},
		{
			name: "duplicate key in a row",
			body: `{"rows":[{"number":"1","number":"2"}]}`,
			err:  &wantErr{400, CodeInvalidJSON, 1, "duplicate key \"number\""},
		},
		{
			name: "numbers is an object",
			body: `{"numbers":{"a":"1"}}`,
			err:  &wantErr{400, CodeInvalidJSON, 1, "\"numbers\" must be an array, not an object"},
		},
		{
			name: "default_region is a number",
			body: `{"default_region":36,"numbers":["1"]}`,
			err:  &wantErr{400, CodeInvalidJSON, 1, "\"default_region\" must be a string"},
		},
		{
			name: "duplicate top-level key",
			body: "{\"numbers\":[\"1111111\"],\n\"default_region\":\"HU\",\n\"default_region\":\"DE\"}",
			err:  &wantErr{400, CodeInvalidJSON, 3, "duplicate key \"default_region\""},
		},
		{
			name: "duplicate unknown top-level key",
			body: `{"x":1,"numbers":["1111111"],"x":2}`,
			err:  &wantErr{400, CodeInvalidJSON, 1, "duplicate key \"x\""},
		},
		{
			name: "numbers and rows",
			body: `{"numbers":["1111111"],"rows":[{"number":"2222222"}]}`,
			err:  &wantErr{400, CodeInvalidJSON, 1, "both"},
		},
		{
			name: "top-level array",
			body: `["1111111"]`,
			err:  &wantErr{400, CodeInvalidJSON, 1, "must be an object, not an array"},
		},
		{
			name: "top-level string",
			body: `"1111111"`,
			err:  &wantErr{400, CodeInvalidJSON, 1, "not a string"},
		},
		{
			name: "empty numbers",
			body: `{"numbers":[]}`,
			err:  e422(CodeNoRows, 0),
		},
		{
			name: "no numbers or rows",
			body: `{"default_region":"HU"}`,
			err:  e422(CodeNoRows, 0),
		},
		{
			name: "empty body",
			body: "",
			err:  e400(CodeEmptyBody, 0),
		},
		{
			name: "whitespace only",
			body: " \n\t ",
			err:  e400(CodeEmptyBody, 0),
		},
		{
			name: "trailing comma",
			body: "{\"numbers\":[\n\"1111111\",\n]}",
			err:  &wantErr{400, CodeMalformedJSON, 3, "byte offset 24"},
		},
		{
			name: "missing colon",
			body: "{\n\"numbers\" [\"1\"]}",
			err:  e400(CodeMalformedJSON, 2),
		},
		{
			name: "bad literal",
			body: "{\"numbers\":[\"1\"],\n\"x\": tru }",
			err:  e400(CodeMalformedJSON, 2),
		},
		{
			name: "unterminated string",
			body: "{\"numbers\":[\"1\",\n\"2",
			err:  e400(CodeMalformedJSON, 2),
		},
		{
			name: "truncated",
			body: "{\"numbers\":[\"1111111\",\n\"2222222\"",
			err:  &wantErr{400, CodeMalformedJSON, 2, "ends before"},
		},
		{
			name: "trailing data",
			body: "{\"numbers\":[\"1111111\"]}\n{}",
			err:  &wantErr{400, CodeMalformedJSON, 2, "after the JSON object"},
		},
		{
			name: "invalid UTF-8",
			body: "{\"numbers\":[\n\"1111111\",\n\"22\xff22\"]}",
			err:  e400(CodeInvalidEncoding, 3),
		},
		{
			name: "truncated UTF-8 at the end",
			body: "{\"numbers\":[\"1111111\xe2\x82",
			err:  e400(CodeInvalidEncoding, 1),
		},
		{
			name: "UTF-8 in values is fine",
			body: `{"rows":[{"number":"+3611111","ref":"Zoltán – ✓"}]}`,
			want: []Row{{1, "+3611111", "", "Zoltán – ✓"}},
		},
		{
			name: "NUL escape in a value",
			body: `{"numbers":["11\u000011"]}`,
			err:  e400(CodeInvalidEncoding, 1),
		},
		{
			name: "cell too long",
			body: "{\"rows\":[{\"number\":\"1\"},\n{\"number\":\"1\",\"ref\":\"12345678901\"}]}",
			lim:  Limits{MaxCellBytes: 10},
			err:  &wantErr{400, CodeCellTooLong, 2, "rows[1] (row 2): ref is longer than 10 bytes"},
		},
		{
			name: "token too long",
			body: `{"numbers":["1"],"junk":"` + strings.Repeat("x", 200) + `"}`,
			lim:  Limits{MaxCellBytes: 10, MaxLineBytes: 100},
			err:  e400(CodeTokenTooLong, 1),
		},
		{
			name: "number token too long",
			body: `{"numbers":["1"],"junk":` + strings.Repeat("9", 200) + `}`,
			lim:  Limits{MaxCellBytes: 10, MaxLineBytes: 100},
			err:  e400(CodeTokenTooLong, 1),
		},
		{
			name: "escaped cell at the limit fits the token bound",
			body: `{"numbers":["` + strings.Repeat(`\u0031`, 10) + `"]}`,
			lim:  Limits{MaxCellBytes: 10, MaxLineBytes: 20},
			want: nums(1, "1111111111"),
		},
		{
			name: "deeply nested ignored value",
			body: `{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `,"numbers":["1"]}`,
			err:  &wantErr{400, CodeInvalidJSON, 1, "nested"},
		},
		{
			name: "max rows exceeded",
			body: "{\"numbers\":[\"1\",\"2\",\n\"3\"]}",
			lim:  Limits{MaxRows: 2},
			err:  e422(CodeTooManyRows, 2),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ct := tc.ctype
			if ct == "" {
				ct = "application/json"
			}
			u, rows, err := decodeRows(t, newRequest(ct, tc.query, strings.NewReader(tc.body)), tc.lim)
			checkErr(t, err, tc.err)
			if err != nil {
				return
			}
			checkRows(t, rows, tc.want)
			if u.Format != FormatJSON {
				t.Errorf("Format = %q", u.Format)
			}
			if u.Options != tc.opts {
				t.Errorf("Options = %+v, want %+v", u.Options, tc.opts)
			}
		})
	}
}
