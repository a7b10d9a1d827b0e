package dispatch

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestDataUse(t *testing.T) {
	for code, want := range map[string]dataUse{
		`data.size > 1000 && subject startsWith "avatars/"`: {keys: []string{"size"}},
		`{"url": data.url, "n": data["n"], "u": data.url}`:  {keys: []string{"url", "n"}},
		`data.a.b.c == 1 && data?.d != nil`:                 {keys: []string{"a", "d"}},
		`any(data.items, .x > 1)`:                           {keys: []string{"items"}},
		`type == "image.uploaded"`:                          {},
		`data`:                                              {whole: true},
		`data[type] == 1`:                                   {whole: true},
		`len(data) > 2`:                                     {whole: true},
		`"x" in data`:                                       {whole: true},
		`$env.data.x == 1`:                                  {whole: true},
		`let d = data; d.x`:                                 {whole: true},
		`data.x ==`:                                         {whole: true}, // unparsable: assume the worst
	} {
		var got dataUse
		got.add(code)
		if got.whole != want.whole || !slices.Equal(got.keys, want.keys) {
			t.Errorf("%s: reads %+v, want %+v", code, got, want)
		}
	}
}

// FuzzMembers checks members against encoding/json: for any JSON, the
// members it finds decode to what decoding the whole gives, and it declines
// only what is not an object.
func FuzzMembers(f *testing.F) {
	for _, seed := range []string{
		`{"a":1,"b":"x\"y}","c":{"d":[1,{"e":"}]"}]},"a":2}`,
		` { "\u0061" : true , "b" : null } `,
		`{"n":-1.5e+3,"s":"\\","t":"\\\"","u":[[],{}]}`,
		`{"k":"\ud800","\u00e9":"é","é":1}`,
		"{\"\xff\":1}",
		`{}`, `[1,2]`, `"str"`, `12`, `null`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return // members is given JSON only
		}
		var whole any
		if err := json.Unmarshal(raw, &whole); err != nil {
			return // JSON Go cannot hold (1E700): rules reading it fail either way
		}
		obj, isObject := whole.(map[string]any)
		keys := append(slices.Sorted(maps.Keys(obj)), "not-a-member")
		found, ok := members(raw, keys)
		if ok != isObject {
			t.Fatalf("members(%q) ok = %v for %T", raw, ok, whole)
		}
		if !ok {
			return
		}
		if len(found) != len(obj) {
			t.Fatalf("members(%q) found %d members, want %d", raw, len(found), len(obj))
		}
		for k, v := range obj {
			var got any
			if err := json.Unmarshal(found[k], &got); err != nil || !reflect.DeepEqual(got, v) {
				t.Fatalf("members(%q)[%q] = %s (%v), want %v", raw, k, found[k], err, v)
			}
		}
	})
}

func TestEvaluateDecodesWhatRulesRead(t *testing.T) {
	raw := []byte(`{"ref":"refs/heads/main","size":2048,"repository":{"name":"hello","topics":["a","b"]}}`)
	ev := &Event{Type: "github.push"}
	ev.SetData(raw)
	compile := func(spec Spec) *Rule {
		t.Helper()
		spec.Types, spec.Enabled = []string{"github.*"}, true
		r, err := Compile("rul", "r", spec)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	publish := []Action{{Type: ActionPublish, Topic: "t"}}
	evaluate := func(r *Rule) []Decision {
		t.Helper()
		matched, ds, err := r.Evaluate(ev)
		if err != nil || !matched {
			t.Fatalf("Evaluate = %v, %v", matched, err)
		}
		return ds
	}
	decoded := func() []string {
		m, _ := ev.Data.(map[string]any)
		return slices.Sorted(maps.Keys(m))
	}

	evaluate(compile(Spec{Filter: `type == "github.push"`, Actions: publish}))
	if ev.Data != nil {
		t.Fatalf("a rule that reads no data decoded %v", ev.Data)
	}
	evaluate(compile(Spec{Filter: `data.ref == "refs/heads/main"`, Actions: publish}))
	if got := decoded(); !slices.Equal(got, []string{"ref"}) {
		t.Fatalf("after data.ref: decoded %v", got)
	}
	evaluate(compile(Spec{Filter: `data.size > 1000 && data.ref != ""`, Actions: publish}))
	if got := decoded(); !slices.Equal(got, []string{"ref", "size"}) {
		t.Fatalf("after data.size: decoded %v", got)
	}
	// Data taken whole as args is passed on as it came.
	ds := evaluate(compile(Spec{Actions: []Action{{Type: ActionEnqueue, Kind: "k"}}}))
	if ds[0].Job == nil || string(ds[0].Job.Args) != string(raw) {
		t.Fatalf("default args = %+v", ds[0])
	}
	if got := decoded(); !slices.Equal(got, []string{"ref", "size"}) {
		t.Fatalf("passing data on decoded %v", got)
	}
	evaluate(compile(Spec{Filter: `len(data) == 3`, Actions: publish}))
	if got := decoded(); !slices.Equal(got, []string{"ref", "repository", "size"}) {
		t.Fatalf("after len(data): decoded %v", got)
	}

	// Data that is not an object is decoded whole, and read as before.
	arr := &Event{Type: "github.push"}
	arr.SetData([]byte(`[1,2]`))
	if _, _, err := compile(Spec{Filter: `data.x == 1`, Actions: publish}).Evaluate(arr); err == nil {
		t.Error("data.x of an array: no error")
	}
	_, ds, err := compile(Spec{Actions: []Action{{Type: ActionEnqueue, Kind: "k"}}}).Evaluate(arr)
	if err != nil || ds[0].Err == nil || !strings.Contains(ds[0].Err.Error(), "got an array") {
		t.Errorf("an array as default args = %+v, %v", ds, err)
	}
}

// A GitHub push's size of data, of which the rule reads one member.
func BenchmarkEvaluateLargeData(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"ref":"refs/heads/main","i":1,"repository":{"id":1`)
	for i := 0; sb.Len() < 7000; i++ {
		fmt.Fprintf(&sb, `,"url_%d":"https://api.github.com/repos/octo/hello/things/%d","count_%d":%d`, i, i, i, i)
	}
	sb.WriteString("}}")
	raw := []byte(sb.String())
	r, err := Compile("rul_1", "push", Spec{Types: []string{"github.*"}, Enabled: true, Filter: `data.i >= 0`,
		Actions: []Action{{Type: ActionEnqueue, Kind: "noop", Args: `{"i": data.i}`}}})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		ev := &Event{Type: "github.push"}
		ev.SetData(raw)
		if matched, _, err := r.Evaluate(ev); !matched || err != nil {
			b.Fatal(matched, err)
		}
	}
}
