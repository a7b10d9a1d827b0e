package dispatch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
)

// An event's data is often most of it: a GitHub push carries several KB,
// and decoding that into maps for expr costs more than everything else a
// rule does. Most rules read a member or two (data.ref, data.size), so an
// Event's data is decoded only when a rule reads it, and then only the
// top-level members its expressions name. What an expression reads is
// found in its syntax tree when the rule is compiled.

// dataUse is what of an event's data a rule's expressions read.
type dataUse struct {
	keys  []string // top-level members, read as data.k or data["k"]
	whole bool     // data itself: passed on, indexed by a computed key, …
}

func (u *dataUse) reads() bool { return u.whole || len(u.keys) > 0 }

// add adds what expression code reads. Anything it cannot tell reads the
// whole data: decoding more than needed is only slower.
func (u *dataUse) add(code string) {
	if code == "" || u.whole {
		return
	}
	tree, err := parser.Parse(code)
	if err != nil {
		u.whole = true
		return
	}
	var f dataFinder
	ast.Walk(&tree.Node, &f)
	if f.env || f.refs != len(f.keys) {
		u.whole = true
		return
	}
	for _, k := range f.keys {
		if !slices.Contains(u.keys, k) {
			u.keys = append(u.keys, k)
		}
	}
}

// dataFinder collects the members of data an expression reads by name.
type dataFinder struct {
	refs int      // identifiers "data"
	keys []string // of those, the ones read as data.k, by k
	env  bool     // $env, through which all of the event can be read
}

func (f *dataFinder) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		switch n.Value {
		case "data":
			f.refs++
		case "$env":
			f.env = true
		}
	case *ast.MemberNode:
		id, ok := n.Node.(*ast.IdentifierNode)
		if !ok || id.Value != "data" || n.Method {
			return
		}
		if k, ok := n.Property.(*ast.StringNode); ok {
			f.keys = append(f.keys, k.Value)
		}
	}
}

// SetData gives ev its data as JSON (nil for none). Rules decode it as
// far as they read it when they are evaluated; until then Data is nil.
func (ev *Event) SetData(raw []byte) {
	ev.Data, ev.raw, ev.loaded, ev.whole = nil, raw, nil, len(raw) == 0
}

// load decodes what u reads of ev's data that is not decoded yet.
func (ev *Event) load(u *dataUse) error {
	if ev.whole || !u.reads() {
		return nil
	}
	if !u.whole {
		var missing []string
		for _, k := range u.keys {
			if !slices.Contains(ev.loaded, k) {
				missing = append(missing, k)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if found, ok := members(ev.raw, missing); ok {
			data, _ := ev.Data.(map[string]any)
			if data == nil {
				data = make(map[string]any, len(missing))
			}
			for k, raw := range found {
				var v any
				if err := json.Unmarshal(raw, &v); err != nil {
					return fmt.Errorf("data: %w", err)
				}
				data[k] = v
			}
			ev.Data, ev.loaded = data, append(ev.loaded, missing...)
			return nil
		}
		// Not an object, or not JSON the scan follows: decode it whole,
		// which gives expressions what they always saw, or the error.
	}
	var v any
	if err := json.Unmarshal(ev.raw, &v); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	ev.Data, ev.whole = v, true
	return nil
}

// rawObject returns ev's data as JSON if it is an object, for an enqueue
// action that takes the data as its args whole: passing the JSON on costs
// nothing, where decoding and encoding it again costs the most of all.
func (ev *Event) rawObject() (json.RawMessage, bool) {
	if len(ev.raw) == 0 {
		return nil, false
	}
	i := skipSpace(ev.raw, 0)
	return ev.raw, i < len(ev.raw) && ev.raw[i] == '{'
}

// members returns the JSON of the members of object raw named in keys, the
// last of each where a name repeats, as encoding/json decodes it. ok is
// false if raw is not an object or the scan finds it malformed; the scan
// does not check the values it skips, so raw must be known to be JSON.
func members(raw []byte, keys []string) (found map[string][]byte, ok bool) {
	found = make(map[string][]byte, len(keys))
	i := skipSpace(raw, 0)
	if i == len(raw) || raw[i] != '{' {
		return nil, false
	}
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		return found, skipSpace(raw, i+1) == len(raw)
	}
	for {
		if i == len(raw) || raw[i] != '"' {
			return nil, false
		}
		end, ok := stringEnd(raw, i)
		if !ok {
			return nil, false
		}
		quoted := raw[i:end]
		if i = skipSpace(raw, end); i == len(raw) || raw[i] != ':' {
			return nil, false
		}
		i = skipSpace(raw, i+1)
		if end, ok = valueEnd(raw, i); !ok {
			return nil, false
		}
		if k, ok := wantedKey(quoted, keys); ok {
			found[k] = raw[i:end]
		}
		if i = skipSpace(raw, end); i == len(raw) {
			return nil, false
		}
		switch raw[i] {
		case '}':
			return found, skipSpace(raw, i+1) == len(raw)
		case ',':
			i = skipSpace(raw, i+1)
		default:
			return nil, false
		}
	}
}

// wantedKey returns the member name quoted (a JSON string) if it is one of
// keys.
func wantedKey(quoted []byte, keys []string) (string, bool) {
	name := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(name, '\\') >= 0 || !utf8.Valid(name) {
		// Escapes, or bytes encoding/json replaces: compare what it decodes.
		var s string
		if json.Unmarshal(quoted, &s) != nil {
			return "", false
		}
		name = []byte(s)
	}
	for _, k := range keys {
		if string(name) == k {
			return k, true
		}
	}
	return "", false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the JSON string starting at b[i].
func stringEnd(b []byte, i int) (int, bool) {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++ // whatever is escaped, it does not end the string
		case '"':
			return i + 1, true
		}
	}
	return 0, false
}

// valueEnd returns the index just past the JSON value starting at b[i].
func valueEnd(b []byte, i int) (int, bool) {
	if i == len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				end, ok := stringEnd(b, i)
				if !ok {
					return 0, false
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1, true
				}
			}
		}
		return 0, false
	}
	start := i // a number, true, false or null
	for i < len(b) && !endsLiteral(b[i]) {
		i++
	}
	return i, i > start
}

func endsLiteral(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\r', '\n':
		return true
	}
	return false
}
