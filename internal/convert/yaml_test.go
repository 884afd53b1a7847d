package convert

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":                  `""`,
		"plain":             `"plain"`,
		`a "b" \c`:          `"a \"b\" \\c"`,
		"yes":               `"yes"`,
		"# not: a comment":  `"# not: a comment"`,
		"line\nbreak\ttab":  `"line\nbreak\ttab"`,
		"\x00\x1f\x7f":      `"\u0000\u001F\u007F"`,
		"nel\u0085":         `"nel\u0085"`,
		"ls\u2028ps\u2029":  `"ls\u2028ps\u2029"`,
		"\ufeffbom":         `"\uFEFFbom"`,
		"über 🙂":            `"über 🙂"`,
		"\u00a0nbsp":        "\"\u00a0nbsp\"",
		"'single' & <html>": `"'single' & <html>"`,
	} {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestKeys(t *testing.T) {
	for in, want := range map[string]string{
		"apiVersion": "apiVersion",
		"DOUS-id":    `"DOUS-id"`,
		"on":         `"on"`,
		"No":         `"No"`,
		"null":       `"null"`,
		"a.b":        `"a.b"`,
		"1":          `"1"`,
		"":           `""`,
	} {
		if got := key(in); got != want {
			t.Errorf("key(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestDocuments(t *testing.T) {
	var optional mapping
	optional.set("empty", "")
	optional.set("zero", 0)
	optional.set("false", false)
	optional.set("none", mapping{})
	optional.set("nothing", sequence{})
	optional.set("neg", -1)
	optional.set("t", true)
	got := string(documents(
		mapping{
			{"a", mapping{{"b", sequence{
				mapping{{"c", 1}, {"d", sequence{"x", "y"}}},
				sequence{"nested", sequence{"deeper"}},
				"s",
				mapping{},
				sequence{},
			}}}},
			{"e", mapping{}},
			{"f", sequence{}},
		},
		optional,
	))
	want := `a:
  b:
  - c: 1
    d:
    - "x"
    - "y"
  - - "nested"
    - - "deeper"
  - "s"
  - {}
  - []
e: {}
f: []
---
neg: -1
t: true
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// FuzzQuote checks quote against encoding/json: every quoted string is a JSON string that
// decodes to the input, and holds nothing YAML would not print as itself.
func FuzzQuote(f *testing.F) {
	f.Add("password")           // plain
	f.Add(`"quoted" \ back`)    // the two JSON escapes
	f.Add("a: b # c")           // YAML indicators
	f.Add("\x00\x1b\x7f\u0085") // C0, DEL and NEL
	f.Add("\u2028\u2029\ufeff") // YAML 1.1 line breaks and the BOM
	f.Add("ü🙂\U0010FFFF")       // multi-byte and the last code point
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			t.Skip("credentials that are not UTF-8 are rejected before quoting")
		}
		q := quote(s)
		var back string
		if err := json.Unmarshal([]byte(q), &back); err != nil || back != s {
			t.Fatalf("quote(%q) = %s, reads back as %q (%v)", s, q, back, err)
		}
		for _, r := range strings.Trim(q, `"`) {
			if !printable(r) {
				t.Fatalf("quote(%q) = %s holds %U", s, q, r)
			}
		}
	})
}
