package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestStripComments(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", `{"a": 1}`, `{"a": 1}`},
		{"line comment", "{\"a\": 1 // note\n}", "{\"a\": 1        \n}"},
		{"hash comment", "{\"a\": 1 # note\n}", "{\"a\": 1       \n}"},
		{"block comment", `{/* x */"a": 1}`, `{       "a": 1}`},
		{"block keeps newlines", "{/* x\ny */\"a\": 1}", "{    \n    \"a\": 1}"},
		{"block closes on **/", `{/* x **/"a":1}`, `{        "a":1}`},
		{"slash star slash does not close", `{/*/ x */"a":1}`, `{        "a":1}`},
		{"comment markers in strings", `{"u": "http://x/*y*/#z"}`, `{"u": "http://x/*y*/#z"}`},
		{"escaped quote in string", `{"a": "\"//"} // c`, `{"a": "\"//"}     `},
		{"escaped backslash ends string", `{"a": "\\"} // c`, `{"a": "\\"}     `},
		{"trailing comma in array", `[1, 2, ]`, `[1, 2  ]`},
		{"trailing comma in object", "{\"a\": 1,\n}", "{\"a\": 1 \n}"},
		{"trailing comma before comment", "[1, // c\n]", "[1      \n]"},
		{"trailing comma before block comment", "[1, /* c */ ]", "[1          ]"},
		{"comma in string is kept", `["a,]"]`, `["a,]"]`},
		{"comma after colon is kept", `{"a":,}`, `{"a":,}`},
		{"comma after bracket is kept", `[,]`, `[,]`},
		{"trailing comma after literal", `[true, null,]`, `[true, null ]`},
		{"trailing comma after nested", `{"a": [1,], "b": {},}`, `{"a": [1 ], "b": {} }`},
		{"double comma is kept for the decoder", `[1,,]`, `[1,,]`},
		{"lone slash is kept for the decoder", `{"a": 1 / 2}`, `{"a": 1 / 2}`},
		{"unterminated block comment", `{"a": 1} /* x`, `{"a": 1}     `},
		{"crlf line comment", "{\"a\": 1 // c\r\n}", "{\"a\": 1      \n}"},
		{"comment at end without newline", `{} // end`, `{}       `},
		{"slash at end", `{}/`, `{}/`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := StripComments([]byte(tt.in))
			if string(got) != tt.want {
				t.Errorf("StripComments(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if len(got) != len(tt.in) {
				t.Errorf("length changed from %d to %d", len(tt.in), len(got))
			}
		})
	}
}

func TestStripCommentsDoesNotModifyInput(t *testing.T) {
	in := []byte(`{"a": 1, // c
}`)
	orig := bytes.Clone(in)
	StripComments(in)
	if !bytes.Equal(in, orig) {
		t.Fatalf("input modified: %q", in)
	}
}

func FuzzStripComments(f *testing.F) {
	f.Add([]byte(`{"a": [1, 2, 3], "b": {"c": "d"}}`)) // valid JSON: must come back unchanged
	f.Add([]byte(`{"u": "http://x/*y*/#z\"//"}`))      // comment markers inside strings
	f.Add([]byte("{\"a\": 1, // c\n /* d */ }"))       // comments then a trailing comma
	f.Add([]byte(`[1,,]`))                             // malformed: must not panic
	f.Add([]byte(`"\\\"`))                             // unterminated string with escapes
	f.Add([]byte("/*/ */#\r\n//"))                     // comment edge cases only
	f.Fuzz(func(t *testing.T, data []byte) {
		out := StripComments(data)
		if len(out) != len(data) {
			t.Fatalf("length changed: %d -> %d", len(data), len(out))
		}
		for i := range data {
			if isNewline(data[i]) && data[i] == '\n' && out[i] != '\n' {
				t.Fatalf("newline at %d removed, so line numbers would shift", i)
			}
		}
		// Differential: valid JSON has no comments and no trailing commas.
		if json.Valid(data) && !bytes.Equal(out, data) {
			t.Fatalf("valid JSON changed:\n in: %q\nout: %q", data, out)
		}
		// Stripping is idempotent on anything it produces.
		if again := StripComments(out); !bytes.Equal(again, out) && json.Valid(out) {
			t.Fatalf("not idempotent: %q -> %q", out, again)
		}
	})
}

func TestSyntaxErrorPosition(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"missing value", "{\n  \"a\": ,\n}", "config: line 2, column 8: invalid character ',' looking for beginning of value"},
		{"after a comment", "// header\n{\"a\": 1 /* x */ \"b\": 2}", "config: line 2, column 17: invalid character '\"' after object key:value pair"},
		{"unexpected end", "{\"a\": [1, 2", "config: line 1, column 11: unexpected end of JSON input"},
		{"lone slash", "{\"a\": 1 / 2}", "config: line 1, column 9: invalid character '/' after object key:value pair"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse([]byte(tt.in))
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse error = %v, want a *SyntaxError", err)
			}
			if err.Error() != tt.want {
				t.Errorf("got  %q\nwant %q", err.Error(), tt.want)
			}
		})
	}
}

func TestParseEmpty(t *testing.T) {
	for _, in := range []string{"", "  \n", "// only a comment\n"} {
		if _, _, err := Parse([]byte(in)); err == nil || !strings.Contains(err.Error(), "empty") {
			t.Errorf("Parse(%q) error = %v, want empty document", in, err)
		}
	}
}
