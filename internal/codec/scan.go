package codec

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth is the deepest nesting of objects and arrays a document may have, as in encoding/json.
const maxDepth = 10000

// scanner reads one JSON document (RFC 8259, with encoding/json's rules: the same grammar, invalid
// UTF-8 in strings replaced by U+FFFD, at most maxDepth levels of nesting). It validates what it reads;
// the decoder drives it value by value, so each byte is looked at once.
type scanner struct {
	data  []byte
	pos   int
	depth int
}

// syntaxError is malformed JSON: what was wrong and where.
type syntaxError struct {
	msg    string
	offset int
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%s (offset %d)", e.msg, e.offset) }

// strFlags tells how a string's content must be read.
type strFlags uint8

const (
	strEscaped  strFlags = 1 << iota // contains a backslash escape
	strNonASCII                      // contains bytes >= 0x80 (valid UTF-8 or not)
)

// strSpecial marks the bytes that end the fast loop over a string's content.
var strSpecial = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	for c := 0x80; c < 0x100; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// ws skips whitespace.
func (s *scanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek returns the byte at the read position, 0 at the end.
func (s *scanner) peek() byte {
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

// fail reports the byte at the read position as unexpected (or the end of the input).
func (s *scanner) fail(context string) error {
	if s.pos >= len(s.data) {
		return &syntaxError{"unexpected end of JSON input", s.pos}
	}
	return &syntaxError{fmt.Sprintf("invalid character %s %s", quoteByte(s.data[s.pos]), context), s.pos}
}

// quoteByte renders a byte for an error message.
func quoteByte(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	return strconv.QuoteRuneToASCII(rune(c))
}

// enter and leave count nesting.
func (s *scanner) enter() error {
	s.depth++
	if s.depth > maxDepth {
		return &syntaxError{"exceeded max depth", s.pos}
	}
	return nil
}

func (s *scanner) leave() { s.depth-- }

// str reads a string at the read position (at its opening quote) and returns its raw content.
func (s *scanner) str() ([]byte, strFlags, error) {
	data := s.data
	start := s.pos + 1
	var fl strFlags
	i := start
	for {
		// Eight bytes at a time to the first special one, then byte by byte near the end.
		if i+8 <= len(data) {
			m := specials(binary.LittleEndian.Uint64(data[i:]))
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) / 8
		} else {
			for i < len(data) && !strSpecial[data[i]] {
				i++
			}
			if i == len(data) {
				break
			}
		}
		c := data[i]
		switch {
		case c == '"':
			s.pos = i + 1
			return data[start:i], fl, nil
		case c == '\\':
			fl |= strEscaped
			if i+1 >= len(data) {
				s.pos = len(data)
				return nil, 0, s.fail("")
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for k := i + 2; k < i+6; k++ {
					if k >= len(data) {
						s.pos = len(data)
						return nil, 0, s.fail("")
					}
					if !isHex(data[k]) {
						s.pos = k
						return nil, 0, s.fail("in \\u hexadecimal character escape")
					}
				}
				i += 6
			default:
				s.pos = i + 1
				return nil, 0, s.fail("in string escape code")
			}
		case c < 0x20:
			s.pos = i
			return nil, 0, s.fail("in string literal")
		default:
			fl |= strNonASCII
			i++
		}
	}
	s.pos = len(data)
	return nil, 0, s.fail("")
}

// specials marks the bytes of w (eight bytes, little-endian) that strSpecial marks: below 0x20, from
// 0x80, '"' or '\\'. The lowest mark (the high bit of its byte) is exact; those above it may not be.
func specials(w uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	zero := func(v uint64) uint64 { return (v - ones) & ^v } // marks zero bytes (and maybe bytes above one)
	// w: bytes from 0x80; w-0x20…: bytes below 0x20 (and maybe bytes above one).
	return (w | (w - 0x20*ones) | zero(w^('"'*ones)) | zero(w^('\\'*ones))) & highs
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// strValue returns the text of a string's raw content as encoding/json decodes it.
func strValue(raw []byte, fl strFlags) string {
	if plain(raw, fl) {
		return string(raw)
	}
	return unquote(raw)
}

// plain reports whether a string's raw content is its text: no escapes, valid UTF-8.
func plain(raw []byte, fl strFlags) bool {
	return fl == 0 || (fl == strNonASCII && utf8.Valid(raw))
}

// unquote decodes the escapes of a valid string's content; invalid UTF-8 and unpaired surrogates
// become U+FFFD.
func unquote(s []byte) string {
	b := make([]byte, 0, len(s)+utf8.UTFMax)
	for r := 0; r < len(s); {
		c := s[r]
		switch {
		case c == '\\':
			switch e := s[r+1]; e {
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				rr := hex4(s[r+2:])
				r += 6
				if utf16.IsSurrogate(rr) {
					if r+6 <= len(s) && s[r] == '\\' && s[r+1] == 'u' {
						if dec := utf16.DecodeRune(rr, hex4(s[r+2:])); dec != utf8.RuneError {
							b = utf8.AppendRune(b, dec)
							r += 6
							continue
						}
					}
					rr = utf8.RuneError
				}
				b = utf8.AppendRune(b, rr)
				continue
			default: // '"', '\\', '/'
				b = append(b, e)
			}
			r += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			r++
		default:
			rr, size := utf8.DecodeRune(s[r:])
			if rr == utf8.RuneError && size == 1 {
				b = utf8.AppendRune(b, utf8.RuneError)
			} else {
				b = append(b, s[r:r+size]...)
			}
			r += size
		}
	}
	return string(b)
}

// hex4 reads four hex digits (already validated).
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c <= 'F':
			c -= 'A' - 10
		default:
			c -= 'a' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// number reads a number at the read position and returns its text.
func (s *scanner) number() ([]byte, error) {
	data := s.data
	start := s.pos
	i := start
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && '1' <= data[i] && data[i] <= '9':
		for i++; i < len(data) && isDigit(data[i]); i++ {
		}
	default:
		s.pos = i
		return nil, s.fail("in numeric literal")
	}
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) || !isDigit(data[i]) {
			s.pos = i
			return nil, s.fail("after decimal point in numeric literal")
		}
		for i++; i < len(data) && isDigit(data[i]); i++ {
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || !isDigit(data[i]) {
			s.pos = i
			return nil, s.fail("in exponent of numeric literal")
		}
		for i++; i < len(data) && isDigit(data[i]); i++ {
		}
	}
	s.pos = i
	return data[start:i], nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// literal reads true, false or null (the first byte already seen).
func (s *scanner) literal(word string) error {
	for i := 0; i < len(word); i++ {
		if s.pos+i >= len(s.data) || s.data[s.pos+i] != word[i] {
			s.pos += i
			return s.fail("in literal " + word + " (expecting " + quoteByte(word[i]) + ")")
		}
	}
	s.pos += len(word)
	return nil
}

// next moves past a comma or the closing byte after a member or element; it reports whether the
// object or array ended.
func (s *scanner) next(closing byte, context string) (end bool, err error) {
	s.ws()
	switch s.peek() {
	case ',':
		s.pos++
		s.ws()
		return false, nil
	case closing:
		s.pos++
		return true, nil
	}
	return false, s.fail(context)
}

// key reads an object key and the colon after it, leaving the read position at the value.
func (s *scanner) key() ([]byte, strFlags, error) {
	if s.peek() != '"' {
		return nil, 0, s.fail("looking for beginning of object key string")
	}
	raw, fl, err := s.str()
	if err != nil {
		return nil, 0, err
	}
	s.ws()
	if s.peek() != ':' {
		return nil, 0, s.fail("after object key")
	}
	s.pos++
	s.ws()
	return raw, fl, nil
}

// openObject moves past '{' and reports whether the object is empty (then also past '}').
func (s *scanner) openObject() (empty bool, err error) {
	if err := s.enter(); err != nil {
		return false, err
	}
	s.pos++
	s.ws()
	if s.peek() == '}' {
		s.pos++
		s.leave()
		return true, nil
	}
	return false, nil
}

// openArray moves past '[' and reports whether the array is empty (then also past ']').
func (s *scanner) openArray() (empty bool, err error) {
	if err := s.enter(); err != nil {
		return false, err
	}
	s.pos++
	s.ws()
	if s.peek() == ']' {
		s.pos++
		s.leave()
		return true, nil
	}
	return false, nil
}

// skip reads and validates one value without keeping it.
func (s *scanner) skip() error {
	switch c := s.peek(); c {
	case '{':
		empty, err := s.openObject()
		if err != nil || empty {
			return err
		}
		for {
			if _, _, err := s.key(); err != nil {
				return err
			}
			if err := s.skip(); err != nil {
				return err
			}
			end, err := s.next('}', "after object key:value pair")
			if err != nil {
				return err
			}
			if end {
				s.leave()
				return nil
			}
		}
	case '[':
		empty, err := s.openArray()
		if err != nil || empty {
			return err
		}
		for {
			if err := s.skip(); err != nil {
				return err
			}
			end, err := s.next(']', "after array element")
			if err != nil {
				return err
			}
			if end {
				s.leave()
				return nil
			}
		}
	case '"':
		_, _, err := s.str()
		return err
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		if c == '-' || isDigit(c) {
			_, err := s.number()
			return err
		}
		return s.fail("looking for beginning of value")
	}
}

// jsonKind is the kind of a JSON value.
type jsonKind uint8

const (
	jsonNull jsonKind = iota
	jsonBool
	jsonNumber
	jsonString
	jsonObject
	jsonArray
)

// jval is one JSON value read whole: a scalar, or an object or array kept as its raw text.
type jval struct {
	kind jsonKind
	b    bool     // jsonBool
	raw  []byte   // number text, string content (still escaped), or the raw object or array
	fl   strFlags // jsonString
}

// value reads one value whole.
func (s *scanner) value() (jval, error) {
	switch c := s.peek(); c {
	case '{', '[':
		start := s.pos
		if err := s.skip(); err != nil {
			return jval{}, err
		}
		k := jsonObject
		if c == '[' {
			k = jsonArray
		}
		return jval{kind: k, raw: s.data[start:s.pos]}, nil
	case '"':
		raw, fl, err := s.str()
		return jval{kind: jsonString, raw: raw, fl: fl}, err
	case 't':
		return jval{kind: jsonBool, b: true}, s.literal("true")
	case 'f':
		return jval{kind: jsonBool}, s.literal("false")
	case 'n':
		return jval{kind: jsonNull}, s.literal("null")
	default:
		if c == '-' || isDigit(c) {
			raw, err := s.number()
			return jval{kind: jsonNumber, raw: raw}, err
		}
		return jval{}, s.fail("looking for beginning of value")
	}
}

// text returns a string value's text.
func (v *jval) text() string { return strValue(v.raw, v.fl) }

// emptyString reports whether v is the string "".
func (v *jval) emptyString() bool { return v.kind == jsonString && len(v.raw) == 0 }
