package switchyard

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/queue"
)

type looseArgs map[string]any

func (looseArgs) Kind() string { return "loose" }

type checkedMapArgs map[string]any

func (checkedMapArgs) Kind() string { return "checked" }
func (a checkedMapArgs) Validate() error {
	if _, ok := a["id"]; !ok {
		return errors.New("id is required")
	}
	return nil
}

type decodingMapArgs map[string]any

func (decodingMapArgs) Kind() string { return "decoding" }
func (a *decodingMapArgs) UnmarshalJSON(b []byte) error {
	return errors.New("never decodes")
}

type numberMapArgs map[string]int

func (numberMapArgs) Kind() string { return "numbers" }

type structArgs struct{ ID int }

func (structArgs) Kind() string { return "struct" }

// Only a kind that any JSON object decodes into, and that checks nothing,
// may skip decoding encoded args when they are validated.
func TestAcceptsAnyObject(t *testing.T) {
	for name, got := range map[string]bool{
		"map[string]any":             acceptsAnyObject[looseArgs](),
		"with Validate":              acceptsAnyObject[checkedMapArgs](),
		"with UnmarshalJSON":         acceptsAnyObject[decodingMapArgs](),
		"map[string]int":             acceptsAnyObject[numberMapArgs](),
		"struct":                     acceptsAnyObject[structArgs](),
		"RawArgs (decided per call)": acceptsAnyObject[RawArgs](),
	} {
		if want := name == "map[string]any"; got != want {
			t.Errorf("%s: acceptsAnyObject = %v, want %v", name, got, want)
		}
	}

	// The kinds that must decode still reject what they cannot take.
	c := &Client{registry: queue.NewRegistry()}
	Handle(c, func(context.Context, *Job[looseArgs]) error { return nil })
	Handle(c, func(context.Context, *Job[checkedMapArgs]) error { return nil })
	Handle(c, func(context.Context, *Job[numberMapArgs]) error { return nil })
	for _, tc := range []struct {
		kind, args string
		ok         bool
	}{
		{"loose", `{"a": [1, {"b": null}], "c": "x"}`, true},
		{"checked", `{"id": 1}`, true},
		{"checked", `{"other": 1}`, false},
		{"numbers", `{"n": 1}`, true},
		{"numbers", `{"n": "one"}`, false},
	} {
		err := c.registry.Lookup(tc.kind).Validate(RawArgs{KindName: tc.kind, JSON: json.RawMessage(tc.args)}, []byte(tc.args))
		if (err == nil) != tc.ok {
			t.Errorf("%s %s: Validate = %v, want ok=%v", tc.kind, tc.args, err, tc.ok)
		}
	}
}
