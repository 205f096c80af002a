package upload

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
)

// bodyReader wraps the (size-limited) request body and remembers the first
// error other than io.EOF, so that failures can be attributed to the client
// (413, broken body) however a parser wrapped them.
type bodyReader struct {
	r     io.Reader
	err   error
	total int64
}

// Read reads from the body, recording errors.
func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.total += int64(n)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// failure turns a recorded body error into a client *Error, or returns nil
// when reading the body has not failed.
func (b *bodyReader) failure() error {
	if b.err == nil {
		return nil
	}
	if mbe, ok := errors.AsType[*http.MaxBytesError](b.err); ok {
		return payloadTooLarge(mbe.Limit).withCause(b.err)
	}
	return badRequest(CodeIncompleteBody, 0, "reading the request body failed after %d bytes", b.total).withCause(b.err)
}

// sourceReader hides everything but Read of r, and records r's errors so a
// copy error can be told apart from a write error.
type sourceReader struct {
	r   io.Reader
	err error
}

// Read reads from the source, recording errors other than io.EOF.
func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// spoolTo copies src to dst. A read failure is returned as the client error
// of body if there is one, or as readErr(err) otherwise; a write failure is
// a server error.
func spoolTo(dst io.Writer, src io.Reader, body *bodyReader, readErr func(error) error) (int64, error) {
	s := &sourceReader{r: src}
	n, err := io.Copy(dst, s)
	if err == nil {
		return n, nil
	}
	if ferr := body.failure(); ferr != nil {
		return n, ferr
	}
	if s.err != nil {
		return n, readErr(s.err)
	}
	return n, fmt.Errorf("upload: writing temporary file: %w", err)
}

// createSpool creates the temporary file holding the upload.
func createSpool(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, "upload-*.spool")
	if err != nil {
		return nil, fmt.Errorf("upload: creating temporary file: %w", err)
	}
	return f, nil
}
