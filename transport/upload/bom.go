package upload

import (
	"bytes"
	"io"
)

// skipBOM returns the part of src after a UTF-8 byte order mark, and rejects
// UTF-16 and UTF-32 byte order marks, which spreadsheet "Unicode" exports
// carry.
func skipBOM(src *io.SectionReader) (*io.SectionReader, error) {
	var head [4]byte
	n, err := src.ReadAt(head[:], 0)
	if err != nil && err != io.EOF {
		return nil, readFailure(err)
	}
	h := head[:n]
	switch {
	case bytes.HasPrefix(h, []byte{0xEF, 0xBB, 0xBF}):
		return io.NewSectionReader(src, 3, src.Size()-3), nil
	case bytes.HasPrefix(h, []byte{0xFF, 0xFE}), bytes.HasPrefix(h, []byte{0xFE, 0xFF}):
		return nil, badRequest(CodeInvalidEncoding, 1,
			"the upload is UTF-16 encoded; save it as UTF-8 (\"CSV UTF-8\" in spreadsheet programs)")
	case bytes.HasPrefix(h, []byte{0x00, 0x00, 0xFE, 0xFF}):
		return nil, badRequest(CodeInvalidEncoding, 1, "the upload is UTF-32 encoded; save it as UTF-8")
	}
	return src, nil
}
