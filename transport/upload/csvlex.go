package upload

import (
	"fmt"
	"io"
)

// csvState is the lexer's position within a field.
type csvState uint8

const (
	stFieldStart csvState = iota // before a field's first byte (leading whitespace is skipped)
	stUnquoted                   // inside an unquoted field
	stQuoted                     // inside a quoted field
	stQuote                      // just after a '"' inside a quoted field
	stAfterQuote                 // whitespace after a closing quote
)

// csvLexer splits a CSV stream into records, one at a time, without keeping
// more than a buffer and the cells it is asked to capture. It enforces the
// cell and line limits and counts physical lines (LF, CRLF and lone CR each
// end one).
type csvLexer struct {
	r        io.Reader
	buf      []byte
	pos, end int
	rerr     error // sticky read error, io.EOF at the end

	delim   byte
	maxCell int
	maxLine int

	line    int // line of the next byte
	lineLen int
	prevCR  bool

	state     csvState
	started   bool // the current record has consumed a byte
	content   bool // the current record has a non-whitespace byte
	recLine   int  // line where the current record started
	field     int  // index of the current field
	fieldLine int  // line where the current field started
	quoteLine int  // line of the opening quote of the current quoted field
	cellLen   int
	dst       *[]byte // where the current field's bytes go, or nil

	// capture lists the field indexes whose contents are kept in cells
	// (-1: none), when onField is nil.
	capture [3]int
	cells   [3][]byte
	// onField, when set, receives every field of every record instead.
	onField func(i int, cell []byte)
	scratch []byte
}

// newCSVLexer returns a lexer reading r with the given delimiter.
func newCSVLexer(r io.Reader, delim byte, lim Limits) *csvLexer {
	return &csvLexer{
		r:       r,
		buf:     make([]byte, 64<<10),
		delim:   delim,
		maxCell: lim.MaxCellBytes,
		maxLine: lim.MaxLineBytes,
		line:    1,
		capture: [3]int{-1, -1, -1},
	}
}

// next reads the next record. It returns false at the end of the input.
// After it returns true, recLine, content and cells describe the record.
func (l *csvLexer) next() (bool, error) {
	l.startRecord()
	for {
		if l.pos >= l.end && !l.fill() {
			return l.finish()
		}
		b := l.buf[l.pos]
		l.pos++

		wasCR := l.prevCR
		l.prevCR = b == '\r'
		if b == '\n' && wasCR && !l.started {
			continue // the LF of a CRLF that ended the previous record
		}
		lineOfB := l.line
		switch b {
		case '\r':
			l.line++
			l.lineLen = 0
		case '\n':
			if !wasCR {
				l.line++
			}
			l.lineLen = 0
		default:
			l.lineLen++
			if l.lineLen > l.maxLine {
				return false, badRequest(CodeLineTooLong, l.line, "line is longer than %d bytes", l.maxLine)
			}
		}
		l.started = true

		switch l.state {
		case stFieldStart:
			switch {
			case b == l.delim:
				l.endField()
			case b == '\r' || b == '\n':
				return l.endRecord()
			case b == ' ' || b == '\t':
				// leading whitespace: ignored
			case b == '"':
				l.state = stQuoted
				l.quoteLine = lineOfB
				l.fieldLine = lineOfB
			default:
				l.state = stUnquoted
				l.fieldLine = lineOfB
				if err := l.add(b); err != nil {
					return false, err
				}
			}
		case stUnquoted:
			switch {
			case b == l.delim:
				l.endField()
			case b == '\r' || b == '\n':
				return l.endRecord()
			default:
				if err := l.add(b); err != nil {
					return false, err
				}
			}
		case stQuoted:
			if b == '"' {
				l.state = stQuote
			} else if err := l.add(b); err != nil {
				return false, err
			}
		case stQuote, stAfterQuote:
			switch {
			case b == l.delim:
				l.endField()
			case b == '\r' || b == '\n':
				return l.endRecord()
			case b == ' ' || b == '\t':
				l.state = stAfterQuote
			case b == '"' && l.state == stQuote:
				l.state = stQuoted
				if err := l.add(b); err != nil {
					return false, err
				}
			default:
				return false, badRequest(CodeMalformedCSV, lineOfB,
					"unexpected %s after the closing quote of a field (a quote inside a quoted field must be doubled)", describeByte(b))
			}
		}
	}
}

// startRecord resets the per-record state.
func (l *csvLexer) startRecord() {
	l.started = false
	l.content = false
	l.recLine = l.line
	l.field = 0
	for i := range l.cells {
		l.cells[i] = l.cells[i][:0]
	}
	l.beginField()
}

// beginField prepares for the field with index l.field.
func (l *csvLexer) beginField() {
	l.state = stFieldStart
	l.cellLen = 0
	l.fieldLine = l.line
	l.dst = nil
	if l.onField != nil {
		l.scratch = l.scratch[:0]
		l.dst = &l.scratch
		return
	}
	for i, c := range l.capture {
		if c == l.field {
			l.dst = &l.cells[i]
			return
		}
	}
}

// endField finishes the current field and begins the next one.
func (l *csvLexer) endField() {
	if l.onField != nil {
		l.onField(l.field, l.scratch)
	}
	l.field++
	l.beginField()
}

// endRecord finishes the current field and the record.
func (l *csvLexer) endRecord() (bool, error) {
	if l.onField != nil {
		l.onField(l.field, l.scratch)
	}
	l.state = stFieldStart
	return true, nil
}

// add appends b to the current field.
func (l *csvLexer) add(b byte) error {
	l.cellLen++
	if l.cellLen > l.maxCell {
		return badRequest(CodeCellTooLong, l.fieldLine, "field %d is longer than %d bytes", l.field+1, l.maxCell)
	}
	if b != ' ' && b != '\t' {
		l.content = true
	}
	if l.dst != nil {
		*l.dst = append(*l.dst, b)
	}
	return nil
}

// finish handles the end of the input: the last record may lack a line
// terminator, and a quoted field may be unclosed.
func (l *csvLexer) finish() (bool, error) {
	if l.rerr != io.EOF {
		return false, readFailure(l.rerr)
	}
	if l.state == stQuoted {
		return false, badRequest(CodeMalformedCSV, l.quoteLine,
			"the quoted field opened on line %d is never closed", l.quoteLine)
	}
	if !l.started {
		return false, nil
	}
	return l.endRecord()
}

// fill reads more input into the buffer; it returns false when there is none.
func (l *csvLexer) fill() bool {
	for l.rerr == nil {
		n, err := l.r.Read(l.buf)
		l.pos, l.end = 0, n
		if err != nil {
			l.rerr = err
		}
		if n > 0 {
			return true
		}
	}
	return false
}

// describeByte names b for an error message.
func describeByte(b byte) string {
	if b >= 0x20 && b < 0x7f {
		return fmt.Sprintf("character %q", rune(b))
	}
	return fmt.Sprintf("byte 0x%02X", b)
}

// readFailure wraps an error reading the temporary file.
func readFailure(err error) error {
	return fmt.Errorf("upload: reading temporary file: %w", err)
}
