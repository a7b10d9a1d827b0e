package store

import (
	"bytes"
	"strings"
)

// PostgreSQL's text and jsonb cannot hold NUL (nor invalid UTF-8), and a
// completion that the database refuses would be retried forever, holding up
// every outcome behind it. What handlers produce (error messages, results,
// progress) is therefore cleaned before it is written, on both backends
// alike; what callers send (job args) is refused at the edge instead.

// CleanText returns s as valid UTF-8 without NUL characters; each bad byte
// or NUL becomes U+FFFD.
func CleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	return s
}

// HasNULEscape reports whether encoded JSON contains a \u0000 escape (in a
// string; a literal backslash before it does not count).
func HasNULEscape(b []byte) bool {
	return nulEscape(b) >= 0
}

// CleanJSON replaces every \u0000 escape in encoded JSON with \ufffd. b is
// returned unchanged, not copied, when it has none.
func CleanJSON(b []byte) []byte {
	i := nulEscape(b)
	if i < 0 {
		return b
	}
	out := bytes.Clone(b)
	for ; i >= 0; i = nulEscape(out) {
		copy(out[i:], `\ufffd`)
	}
	return out
}

// nulEscape finds the first \u0000 escape that is an escape: preceded by an
// even number of further backslashes.
func nulEscape(b []byte) int {
	from := 0
	for {
		j := bytes.Index(b[from:], []byte(`\u0000`))
		if j < 0 {
			return -1
		}
		at := from + j
		n := 0
		for k := at - 1; k >= 0 && b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return at
		}
		from = at + 1
	}
}
