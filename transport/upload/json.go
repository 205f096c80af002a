package upload

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Bounds of the JSON walk that are not configurable.
const (
	maxJSONDepth   = 64   // nesting of ignored values
	maxJSONTopKeys = 1000 // distinct top-level keys
)

// jsonWalker walks a JSON upload token by token.
type jsonWalker struct {
	dec   *json.Decoder
	lines *lineIndex
	base  int64 // bytes skipped before the decoder's input (a BOM)
	size  int64 // size of the decoder's input
	lim   Limits
	fn    func(Row) error
	count int
}

// walkJSON parses a spooled JSON upload, calling fn (when not nil) for every
// row, and returns the row count and the options found. Every problem with
// the upload is an *Error.
func walkJSON(src *io.SectionReader, lim Limits, fn func(Row) error) (walkResult, error) {
	var res walkResult
	body, err := skipBOM(src)
	if err != nil {
		return res, err
	}
	w := &jsonWalker{
		dec:   json.NewDecoder(newJSONGuard(io.NewSectionReader(body, 0, body.Size()), lim.jsonTokenBytes())),
		lines: newLineIndex(io.NewSectionReader(body, 0, body.Size())),
		base:  src.Size() - body.Size(),
		size:  body.Size(),
		lim:   lim,
		fn:    fn,
	}
	w.dec.UseNumber() // skipped numbers are never converted

	tok, err := w.dec.Token()
	if err == io.EOF {
		return res, emptyBody("the JSON body contains only whitespace")
	}
	if err != nil {
		return res, w.fail(err)
	}
	if tok != json.Delim('{') {
		return res, badRequest(CodeInvalidJSON, w.line(), "the JSON body must be an object, not %s", describeToken(tok))
	}

	var seenNumbers, seenRows bool
	keys := make(map[string]struct{})
	for w.dec.More() {
		tok, err := w.token()
		if err != nil {
			return res, err
		}
		key, ok := tok.(string)
		if !ok { // cannot happen: the decoder returns object keys as strings
			return res, badRequest(CodeMalformedJSON, w.line(), "expected an object key, found %s", describeToken(tok))
		}
		if _, dup := keys[key]; dup {
			return res, badRequest(CodeInvalidJSON, w.line(), "duplicate key %q in the JSON object", key)
		}
		if len(keys) >= maxJSONTopKeys {
			return res, badRequest(CodeInvalidJSON, w.line(), "the JSON object has more than %d keys", maxJSONTopKeys)
		}
		keys[key] = struct{}{}

		switch key {
		case "default_region":
			res.opts.region, res.opts.hasRegion, err = w.option(key)
		case "webhook_url":
			res.opts.webhook, res.opts.hasWebhook, err = w.option(key)
		case "numbers", "rows":
			if seenNumbers || seenRows {
				return res, badRequest(CodeInvalidJSON, w.line(), "the JSON object has both \"numbers\" and \"rows\"; send one of them")
			}
			seenNumbers, seenRows = key == "numbers", key == "rows"
			err = w.array(key)
		default:
			err = w.skip()
		}
		if err != nil {
			return res, err
		}
	}
	if _, err := w.token(); err != nil { // the closing '}'
		return res, err
	}
	switch tok, err := w.dec.Token(); {
	case err == io.EOF:
	case err != nil:
		return res, w.fail(err)
	default:
		return res, badRequest(CodeMalformedJSON, w.line(), "unexpected %s after the JSON object", describeToken(tok))
	}

	if !seenNumbers && !seenRows {
		return res, noRows("the JSON object has neither a \"numbers\" nor a \"rows\" array")
	}
	if w.count == 0 {
		key := "rows"
		if seenNumbers {
			key = "numbers"
		}
		return res, noRows("the %q array is empty", key)
	}
	res.count = w.count
	return res, nil
}

// token reads the next token, turning errors into *Error where they are the
// upload's fault.
func (w *jsonWalker) token() (json.Token, error) {
	tok, err := w.dec.Token()
	if err != nil {
		return nil, w.fail(err)
	}
	return tok, nil
}

// line returns the line of the decoder's position (the end of the last
// token, which for a scalar is the line it is on).
func (w *jsonWalker) line() int { return w.lines.lineAt(w.dec.InputOffset()) }

// fail converts a decoder error.
func (w *jsonWalker) fail(err error) error {
	if e, ok := errors.AsType[*Error](err); ok { // from the guard
		return e
	}
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		off := w.dec.InputOffset()
		return badRequest(CodeMalformedJSON, w.lines.lineAt(off), "invalid JSON near byte offset %d: %s", w.base+off, se.Error()).withCause(err)
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return badRequest(CodeMalformedJSON, w.lines.lineAt(w.size), "the JSON body ends before the object is complete").withCause(err)
	}
	return readFailure(err)
}

// option reads the value of a top-level option: a string, or null for absent.
func (w *jsonWalker) option(key string) (string, bool, error) {
	tok, err := w.token()
	if err != nil {
		return "", false, err
	}
	switch v := tok.(type) {
	case string:
		return strings.TrimSpace(v), true, nil
	case nil:
		return "", false, nil
	}
	return "", false, badRequest(CodeInvalidJSON, w.line(), "%q must be a string, not %s", key, describeToken(tok))
}

// array walks the "numbers" or "rows" array.
func (w *jsonWalker) array(key string) error {
	tok, err := w.token()
	if err != nil {
		return err
	}
	if tok != json.Delim('[') {
		return badRequest(CodeInvalidJSON, w.line(), "%q must be an array, not %s", key, describeToken(tok))
	}
	for i := 0; w.dec.More(); i++ {
		if key == "numbers" {
			err = w.number(i)
		} else {
			err = w.rowObject(i)
		}
		if err != nil {
			return err
		}
	}
	_, err = w.token() // the closing ']'
	return err
}

// number reads element i of "numbers".
func (w *jsonWalker) number(i int) error {
	tok, err := w.token()
	if err != nil {
		return err
	}
	line := w.line()
	s, ok := tok.(string)
	if !ok {
		return badRequest(CodeInvalidJSON, line, "numbers[%d] (row %d) must be a string, not %s", i, i+1, describeToken(tok))
	}
	return w.emit(line, "numbers", i, s, "", "")
}

// rowObject reads element i of "rows".
func (w *jsonWalker) rowObject(i int) error {
	tok, err := w.token()
	if err != nil {
		return err
	}
	line := w.line()
	if tok != json.Delim('{') {
		return badRequest(CodeInvalidJSON, line, "rows[%d] (row %d) must be an object, not %s", i, i+1, describeToken(tok))
	}
	var vals [3]string
	var seen [3]bool
	for w.dec.More() {
		tok, err := w.token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok { // cannot happen: the decoder returns object keys as strings
			return badRequest(CodeMalformedJSON, w.line(), "expected an object key, found %s", describeToken(tok))
		}
		slot := -1
		switch key {
		case "number":
			slot = slotNumber
		case "region":
			slot = slotRegion
		case "ref":
			slot = slotRef
		}
		if slot < 0 {
			if err := w.skip(); err != nil {
				return err
			}
			continue
		}
		if seen[slot] {
			return badRequest(CodeInvalidJSON, w.line(), "rows[%d] (row %d) has a duplicate key %q", i, i+1, key)
		}
		seen[slot] = true
		tok, err = w.token()
		if err != nil {
			return err
		}
		switch v := tok.(type) {
		case string:
			vals[slot] = v
			continue
		case nil:
			if slot != slotNumber {
				continue
			}
		}
		return badRequest(CodeInvalidJSON, w.line(), "rows[%d].%s (row %d) must be a string, not %s", i, key, i+1, describeToken(tok))
	}
	if _, err := w.token(); err != nil { // the closing '}'
		return err
	}
	if !seen[slotNumber] {
		return badRequest(CodeInvalidJSON, line, "rows[%d] (row %d) has no \"number\"", i, i+1)
	}
	return w.emit(line, "rows", i, vals[slotNumber], vals[slotRegion], vals[slotRef])
}

// emit checks and delivers one row, element i of the array key.
func (w *jsonWalker) emit(line int, key string, i int, number, region, ref string) error {
	w.count++
	if w.count > w.lim.MaxRows {
		return tooManyRows(line, w.lim.MaxRows)
	}
	for _, c := range [...]struct{ name, v string }{{"number", number}, {"region", region}, {"ref", ref}} {
		if len(c.v) > w.lim.MaxCellBytes {
			return badRequest(CodeCellTooLong, line, "%s[%d] (row %d): %s is longer than %d bytes", key, i, i+1, c.name, w.lim.MaxCellBytes)
		}
		if strings.IndexByte(c.v, 0) >= 0 {
			return badRequest(CodeInvalidEncoding, line, "%s[%d] (row %d): %s contains a NUL character", key, i, i+1, c.name)
		}
	}
	if w.fn == nil {
		return nil
	}
	return w.fn(Row{Line: line, Number: strings.TrimSpace(number), Region: strings.TrimSpace(region), Ref: strings.TrimSpace(ref)})
}

// skip reads and discards one value, however nested (up to maxJSONDepth).
func (w *jsonWalker) skip() error {
	depth := 0
	for {
		tok, err := w.token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			if depth > maxJSONDepth {
				return badRequest(CodeInvalidJSON, w.line(), "JSON nested more than %d levels deep", maxJSONDepth)
			}
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

// describeToken names a token's JSON type for an error message.
func describeToken(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			return "an object"
		case '[':
			return "an array"
		}
		return fmt.Sprintf("%q", string(v))
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", tok)
}
