package upload

import (
	"strings"
	"testing"
)

func TestDecodeCSV(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		ctype string // default text/csv
		query string
		lim   Limits
		want  []Row
		opts  Options
		err   *wantErr
	}{
		{
			name: "comma with region and ref",
			body: "number,region,ref\n+36301234567,HU,crm-1\n+4915112345678,DE,crm-2\n",
			want: []Row{{2, "+36301234567", "HU", "crm-1"}, {3, "+4915112345678", "DE", "crm-2"}},
		},
		{
			name: "semicolon",
			body: "phone;region\n+36 30 123 4567;HU\n06301234567;\n",
			want: []Row{{2, "+36 30 123 4567", "HU", ""}, {3, "06301234567", "", ""}},
		},
		{
			name: "tab",
			body: "msisdn\tref\n36301234567\tA1\n 36301234568 \t B2 \n",
			want: []Row{{2, "36301234567", "", "A1"}, {3, "36301234568", "", "B2"}},
		},
		{
			name: "delimiter counted outside quotes",
			body: "\"last, first\";number\n\"Doe, J\";+361234567\n",
			want: []Row{{2, "+361234567", "", ""}},
		},
		{
			name: "delimiter detected after leading blank lines",
			body: "\n  \nnumber\tregion\n+361234567\tHU\n",
			want: []Row{{4, "+361234567", "HU", ""}},
		},
		{
			name: "BOM and CRLF",
			body: "\ufeffnumber,ref\r\n+3611111,a\r\n+3622222,b\r\n",
			want: []Row{{2, "+3611111", "", "a"}, {3, "+3622222", "", "b"}},
		},
		{
			name: "lone CR line endings",
			body: "number\r1111111\r2222222",
			want: nums(2, "1111111", "2222222"),
		},
		{
			name: "no final newline",
			body: "number\n+3611111",
			want: nums(2, "+3611111"),
		},
		{
			name: "quoted newline counts lines",
			body: "ref,number\n\"multi\nline\",+36301234567\n\"x\",+36301234568\n",
			want: []Row{{2, "+36301234567", "", "multi\nline"}, {4, "+36301234568", "", "x"}},
		},
		{
			name: "quoted CRLF",
			body: "number,ref\r\n+3611111,\"a\r\nb\"\r\n+3622222,c\r\n",
			want: []Row{{2, "+3611111", "", "a\r\nb"}, {4, "+3622222", "", "c"}},
		},
		{
			name: "doubled quotes and delimiters in quotes",
			body: "number,ref\n\"+36 30\",\"a \"\"b\"\", c\"\n",
			want: []Row{{2, "+36 30", "", "a \"b\", c"}},
		},
		{
			name: "whitespace around quoted field",
			body: "number,ref\n  \"+3611111\"  ,  \" x, y \"  \n",
			want: []Row{{2, "+3611111", "", "x, y"}},
		},
		{
			name: "bare quote in unquoted field is literal",
			body: "number\n+36\"111111\n",
			want: nums(2, "+36\"111111"),
		},
		{
			name: "header aliases in any case",
			body: "Name, MOBILE ,Region,REF\nBob,+3630,hu,r1\n",
			want: []Row{{2, "+3630", "hu", "r1"}},
		},
		{
			name: "alias phone_number",
			body: "id,Phone_Number\n1,+3630\n",
			want: nums(2, "+3630"),
		},
		{
			name: "alias with space",
			body: "id;Phone Number\n1;+3630\n",
			want: nums(2, "+3630"),
		},
		{
			name: "alias msisdn",
			body: "x,MSISDN\n1,3630\n",
			want: nums(2, "3630"),
		},
		{
			name: "first alias wins",
			body: "phone,number\n1111111,2222222\n",
			want: nums(2, "1111111"),
		},
		{
			name: "no alias: first column",
			body: "contact,other\n+3630,x\n",
			want: nums(2, "+3630"),
		},
		{
			name: "no alias: first column that is not region or ref",
			body: "region,ref,tel\nHU,r1,+3630\n",
			want: []Row{{2, "+3630", "HU", "r1"}},
		},
		{
			name: "region only header",
			body: "region\nHU\n",
			err:  e400(CodeMissingNumberColumn, 1),
		},
		{
			name: "ragged rows",
			body: "number,region,ref\n+3611111\n+3622222,HU,r,extra,more\n+3633333,DE\n",
			want: []Row{{2, "+3611111", "", ""}, {3, "+3622222", "HU", "r"}, {4, "+3633333", "DE", ""}},
		},
		{
			name: "blank lines are skipped",
			body: "\n\nnumber,ref\n\n+3611111,a\n   \n,,\n\"\",\" \"\n+3622222,b\n\n",
			want: []Row{{5, "+3611111", "", "a"}, {9, "+3622222", "", "b"}},
		},
		{
			name: "empty number with other cells is a row",
			body: "number,ref\n,r1\n",
			want: []Row{{2, "", "", "r1"}},
		},
		{
			name: "headerless list",
			body: "+36301234567\n+36 30 123-4568\n\n(06) 30/123.4569\n",
			want: []Row{{1, "+36301234567", "", ""}, {2, "+36 30 123-4568", "", ""}, {4, "(06) 30/123.4569", "", ""}},
		},
		{
			name: "short numeric header is a header",
			body: "1234\n+36301234567\n",
			want: nums(2, "+36301234567"),
		},
		{
			name:  "query options trimmed",
			body:  "number\n+3611111\n",
			query: "default_region=+hu+&webhook_url=%20https://example.com/hook%20",
			want:  nums(2, "+3611111"),
			opts:  Options{DefaultRegion: "hu", WebhookURL: "https://example.com/hook"},
		},
		{
			name:  "application/csv with charset",
			ctype: "application/csv; charset=utf-8",
			body:  "number\n+3611111\n",
			want:  nums(2, "+3611111"),
		},
		{
			name:  "text/csv with parameters",
			ctype: "Text/CSV; charset=\"UTF-8\"; header=present",
			body:  "number\n+3611111\n",
			want:  nums(2, "+3611111"),
		},
		{
			name: "invalid UTF-8 in an unused column is accepted",
			body: "number,name\n+3611111,Zolt\xe1n\n",
			want: nums(2, "+3611111"),
		},
		{
			name: "invalid UTF-8 in the number",
			body: "number\n+3611111\n+36\xff22222\n",
			err:  e400(CodeInvalidEncoding, 3),
		},
		{
			name: "NUL in the ref",
			body: "number,ref\n+3611111,a\x00b\n",
			err:  e400(CodeInvalidEncoding, 2),
		},
		{
			name: "UTF-16 BOM",
			body: "\xff\xfen\x00u\x00m\x00\n\x00",
			err:  e400(CodeInvalidEncoding, 1),
		},
		{
			name: "UTF-16 without BOM",
			body: "n\x00u\x00m\x00b\x00e\x00r\x00\n\x001\x00\n\x00",
			err:  e400(CodeInvalidEncoding, 1),
		},
		{
			name: "unclosed quote reports the opening line",
			body: "number,ref\n+3611111,ok\n+3622222,\"never\nclosed\n+3633333,x\n",
			err:  e400(CodeMalformedCSV, 3),
		},
		{
			name: "unclosed quote after CRLF lines",
			body: "number\r\n1111111\r\n2222222\r\n\r\n\"3333333\r\n",
			err:  e400(CodeMalformedCSV, 5),
		},
		{
			name: "text after closing quote",
			body: "number\n1111111\n\"+3611111\"x\n",
			err:  e400(CodeMalformedCSV, 3),
		},
		{
			name: "cell too long",
			body: "number\n1234567890\n12345678901\n",
			lim:  Limits{MaxCellBytes: 10},
			err:  e400(CodeCellTooLong, 3),
		},
		{
			name: "cell too long in an unused column",
			body: "number,notes\n1234567,12345678901\n",
			lim:  Limits{MaxCellBytes: 10},
			err:  e400(CodeCellTooLong, 2),
		},
		{
			name: "quoted cell too long reports its first line",
			body: "number,ref\n1234567,\"12345\n678901\"\n",
			lim:  Limits{MaxCellBytes: 10},
			err:  e400(CodeCellTooLong, 2),
		},
		{
			name: "cell at the limit",
			body: "number\n1234567890\n",
			lim:  Limits{MaxCellBytes: 10},
			want: nums(2, "1234567890"),
		},
		{
			name: "line too long",
			body: "number,a,b,c\n1,2,3,4\n1234567,1234,1234,1234,1234\n",
			lim:  Limits{MaxLineBytes: 20},
			err:  e400(CodeLineTooLong, 3),
		},
		{
			name: "line too long in the header",
			body: strings.Repeat("x,", 20) + "\n",
			lim:  Limits{MaxLineBytes: 20},
			err:  e400(CodeLineTooLong, 1),
		},
		{
			name: "empty body",
			body: "",
			err:  e400(CodeEmptyBody, 0),
		},
		{
			name: "only blank lines",
			body: "\r\n \n\t\n",
			err:  e400(CodeEmptyBody, 0),
		},
		{
			name: "only a BOM",
			body: "\ufeff",
			err:  e400(CodeEmptyBody, 0),
		},
		{
			name: "header only",
			body: "number,region\n",
			err:  e422(CodeNoRows, 0),
		},
		{
			name: "header and blank lines",
			body: "number\n\n,\n  \n",
			err:  e422(CodeNoRows, 0),
		},
		{
			name: "max rows reached",
			body: "number\n1111111\n2222222\n",
			lim:  Limits{MaxRows: 2},
			want: nums(2, "1111111", "2222222"),
		},
		{
			name: "max rows exceeded",
			body: "number\n1111111\n\n2222222\n3333333\n",
			lim:  Limits{MaxRows: 2},
			err:  e422(CodeTooManyRows, 5),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ct := tc.ctype
			if ct == "" {
				ct = "text/csv"
			}
			u, rows, err := decodeRows(t, newRequest(ct, tc.query, strings.NewReader(tc.body)), tc.lim)
			checkErr(t, err, tc.err)
			if err != nil {
				return
			}
			checkRows(t, rows, tc.want)
			if u.Format != FormatCSV {
				t.Errorf("Format = %q", u.Format)
			}
			if u.Options != tc.opts {
				t.Errorf("Options = %+v, want %+v", u.Options, tc.opts)
			}
		})
	}
}
