package upload

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
)

// Row is one data row of an upload. Number, Region and Ref are the uploaded
// texts with surrounding whitespace trimmed and nothing else changed; Region
// and Ref may be "". Line is the 1-based line of the upload where the row
// starts.
type Row struct {
	Line   int
	Number string
	Region string
	Ref    string
}

// Options are the upload-wide settings, from the query parameters
// default_region and webhook_url, overridden by top-level JSON fields or
// multipart fields of the same names. Both are trimmed but not validated.
// NoLookup comes from the query parameter lookup=false (or 0, no, off): the
// import's numbers skip the third-party lookup stage.
type Options struct {
	DefaultRegion string
	WebhookURL    string
	NoLookup      bool
}

// optionSet holds the options found in a body, with whether each was present.
type optionSet struct {
	region, webhook       string
	hasRegion, hasWebhook bool
}

// apply overrides o with the options present in s.
func (s optionSet) apply(o *Options) {
	if s.hasRegion {
		o.DefaultRegion = s.region
	}
	if s.hasWebhook {
		o.WebhookURL = s.webhook
	}
}

// Upload is a decoded upload, spooled to a temporary file. Its rows are
// numbered 1..Count in input order and can be iterated any number of times,
// also concurrently, with Each. Close removes the temporary file.
type Upload struct {
	// Options are the upload-wide options.
	Options Options
	// Count is the number of data rows.
	Count int
	// Format is FormatCSV or FormatJSON.
	Format string

	file *os.File
	size int64
	lim  Limits

	mu     sync.Mutex
	closed bool
}

// Decode reads the body of r into a temporary file in tempDir (os.TempDir()
// when empty), bounded by lim.MaxBytes with http.MaxBytesReader semantics,
// validates the whole upload once, counting its rows and enforcing lim, and
// returns the Upload. Problems with the upload are returned as an *Error (413
// for a body larger than lim.MaxBytes, also when the caller wrapped r.Body in
// its own http.MaxBytesReader); any other error is a server-side failure. On
// success the caller must Close the Upload. Decode does not close r.Body.
//
// Decode has no http.ResponseWriter, so it cannot tell the server to close
// the connection after an oversized body; a handler that wants that wraps
// r.Body in http.MaxBytesReader(w, r.Body, lim.MaxBytes) before calling.
func Decode(r *http.Request, tempDir string, lim Limits) (*Upload, error) {
	lim = lim.withDefaults()
	kind, boundary, err := requestKind(r)
	if err != nil {
		return nil, err
	}
	if r.ContentLength > lim.MaxBytes {
		return nil, payloadTooLarge(lim.MaxBytes)
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil, emptyBody("the request body is empty")
	}
	opts := queryOptions(r)

	body := &bodyReader{r: http.MaxBytesReader(nil, r.Body, lim.MaxBytes)}
	in := bufio.NewReaderSize(body, 64<<10)
	if _, err := in.Peek(1); err != nil {
		if ferr := body.failure(); ferr != nil {
			return nil, ferr
		}
		return nil, emptyBody("the request body is empty")
	}

	f, err := createSpool(tempDir)
	if err != nil {
		return nil, err
	}
	u := &Upload{file: f, lim: lim}
	keep := false
	defer func() {
		if !keep {
			_ = u.Close()
		}
	}()

	switch kind {
	case formatMultipart:
		part, err := spoolMultipart(f, in, body, boundary, lim)
		if err != nil {
			return nil, err
		}
		u.Format, u.size = part.format, part.size
		part.opts.apply(&opts)
	default:
		n, err := spoolTo(f, in, body, func(err error) error {
			return badRequest(CodeIncompleteBody, 0, "reading the request body failed").withCause(err)
		})
		if err != nil {
			return nil, err
		}
		u.Format, u.size = kind, n
	}
	if u.size == 0 {
		return nil, emptyBody("the uploaded file is empty")
	}

	res, err := u.walk(nil)
	if err != nil {
		return nil, err
	}
	res.opts.apply(&opts)
	u.Options = opts
	u.Count = res.count
	keep = true
	return u, nil
}

// queryOptions reads the options from the query parameters.
func queryOptions(r *http.Request) Options {
	if r.URL == nil {
		return Options{}
	}
	q := r.URL.Query()
	return Options{
		DefaultRegion: strings.TrimSpace(q.Get("default_region")),
		WebhookURL:    strings.TrimSpace(q.Get("webhook_url")),
		NoLookup:      isOff(q.Get("lookup")),
	}
}

// isOff reports a query flag turned off.
func isOff(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "false", "0", "no", "off":
		return true
	}
	return false
}

// walkResult is what one pass over the spooled upload found.
type walkResult struct {
	count int
	opts  optionSet
}

// walk parses the spooled upload from the start, calling fn (when not nil)
// for every row.
func (u *Upload) walk(fn func(Row) error) (walkResult, error) {
	src := io.NewSectionReader(u.file, 0, u.size)
	switch u.Format {
	case FormatCSV:
		n, err := walkCSV(src, u.lim, fn)
		return walkResult{count: n}, err
	case FormatJSON:
		return walkJSON(src, u.lim, fn)
	}
	return walkResult{}, fmt.Errorf("upload: unknown format %q", u.Format)
}

// Each calls fn for every row in order, stopping at and returning the first
// error fn returns (unchanged). Each may be called any number of times, also
// concurrently; it reads the temporary file again each time. It fails after
// Close.
func (u *Upload) Each(fn func(Row) error) error {
	if fn == nil {
		return errors.New("upload: Each called with a nil function")
	}
	u.mu.Lock()
	closed := u.closed || u.file == nil
	u.mu.Unlock()
	if closed {
		return fmt.Errorf("upload: Each on a closed upload: %w", os.ErrClosed)
	}
	_, err := u.walk(fn)
	return err
}

// Close removes the temporary file. It is safe to call more than once; only
// the first call does anything.
func (u *Upload) Close() error {
	u.mu.Lock()
	if u.closed || u.file == nil {
		u.closed = true
		u.mu.Unlock()
		return nil
	}
	u.closed = true
	f := u.file
	u.mu.Unlock()

	cerr := f.Close()
	rerr := os.Remove(f.Name())
	if err := errors.Join(cerr, rerr); err != nil {
		return fmt.Errorf("upload: removing temporary file: %w", err)
	}
	return nil
}
