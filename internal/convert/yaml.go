package convert

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The objects are written with a small YAML emitter rather than a YAML library, so that
// the data plane binary carries no Kubernetes or YAML dependency. It writes block style
// only, and every string as a JSON string, which is also a YAML double-quoted scalar:
// nothing a value holds (quotes, "#", ": ", "yes", "null", line breaks) can change how it
// parses.

// mapping is a YAML mapping that keeps its keys in the order they were added.
type mapping []field

type field struct {
	key   string
	value any // string, int, bool, mapping or sequence
}

// sequence is a YAML sequence.
type sequence []any

// set appends key. Zero values are skipped, like omitempty, so optional fields stay out
// of the output.
func (m *mapping) set(key string, value any) {
	switch v := value.(type) {
	case string:
		if v == "" {
			return
		}
	case int:
		if v == 0 {
			return
		}
	case bool:
		if !v {
			return
		}
	case mapping:
		if len(v) == 0 {
			return
		}
	case sequence:
		if len(v) == 0 {
			return
		}
	}
	*m = append(*m, field{key, value})
}

// documents writes each mapping as one YAML document, separated by "---".
func documents(docs ...mapping) []byte {
	var b bytes.Buffer
	for i, doc := range docs {
		if i > 0 {
			b.WriteString("---\n")
		}
		writeMapping(&b, doc, 0, false)
	}
	return b.Bytes()
}

// writeMapping writes m at indent. When inline, the first key follows a "- " already
// written, so it takes no indentation of its own.
func writeMapping(b *bytes.Buffer, m mapping, indent int, inline bool) {
	for i, f := range m {
		if i > 0 || !inline {
			b.WriteString(strings.Repeat(" ", indent))
		}
		b.WriteString(key(f.key))
		b.WriteByte(':')
		switch v := f.value.(type) {
		case mapping:
			if len(v) == 0 {
				b.WriteString(" {}\n")
				continue
			}
			b.WriteByte('\n')
			writeMapping(b, v, indent+2, false)
		case sequence:
			if len(v) == 0 {
				b.WriteString(" []\n")
				continue
			}
			// A sequence under a key sits at the key's own indentation, as kubectl
			// writes it.
			b.WriteByte('\n')
			writeSequence(b, v, indent, false)
		default:
			b.WriteByte(' ')
			b.WriteString(scalar(v))
			b.WriteByte('\n')
		}
	}
}

func writeSequence(b *bytes.Buffer, s sequence, indent int, inline bool) {
	for i, item := range s {
		if i > 0 || !inline {
			b.WriteString(strings.Repeat(" ", indent))
		}
		b.WriteString("- ")
		switch v := item.(type) {
		case mapping:
			if len(v) == 0 {
				b.WriteString("{}\n")
				continue
			}
			writeMapping(b, v, indent+2, true)
		case sequence:
			if len(v) == 0 {
				b.WriteString("[]\n")
				continue
			}
			writeSequence(b, v, indent+2, true)
		default:
			b.WriteString(scalar(v))
			b.WriteByte('\n')
		}
	}
}

// plainKey is a key that reads the same in every YAML version when left unquoted. The
// YAML 1.1 booleans and null are excluded: a 1.1 parser reads the key on as true.
var plainKey = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*$`)

func key(k string) string {
	switch strings.ToLower(k) {
	case "y", "n", "yes", "no", "on", "off", "true", "false", "null":
		return quote(k)
	}
	if plainKey.MatchString(k) {
		return k
	}
	return quote(k)
}

func scalar(v any) string {
	switch v := v.(type) {
	case string:
		return quote(v)
	case int:
		return strconv.Itoa(v)
	case bool:
		return strconv.FormatBool(v)
	}
	// Only the builders in this package make values, and they make none of another type.
	return quote("")
}

// quote writes s as a double-quoted scalar using only escapes that JSON and YAML share
// (\" \\ \n \t \uXXXX), so it reads back the same in either. Everything YAML does not
// print as itself is escaped: control characters, the YAML 1.1 line breaks (U+0085,
// U+2028, U+2029) that would fold the line, and a byte order mark.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case printable(r):
			b.WriteRune(r)
		default:
			// Every rune printable leaves out is below U+10000.
			fmt.Fprintf(&b, `\u%04X`, r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func printable(r rune) bool {
	switch {
	case r >= 0x20 && r <= 0x7E:
		return true
	case r == 0x2028 || r == 0x2029 || r == 0xFEFF:
		return false
	case r >= 0xA0 && r <= 0xD7FF, r >= 0xE000 && r <= 0xFFFD, r >= 0x10000 && r <= utf8.MaxRune:
		return true
	}
	return false
}
