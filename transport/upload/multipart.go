package upload

import (
	"bytes"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
)

// multipartFile is what spoolMultipart found in a form.
type multipartFile struct {
	format string
	size   int64
	opts   optionSet
}

// spoolMultipart reads a multipart/form-data body, copies its "file" part to
// dst and collects the default_region and webhook_url fields, wherever they
// appear. Other parts are skipped.
func spoolMultipart(dst io.Writer, in io.Reader, body *bodyReader, boundary string, lim Limits) (multipartFile, error) {
	var res multipartFile
	if boundary == "" {
		return res, badRequest(CodeMalformedMultipart, 0, "the multipart Content-Type has no boundary parameter")
	}
	malformed := func(err error) error {
		if ferr := body.failure(); ferr != nil {
			return ferr
		}
		msg := "the multipart body is malformed"
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			msg = "the multipart body ended before its closing boundary"
		}
		return badRequest(CodeMalformedMultipart, 0, "%s", msg).withCause(err)
	}

	end := newEndFinder(in, "--"+boundary+"--")
	mr := multipart.NewReader(end, boundary)
	seenFile := false
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			if !end.found {
				// NextPart also says io.EOF when the body stops inside a
				// part's header.
				return res, malformed(io.ErrUnexpectedEOF)
			}
			break
		}
		if err != nil {
			return res, malformed(err)
		}
		switch name := p.FormName(); name {
		case "file":
			if seenFile {
				return res, badRequest(CodeMalformedMultipart, 0, "the form has more than one \"file\" part")
			}
			seenFile = true
			format, ok := filePartFormat(p.Header.Get("Content-Type"), p.FileName())
			if !ok {
				return res, unsupported("the uploaded file %q (Content-Type %q) is neither CSV nor JSON; send a .csv or .json file",
					p.FileName(), p.Header.Get("Content-Type"))
			}
			res.format = format
			if res.size, err = spoolTo(dst, p, body, malformed); err != nil {
				return res, err
			}
		case "default_region", "webhook_url":
			v, err := readField(p, lim.MaxLineBytes)
			if err != nil {
				if ferr := body.failure(); ferr != nil {
					return res, ferr
				}
				if e, ok := errors.AsType[*Error](err); ok {
					return res, e
				}
				return res, malformed(err)
			}
			if name == "default_region" {
				if res.opts.hasRegion {
					return res, badRequest(CodeMalformedMultipart, 0, "the form has more than one %q field", name)
				}
				res.opts.region, res.opts.hasRegion = v, true
			} else {
				if res.opts.hasWebhook {
					return res, badRequest(CodeMalformedMultipart, 0, "the form has more than one %q field", name)
				}
				res.opts.webhook, res.opts.hasWebhook = v, true
			}
		}
		if err := p.Close(); err != nil {
			return res, malformed(err)
		}
	}
	if !seenFile {
		return res, badRequest(CodeMissingFile, 0, "the form has no \"file\" part")
	}
	return res, nil
}

// readField reads a small form field, at most max bytes, and trims it.
func readField(p *multipart.Part, max int) (string, error) {
	b, err := io.ReadAll(io.LimitReader(p, int64(max)+1))
	if err != nil {
		return "", err
	}
	if len(b) > max {
		return "", newError(http.StatusBadRequest, CodeMalformedMultipart, 0,
			"the form field %q is longer than %d bytes", p.FormName(), max)
	}
	return strings.TrimSpace(string(b)), nil
}

// endFinder passes a reader through and notes whether the final multipart
// delimiter has gone by, which mime/multipart does not tell.
type endFinder struct {
	r     io.Reader
	pat   []byte
	tail  []byte // the last len(pat)-1 bytes read, and room to join more
	found bool
}

// newEndFinder returns an endFinder looking for pattern in r.
func newEndFinder(r io.Reader, pattern string) *endFinder {
	return &endFinder{r: r, pat: []byte(pattern), tail: make([]byte, 0, 2*len(pattern))}
}

// Read reads from the underlying reader, scanning what passes.
func (f *endFinder) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if n > 0 && !f.found {
		f.scan(p[:n])
	}
	return n, err
}

// scan looks for the pattern in b and across the join with earlier bytes.
func (f *endFinder) scan(b []byte) {
	k := len(f.pat) - 1
	joined := append(f.tail, b[:min(k, len(b))]...)
	if bytes.Contains(joined, f.pat) || bytes.Contains(b, f.pat) {
		f.found = true
		return
	}
	if len(b) >= k {
		f.tail = append(f.tail[:0], b[len(b)-k:]...)
	} else {
		f.tail = append(f.tail[:0], joined[max(0, len(joined)-k):]...)
	}
}
