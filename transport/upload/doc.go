// Package upload decodes a bulk-import upload from an HTTP request into rows.
//
// An upload is CSV, JSON, or a multipart/form-data form carrying a CSV or
// JSON file. Decode never holds the upload in memory: it spools the request
// body (for a form: the file part) to a temporary file, bounded by
// [Limits].MaxBytes, then validates the whole file once with a streaming
// parser, counting rows and enforcing the limits, and returns an [Upload]
// whose rows can be iterated any number of times with [Upload.Each]. Memory
// use depends on the limits, not on the size of the upload.
//
// # Errors
//
// Every problem with the upload itself is reported as an [*Error] carrying
// the HTTP status to answer with, a machine-readable code (the Code*
// constants), a human-readable message and, when known, the 1-based line of
// the upload. Use errors.As to find it. Any other error returned by Decode or
// Each is a server-side failure (temporary file I/O) and deserves a 500.
//
// # Content types
//
// The request Content-Type decides the format; its parameters (charset) are
// ignored. text/csv and application/csv are CSV, application/json is JSON,
// multipart/form-data is a form; anything else, a missing Content-Type, or a
// Content-Encoding other than identity is answered 415.
//
// # CSV
//
// The first non-blank record is the header. The number column is the first
// header named number, phone, phone_number, msisdn or mobile; otherwise it is
// the first column that is not the region or ref column. The optional region
// and ref columns are the first headers named region and ref. Header names
// are compared trimmed and case-insensitively, with spaces and dashes read as
// underscores, so "Phone Number" names the number column.
//
// One exception protects header-less lists: when no header name is recognised
// and the first cell of the first record looks like a phone number (at least
// five digits and nothing but digits, spaces and + ( ) - . /), the upload has
// no header and that record is the first data row.
//
// The delimiter (comma, semicolon or tab) is the one occurring most often,
// outside quotes, in the header line; ties prefer comma, then semicolon. A
// UTF-8 byte order mark is skipped. Records end at LF, CRLF or a lone CR.
// Quoting follows RFC 4180, including line breaks inside quoted fields, with
// three leniencies: whitespace before an opening quote or after a closing
// quote is ignored, and a quote inside an unquoted field is an ordinary
// character. A quoted field that is never closed is malformed_csv, reported at
// the line where the quote was opened. Rows may have fewer fields than the
// header (missing cells are empty) or more (extra cells are ignored). A record
// whose fields are all empty or whitespace, such as a blank line or ",,", is
// skipped and is not a row.
//
// Encoding: CSV must be UTF-8. A UTF-16 byte order mark, or NUL bytes in the
// header, are rejected as invalid_encoding (UTF-16 exports from spreadsheets
// are the usual cause). The number, region and ref cells of every row must be
// valid UTF-8 without NUL bytes, or the upload is rejected as invalid_encoding
// with the line; replacing bytes would silently change phone numbers and
// caller references. Columns that are not used are not inspected, so a
// Latin-1 "name" column does not fail an upload.
//
// Limits.MaxCellBytes bounds the content of every cell (without surrounding
// quotes and leading whitespace); Limits.MaxLineBytes bounds every physical
// line, without its terminator.
//
// # JSON
//
// The body is one object: {"default_region":"HU","webhook_url":"...",
// "numbers":["..."]} or the same with "rows":[{"number":"...",
// "region":"HU","ref":"crm-1"}]. It is read with a streaming token walk, so a
// huge array never sits in memory. Unknown keys are ignored, at the top level
// and in row objects; duplicate top-level keys, a repeated number, region or
// ref key in a row object, values of the wrong type (with the row index and line), a row
// object without "number", and both "numbers" and "rows" in one upload are
// invalid_json. "region", "ref" and the top-level options may be null, which
// means absent. Syntax errors are malformed_json with the line and byte
// offset. The text must be UTF-8 (a UTF-8 byte order mark is skipped);
// invalid UTF-8 is rejected as invalid_encoding with the line. A single JSON
// token (string, number or literal) may be at most max(MaxLineBytes,
// 6*MaxCellBytes+2) bytes long, and ignored values may nest at most 64 deep;
// this keeps the decoder's buffer small.
//
// # Multipart forms
//
// The upload is the part named "file". Its own Content-Type decides the
// format when it is a CSV or JSON type; otherwise (text/plain,
// application/octet-stream, application/vnd.ms-excel as sent by browsers on
// Windows, or none) the file name extension decides: .csv and .txt are CSV,
// .json is JSON, and text/plain with any other name is CSV. Fields
// default_region and webhook_url may come before or after the file part; each
// may appear once and be at most MaxLineBytes long. Other parts are ignored.
// Limits.MaxBytes bounds the whole form, not just the file.
//
// # Options
//
// Options come from the query parameters default_region and webhook_url, for
// every content type. Top-level JSON fields and multipart fields of the same
// name override the query parameters. All options are trimmed of surrounding
// whitespace and are not validated here.
//
// # Rows
//
// Row.Number, Row.Region and Row.Ref are the cell texts with surrounding
// whitespace trimmed and nothing else changed. Row.Line is the line where the
// row starts in the uploaded file (for JSON, the line of the string or
// object); for a multipart upload lines count within the file part.
package upload
