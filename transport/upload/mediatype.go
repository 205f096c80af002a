package upload

import (
	"mime"
	"net/http"
	"path"
	"strings"
)

// Formats reported by [Upload].Format.
const (
	FormatCSV  = "csv"
	FormatJSON = "json"
)

// formatMultipart is the internal request kind of a multipart form; the
// upload's format is then decided by its file part.
const formatMultipart = "multipart"

// requestKind returns the request's format (FormatCSV, FormatJSON or
// formatMultipart) and, for a form, its boundary. It answers 415 for a
// missing or unsupported Content-Type and for any Content-Encoding other than
// identity.
func requestKind(r *http.Request) (kind, boundary string, err error) {
	if ce := strings.TrimSpace(r.Header.Get("Content-Encoding")); ce != "" && !strings.EqualFold(ce, "identity") {
		return "", "", unsupported("Content-Encoding %q is not supported; send the upload uncompressed", ce)
	}
	ct := r.Header.Get("Content-Type")
	if strings.TrimSpace(ct) == "" {
		return "", "", unsupported("a Content-Type is required: text/csv, application/json or multipart/form-data")
	}
	mt, params, perr := mime.ParseMediaType(ct)
	if perr != nil {
		return "", "", unsupported("invalid Content-Type %q", ct).withCause(perr)
	}
	if mt == "multipart/form-data" {
		return formatMultipart, params["boundary"], nil
	}
	if f, ok := formatOf(mt); ok {
		return f, "", nil
	}
	return "", "", unsupported("Content-Type %q is not supported: use text/csv, application/json or multipart/form-data", mt)
}

// formatOf maps a (lower-case, parameter-free) media type to a format.
func formatOf(mediaType string) (string, bool) {
	switch mediaType {
	case "text/csv", "application/csv":
		return FormatCSV, true
	case "application/json":
		return FormatJSON, true
	}
	return "", false
}

// filePartFormat decides the format of a multipart file part from its
// Content-Type and, when that is generic or missing, its file name.
func filePartFormat(contentType, filename string) (string, bool) {
	mt := ""
	if contentType != "" {
		if parsed, _, err := mime.ParseMediaType(contentType); err == nil {
			mt = parsed
		}
	}
	if f, ok := formatOf(mt); ok {
		return f, true
	}
	switch strings.ToLower(path.Ext(filename)) {
	case ".csv", ".txt":
		return FormatCSV, true
	case ".json":
		return FormatJSON, true
	}
	if mt == "text/plain" {
		return FormatCSV, true
	}
	return "", false
}
