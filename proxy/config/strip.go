package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// StripComments returns a copy of data with comments (//, /* */ and #) outside strings and
// trailing commas (a comma whose next significant byte is ] or }) replaced by spaces.
// Newlines inside block comments are kept and nothing moves, so a byte offset into the
// result is the same offset into data and errors can still name lines and columns.
// Valid JSON comes back unchanged.
func StripComments(data []byte) []byte {
	out := bytes.Clone(data)
	blankComments(out)
	blankTrailingCommas(out)
	return out
}

// lexer states shared by both passes.
const (
	stateCode = iota
	stateString
	stateEscape // just after a backslash inside a string
	stateSlash  // just after a '/' in code: may open a comment
	stateLineComment
	stateBlockComment
	stateBlockStar // just after a '*' inside a block comment: may close it
)

func blankComments(b []byte) {
	state := stateCode
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch state {
		case stateCode:
			switch c {
			case '"':
				state = stateString
			case '/':
				state = stateSlash
			case '#':
				b[i] = ' '
				state = stateLineComment
			}
		case stateString:
			switch c {
			case '\\':
				state = stateEscape
			case '"':
				state = stateCode
			}
		case stateEscape:
			state = stateString
		case stateSlash:
			switch c {
			case '/':
				b[i-1], b[i] = ' ', ' '
				state = stateLineComment
			case '*':
				b[i-1], b[i] = ' ', ' '
				state = stateBlockComment
			default:
				// A lone slash is a syntax error the decoder reports where it stands.
				state = stateCode
				i-- // look at this byte again as code
			}
		case stateLineComment:
			if c == '\n' {
				state = stateCode
			} else {
				b[i] = ' '
			}
		case stateBlockComment, stateBlockStar:
			switch {
			case c == '/' && state == stateBlockStar:
				state = stateCode
			case c == '*':
				state = stateBlockStar
			default:
				state = stateBlockComment
			}
			if !isNewline(c) {
				b[i] = ' '
			}
		}
	}
}

// blankTrailingCommas runs on comment-free input. A comma is trailing when it follows a
// value and the next significant byte closes the container; a comma after '[', ':' or
// another comma is left for the decoder to report.
func blankTrailingCommas(b []byte) {
	state := stateCode
	afterValue := false // the last significant code byte ended a value
	lastComma := -1     // a comma after a value, with only whitespace after it so far
	for i, c := range b {
		switch state {
		case stateCode:
			switch c {
			case ' ', '\t', '\r', '\n':
				continue
			case '"':
				state = stateString
			case ',':
				if afterValue {
					lastComma = i
					afterValue = false
					continue
				}
			case ']', '}':
				if lastComma >= 0 {
					b[lastComma] = ' '
				}
			}
			lastComma = -1
			afterValue = c == ']' || c == '}' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c == '.'
		case stateString:
			switch c {
			case '\\':
				state = stateEscape
			case '"':
				state = stateCode
				afterValue = true
			}
		case stateEscape:
			state = stateString
		}
	}
}

func isNewline(c byte) bool { return c == '\n' || c == '\r' }

// position converts a byte offset in data to a 1-based line and column.
func position(data []byte, offset int64) (line, col int) {
	offset = min(max(offset, 0), int64(len(data)))
	before := data[:offset]
	line = 1 + bytes.Count(before, []byte{'\n'})
	col = int(offset) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// syntaxCheck reports the first syntax error in stripped (which has data's offsets) as
// "line N, column M: ...".
func syntaxCheck(data, stripped []byte) error {
	if len(bytes.TrimSpace(stripped)) == 0 {
		return errors.New("config: empty document")
	}
	var raw json.RawMessage
	err := json.Unmarshal(stripped, &raw)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		// Offset counts the bytes read, so the offending byte is the one before it.
		line, col := position(data, max(se.Offset-1, 0))
		return &SyntaxError{Line: line, Column: col, Msg: se.Error()}
	}
	return err
}

// SyntaxError is malformed JSON at a place in the file.
type SyntaxError struct {
	Line, Column int
	Msg          string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("config: line %d, column %d: %s", e.Line, e.Column, e.Msg)
}
