package upload

import (
	"bufio"
	"bytes"
	"io"
)

// lineIndex maps byte offsets to 1-based line numbers by reading its own copy
// of the input forward. Offsets must be asked in non-decreasing order; an
// earlier offset gets the line of the latest one.
type lineIndex struct {
	br   *bufio.Reader
	pos  int64
	line int
}

// newLineIndex returns an index over r.
func newLineIndex(r io.Reader) *lineIndex {
	return &lineIndex{br: bufio.NewReaderSize(r, 32<<10), line: 1}
}

// lineAt returns the line of the byte at offset off.
func (li *lineIndex) lineAt(off int64) int {
	for li.pos < off {
		n := int(min(off-li.pos, int64(li.br.Size())))
		b, err := li.br.Peek(n)
		li.line += bytes.Count(b, []byte{'\n'})
		li.pos += int64(len(b))
		_, _ = li.br.Discard(len(b))
		if err != nil {
			break
		}
	}
	return li.line
}
