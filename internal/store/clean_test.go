package store

import "testing"

func TestCleanText(t *testing.T) {
	for in, want := range map[string]string{
		"plain":        "plain",
		"nul\x00here":  "nul\uFFFDhere",
		"bad\xffutf8":  "bad\uFFFDutf8",
		"":             "",
		"ünïcödé ok ✓": "ünïcödé ok ✓",
	} {
		if got := CleanText(in); got != want {
			t.Errorf("CleanText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCleanJSON(t *testing.T) {
	for in, want := range map[string]string{
		`{"a":"x"}`:           `{"a":"x"}`,
		`{"a":"x\u0000y"}`:    `{"a":"x\ufffdy"}`,
		`["\u0000","\u0000"]`: `["\ufffd","\ufffd"]`,
		`{"a":"\\u0000"}`:     `{"a":"\\u0000"}`, // a backslash, then text
		`{"a":"\\\u0000"}`:    `{"a":"\\\ufffd"}`,
		`{"\u0000":1}`:        `{"\ufffd":1}`,
	} {
		if got := string(CleanJSON([]byte(in))); got != want {
			t.Errorf("CleanJSON(%s) = %s, want %s", in, got, want)
		}
		if HasNULEscape([]byte(in)) != (in != want) {
			t.Errorf("HasNULEscape(%s) = %v", in, !(in != want))
		}
	}
}
