package upload

import (
	"io"
	"unicode/utf8"
)

// jsonGuard sits between the spooled file and the json.Decoder. It follows
// the JSON lexical structure just enough to bound the length of every token
// (the decoder buffers a whole token) and checks that the text is UTF-8,
// reporting the line of a violation. Syntax is left to the decoder.
type jsonGuard struct {
	r      io.Reader
	maxTok int
	err    error // pending violation, returned once the bytes before it are consumed

	line  int
	inStr bool
	esc   bool
	run   int // length of the current string or bare token

	rb   [utf8.UTFMax]byte // an incomplete UTF-8 sequence
	rn   int               // bytes in rb
	need int               // length of the sequence in rb
}

// newJSONGuard returns a guard reading r.
func newJSONGuard(r io.Reader, maxTok int) *jsonGuard {
	return &jsonGuard{r: r, maxTok: maxTok, line: 1}
}

// Read passes bytes through up to the first violation; the next Read then
// returns the violation as an *Error.
func (g *jsonGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.Read(p)
	for i := 0; i < n; i++ {
		if verr := g.step(p[i]); verr != nil {
			g.err = verr
			if i == 0 {
				return 0, verr
			}
			return i, nil
		}
	}
	if err == io.EOF && g.need != 0 {
		g.err = g.badUTF8()
		if n == 0 {
			return 0, g.err
		}
		return n, nil
	}
	return n, err
}

// step advances the guard over one byte.
func (g *jsonGuard) step(b byte) error {
	if b == '\n' {
		g.line++
	}
	if err := g.utf8Step(b); err != nil {
		return err
	}
	switch {
	case g.inStr:
		switch {
		case g.esc:
			g.esc = false
		case b == '\\':
			g.esc = true
		case b == '"':
			g.inStr = false
			g.run = 0
			return nil
		}
		g.run++
	case b == '"':
		g.inStr = true
		g.run = 1
	case b == '{' || b == '}' || b == '[' || b == ']' || b == ',' || b == ':' ||
		b == ' ' || b == '\t' || b == '\r' || b == '\n':
		g.run = 0
		return nil
	default:
		g.run++
	}
	if g.run > g.maxTok {
		return badRequest(CodeTokenTooLong, g.line, "a JSON value is longer than %d bytes", g.maxTok)
	}
	return nil
}

// utf8Step checks the UTF-8 encoding one byte at a time.
func (g *jsonGuard) utf8Step(b byte) error {
	if g.need == 0 {
		if b < utf8.RuneSelf {
			return nil
		}
		switch {
		case b >= 0xC2 && b <= 0xDF:
			g.need = 2
		case b >= 0xE0 && b <= 0xEF:
			g.need = 3
		case b >= 0xF0 && b <= 0xF4:
			g.need = 4
		default:
			return g.badUTF8()
		}
		g.rb[0], g.rn = b, 1
		return nil
	}
	if b&0xC0 != 0x80 {
		return g.badUTF8()
	}
	g.rb[g.rn] = b
	g.rn++
	if g.rn < g.need {
		return nil
	}
	g.need = 0
	if r, _ := utf8.DecodeRune(g.rb[:g.rn]); r == utf8.RuneError {
		return g.badUTF8() // overlong form or surrogate
	}
	return nil
}

// badUTF8 is the error for an invalid UTF-8 sequence on the current line.
func (g *jsonGuard) badUTF8() error {
	return badRequest(CodeInvalidEncoding, g.line, "the JSON text is not valid UTF-8; send it as UTF-8")
}
