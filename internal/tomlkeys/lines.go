// Package tomlkeys decodes TOML strictly: every key must be known, and errors name the file
// and line of the offending key.
package tomlkeys

import (
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Lines maps every key of a TOML document (tables and their parents included), spelled
// as toml.Key.String spells it, to the 1-based line where it first appears. The toml
// package keeps key positions private, so this small scanner finds them again. It expects
// a document the toml package has already parsed without error.
func Lines(src string) map[string]int {
	s := &lineScanner{src: strings.TrimPrefix(src, "\ufeff"), line: 1, lines: map[string]int{}}
	s.document()
	return s.lines
}

type lineScanner struct {
	src   string
	pos   int
	line  int
	lines map[string]int
}

func (s *lineScanner) eof() bool { return s.pos >= len(s.src) }

func (s *lineScanner) peek() byte {
	if s.eof() {
		return 0
	}
	return s.src[s.pos]
}

func (s *lineScanner) advance() {
	if s.eof() {
		return
	}
	if s.src[s.pos] == '\n' {
		s.line++
	}
	s.pos++
}

// record notes the current line for key and each of its parents not seen before.
func (s *lineScanner) record(key []string) {
	for i := 1; i <= len(key); i++ {
		k := toml.Key(key[:i]).String()
		if _, seen := s.lines[k]; !seen {
			s.lines[k] = s.line
		}
	}
}

// skipSpace skips blanks on the current line.
func (s *lineScanner) skipSpace() {
	for c := s.peek(); c == ' ' || c == '\t'; c = s.peek() {
		s.advance()
	}
}

// skipBlank skips blanks, line breaks and comments.
func (s *lineScanner) skipBlank() {
	for !s.eof() {
		switch s.peek() {
		case ' ', '\t', '\r', '\n':
			s.advance()
		case '#':
			for !s.eof() && s.peek() != '\n' {
				s.advance()
			}
		default:
			return
		}
	}
}

func (s *lineScanner) document() {
	var table []string
	for s.skipBlank(); !s.eof(); s.skipBlank() {
		if s.peek() == '[' {
			s.advance()
			if s.peek() == '[' { // array of tables
				s.advance()
			}
			table = s.key()
			s.record(table)
			for s.peek() == ']' || s.peek() == ' ' || s.peek() == '\t' {
				s.advance()
			}
			continue
		}
		key := append(grow(table), s.key()...)
		s.record(key)
		s.assignment(key)
	}
}

// grow returns a copy of k with room to grow, so appends never share storage.
func grow(k []string) []string { return append(make([]string, 0, len(k)+4), k...) }

// assignment skips "= value" after key, recording the keys of inline tables.
func (s *lineScanner) assignment(key []string) {
	s.skipSpace()
	if s.peek() == '=' {
		s.advance()
	}
	s.skipSpace()
	s.value(key)
}

// key reads a possibly dotted key and returns its parts.
func (s *lineScanner) key() []string {
	var parts []string
	for {
		s.skipSpace()
		parts = append(parts, s.keyPart())
		s.skipSpace()
		if s.peek() != '.' {
			return parts
		}
		s.advance()
	}
}

func (s *lineScanner) keyPart() string {
	start := s.pos
	switch s.peek() {
	case '"':
		s.advance()
		for !s.eof() && s.peek() != '"' {
			if s.peek() == '\\' {
				s.advance()
			}
			s.advance()
		}
		s.advance()
		if k, err := strconv.Unquote(s.src[start:s.pos]); err == nil {
			return k
		}
		return strings.Trim(s.src[start:s.pos], `"`)
	case '\'':
		s.advance()
		for !s.eof() && s.peek() != '\'' {
			s.advance()
		}
		s.advance()
		return strings.Trim(s.src[start:s.pos], "'")
	}
	for c := s.peek(); c == '_' || c == '-' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'; c = s.peek() {
		s.advance()
	}
	if s.pos == start { // not a key: step over it so scanning always progresses
		s.advance()
	}
	return s.src[start:s.pos]
}

// value skips one value; key is where it is stored, or nil inside an array.
func (s *lineScanner) value(key []string) {
	switch s.peek() {
	case '"', '\'':
		s.str()
	case '[':
		s.advance()
		for s.skipBlank(); !s.eof() && s.peek() != ']'; s.skipBlank() {
			if s.peek() == ',' {
				s.advance()
				continue
			}
			s.value(nil)
		}
		s.advance()
	case '{':
		s.advance()
		for s.skipBlank(); !s.eof() && s.peek() != '}'; s.skipBlank() {
			if s.peek() == ',' {
				s.advance()
				continue
			}
			var k []string
			if key != nil {
				k = append(grow(key), s.key()...)
				s.record(k)
			} else {
				s.key()
			}
			s.assignment(k)
		}
		s.advance()
	default: // number, boolean or date-time
		for !s.eof() && !strings.ContainsRune(",]}#\r\n", rune(s.peek())) {
			s.advance()
		}
	}
}

// str skips a basic or literal string, single- or multi-line.
func (s *lineScanner) str() {
	q := s.peek()
	triple := strings.Repeat(string(q), 3)
	if !strings.HasPrefix(s.src[s.pos:], triple) {
		s.advance()
		for !s.eof() && s.peek() != q && s.peek() != '\n' {
			if q == '"' && s.peek() == '\\' {
				s.advance()
			}
			s.advance()
		}
		s.advance()
		return
	}
	s.pos += 3
	for !s.eof() && !strings.HasPrefix(s.src[s.pos:], triple) {
		if q == '"' && s.peek() == '\\' {
			s.advance()
		}
		s.advance()
	}
	// A closing run may hold up to two quotes of content before the final three.
	for n := 0; n < 5 && s.peek() == q; n++ {
		s.advance()
	}
}
