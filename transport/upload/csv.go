package upload

import (
	"bufio"
	"bytes"
	"io"
	"unicode/utf8"
)

// Slots of csvLexer.capture and csvLexer.cells.
const (
	slotNumber = iota
	slotRegion
	slotRef
)

// walkCSV parses a spooled CSV upload, calling fn (when not nil) for every
// data row, and returns the number of rows. Every problem with the upload is
// an *Error.
func walkCSV(src *io.SectionReader, lim Limits, fn func(Row) error) (int, error) {
	body, err := skipBOM(src)
	if err != nil {
		return 0, err
	}
	delim, err := detectDelimiter(io.NewSectionReader(body, 0, body.Size()), lim.MaxLineBytes)
	if err != nil {
		return 0, err
	}
	lx := newCSVLexer(io.NewSectionReader(body, 0, body.Size()), delim, lim)

	// The header is the first record with content.
	var hdr headerScan
	hdr.reset()
	lx.onField = hdr.field
	for {
		ok, err := lx.next()
		if err != nil {
			return 0, err
		}
		if !ok {
			return 0, emptyBody("the upload contains only blank lines")
		}
		if lx.content {
			break
		}
		hdr.reset()
	}
	lx.onField = nil
	cols, err := hdr.columns(lx.recLine)
	if err != nil {
		return 0, err
	}
	lx.capture = [3]int{cols.number, cols.region, cols.ref}

	count := 0
	emit := func(line int, number, region, ref []byte) error {
		count++
		if count > lim.MaxRows {
			return tooManyRows(line, lim.MaxRows)
		}
		for _, c := range [...]struct {
			name string
			v    []byte
		}{{"number", number}, {"region", region}, {"ref", ref}} {
			if !utf8.Valid(c.v) {
				return badRequest(CodeInvalidEncoding, line, "the %s cell is not valid UTF-8; save the file as UTF-8", c.name)
			}
			if bytes.IndexByte(c.v, 0) >= 0 {
				return badRequest(CodeInvalidEncoding, line, "the %s cell contains a NUL byte", c.name)
			}
		}
		if fn == nil {
			return nil
		}
		return fn(Row{
			Line:   line,
			Number: string(bytes.TrimSpace(number)),
			Region: string(bytes.TrimSpace(region)),
			Ref:    string(bytes.TrimSpace(ref)),
		})
	}

	if cols.headerless {
		if err := emit(lx.recLine, hdr.first, nil, nil); err != nil {
			return count, err
		}
	}
	for {
		ok, err := lx.next()
		if err != nil {
			return count, err
		}
		if !ok {
			break
		}
		if !lx.content {
			continue
		}
		if err := emit(lx.recLine, lx.cells[slotNumber], lx.cells[slotRegion], lx.cells[slotRef]); err != nil {
			return count, err
		}
	}
	if count == 0 {
		return 0, noRows("the upload has a header but no data rows")
	}
	return count, nil
}

// detectDelimiter returns the delimiter occurring most often, outside quotes,
// in the first non-blank line of r: comma, semicolon or tab, ties going to the
// earlier of these. A line that is too long is judged on its first maxLine
// bytes; the lexer reports it.
func detectDelimiter(r io.Reader, maxLine int) (byte, error) {
	br := bufio.NewReader(r)
	var counts [3]int // ',' ';' '\t'
	inQuote, content := false, false
	lineLen := 0
	for lineLen <= maxLine {
		b, err := br.ReadByte()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, readFailure(err)
		}
		lineLen++
		if b == '"' {
			inQuote = !inQuote
			continue
		}
		if inQuote {
			if b != ' ' && b != '\t' && b != '\r' && b != '\n' {
				content = true
			}
			continue
		}
		switch b {
		case ',':
			counts[0]++
		case ';':
			counts[1]++
		case '\t':
			counts[2]++
		case '\r', '\n':
			if content {
				return pickDelimiter(counts), nil
			}
			counts = [3]int{}
			lineLen = 0
		case ' ':
		default:
			content = true
		}
	}
	return pickDelimiter(counts), nil
}

// pickDelimiter chooses the delimiter with the highest count.
func pickDelimiter(counts [3]int) byte {
	delims := [3]byte{',', ';', '\t'}
	best := 0
	for i := 1; i < 3; i++ {
		if counts[i] > counts[best] {
			best = i
		}
	}
	return delims[best]
}

// csvColumns is the layout decided from the header.
type csvColumns struct {
	number, region, ref int // -1: absent
	headerless          bool
}

// headerScan classifies header cells as the lexer delivers them, without
// keeping them.
type headerScan struct {
	number, region, ref int
	named               bool   // some cell is a known header name
	fields              int    // number of header fields
	first               []byte // the trimmed first cell
	nul                 bool   // some cell holds a NUL byte
}

// reset forgets everything seen so far.
func (h *headerScan) reset() {
	*h = headerScan{number: -1, region: -1, ref: -1, first: h.first[:0]}
}

// field receives header cell i.
func (h *headerScan) field(i int, cell []byte) {
	h.fields = i + 1
	if bytes.IndexByte(cell, 0) >= 0 {
		h.nul = true
	}
	if i == 0 {
		h.first = append(h.first[:0], bytes.TrimSpace(cell)...)
	}
	switch headerName(cell) {
	case "number", "phone", "phone_number", "msisdn", "mobile":
		h.named = true
		if h.number < 0 {
			h.number = i
		}
	case "region":
		h.named = true
		if h.region < 0 {
			h.region = i
		}
	case "ref":
		h.named = true
		if h.ref < 0 {
			h.ref = i
		}
	}
}

// columns decides the layout once the whole header record has been seen.
func (h *headerScan) columns(line int) (csvColumns, error) {
	if h.nul {
		return csvColumns{}, badRequest(CodeInvalidEncoding, line,
			"the header contains NUL bytes, as UTF-16 files do; save the file as UTF-8")
	}
	if !h.named && looksLikeNumber(h.first) {
		return csvColumns{number: 0, region: -1, ref: -1, headerless: true}, nil
	}
	c := csvColumns{number: h.number, region: h.region, ref: h.ref}
	if c.number < 0 {
		for i := 0; i < h.fields; i++ {
			if i != c.region && i != c.ref {
				c.number = i
				break
			}
		}
		if c.number < 0 {
			return c, badRequest(CodeMissingNumberColumn, line,
				"the header has no column for the phone number (name one number, phone, phone_number, msisdn or mobile)")
		}
	}
	return c, nil
}

// headerName normalises a header cell: trimmed, ASCII lower case, with spaces
// and dashes as underscores. Long cells cannot be header names.
func headerName(cell []byte) string {
	cell = bytes.TrimSpace(cell)
	if len(cell) > 16 {
		return ""
	}
	var b [16]byte
	for i, c := range cell {
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == ' ' || c == '-':
			c = '_'
		}
		b[i] = c
	}
	return string(b[:len(cell)])
}

// looksLikeNumber reports whether a cell reads as a phone number rather than
// a column name: at least five digits and only digits, spaces and + ( ) - . /.
func looksLikeNumber(cell []byte) bool {
	digits := 0
	for _, c := range cell {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == ' ' || c == '+' || c == '(' || c == ')' || c == '-' || c == '.' || c == '/':
		default:
			return false
		}
	}
	return digits >= 5
}
