package upload

import (
	"fmt"
	"net/http"
)

// Machine-readable codes carried by [Error.Code].
const (
	// CodeEmptyBody: the body (or the multipart file part) is empty or holds
	// only blank lines or whitespace. Status 400.
	CodeEmptyBody = "empty_body"
	// CodeNoRows: a header or JSON object but no data rows. Status 422.
	CodeNoRows = "no_rows"
	// CodeTooManyRows: more than Limits.MaxRows data rows. Status 422.
	CodeTooManyRows = "too_many_rows"
	// CodePayloadTooLarge: the body is larger than Limits.MaxBytes. Status 413.
	CodePayloadTooLarge = "payload_too_large"
	// CodeUnsupportedMediaType: the Content-Type, Content-Encoding or the
	// multipart file's type is not supported. Status 415.
	CodeUnsupportedMediaType = "unsupported_media_type"
	// CodeIncompleteBody: reading the request body failed before its end,
	// typically because the client went away. Status 400.
	CodeIncompleteBody = "incomplete_body"
	// CodeMalformedCSV: the CSV cannot be parsed (an unclosed quote, text
	// after a closing quote). Status 400.
	CodeMalformedCSV = "malformed_csv"
	// CodeMissingNumberColumn: the CSV header leaves no column for the
	// number (e.g. its only column is "region"). Status 400.
	CodeMissingNumberColumn = "missing_number_column"
	// CodeMalformedJSON: the JSON is not syntactically valid. Status 400.
	CodeMalformedJSON = "malformed_json"
	// CodeInvalidJSON: the JSON is valid but does not have the expected shape
	// (wrong types, duplicate keys, missing "number"). Status 400.
	CodeInvalidJSON = "invalid_json"
	// CodeMalformedMultipart: the multipart form cannot be parsed or has
	// duplicate or oversized fields. Status 400.
	CodeMalformedMultipart = "malformed_multipart"
	// CodeMissingFile: a multipart form without a "file" part. Status 400.
	CodeMissingFile = "missing_file"
	// CodeCellTooLong: a cell or JSON row value longer than
	// Limits.MaxCellBytes. Status 400.
	CodeCellTooLong = "cell_too_long"
	// CodeLineTooLong: a CSV line longer than Limits.MaxLineBytes. Status 400.
	CodeLineTooLong = "line_too_long"
	// CodeTokenTooLong: a JSON token longer than the JSON token bound (see the
	// package documentation). Status 400.
	CodeTokenTooLong = "token_too_long"
	// CodeInvalidEncoding: the upload is not UTF-8 (UTF-16, invalid UTF-8 or
	// NUL bytes where text is expected). Status 400.
	CodeInvalidEncoding = "invalid_encoding"
)

// Error is a client error: the upload cannot be accepted as sent. Status is
// the HTTP status to answer with, Code a machine-readable code (one of the
// Code* constants), Message a human-readable explanation, and Line the 1-based
// line of the upload the problem was found on when known (0 = n/a).
type Error struct {
	Status  int
	Code    string
	Message string
	Line    int

	err error // underlying cause, if any
}

// Error formats the error as "upload: CODE (line N): MESSAGE".
func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("upload: %s (line %d): %s", e.Code, e.Line, e.Message)
	}
	return fmt.Sprintf("upload: %s: %s", e.Code, e.Message)
}

// Unwrap returns the underlying cause (such as an *http.MaxBytesError or a
// *json.SyntaxError), or nil.
func (e *Error) Unwrap() error { return e.err }

// newError builds an *Error with a formatted message.
func newError(status int, code string, line int, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...), Line: line}
}

// badRequest builds a 400 *Error.
func badRequest(code string, line int, format string, args ...any) *Error {
	return newError(http.StatusBadRequest, code, line, format, args...)
}

// withCause records err as the cause of e and returns e.
func (e *Error) withCause(err error) *Error {
	e.err = err
	return e
}

// emptyBody is the error for an upload with nothing in it.
func emptyBody(format string, args ...any) *Error {
	return badRequest(CodeEmptyBody, 0, format, args...)
}

// noRows is the error for an upload with a header (or JSON object) but no rows.
func noRows(format string, args ...any) *Error {
	return newError(http.StatusUnprocessableEntity, CodeNoRows, 0, format, args...)
}

// tooManyRows is the error for the first row past lim.MaxRows.
func tooManyRows(line, max int) *Error {
	return newError(http.StatusUnprocessableEntity, CodeTooManyRows, line,
		"the upload has more than %d rows", max)
}

// unsupported is a 415 error.
func unsupported(format string, args ...any) *Error {
	return newError(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType, 0, format, args...)
}

// payloadTooLarge is a 413 error.
func payloadTooLarge(max int64) *Error {
	return newError(http.StatusRequestEntityTooLarge, CodePayloadTooLarge, 0,
		"the request body is larger than %d bytes", max)
}
