package dispatch

import (
	"errors"
	"strings"
	"testing"
)

func TestMatchType(t *testing.T) {
	for _, c := range []struct {
		p, typ string
		want   bool
	}{
		{"*", "anything.at.all", true},
		{"image.*", "image.uploaded", true},
		{"image.*", "image.resized.small", true},
		{"image.*", "image", false},
		{"image.*", "image.", false},
		{"image.*", "imagex.uploaded", false},
		{"image.uploaded", "image.uploaded", true},
		{"image.uploaded", "image.uploaded.v2", false},
		{"job.dead", "job.dead", true},
	} {
		if got := MatchType(c.p, c.typ); got != c.want {
			t.Errorf("MatchType(%q, %q) = %v, want %v", c.p, c.typ, got, c.want)
		}
	}
}

func mustEnv(t *testing.T, event string) *Event {
	t.Helper()
	ev, err := Env([]byte(event))
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

const upload = `{"specversion":"1.0","id":"1","source":"/app","type":"image.uploaded","subject":"avatars/7",
	"data":{"url":"https://cdn.example/a.png","size":2048,"owner":{"id":"u7"}},"tenantlabel":"gold"}`

func TestEvaluate(t *testing.T) {
	r, err := Compile("rul_1", "resize", Spec{
		Types: []string{"image.*"}, Enabled: true,
		Filter: `data.size > 1000 && subject startsWith "avatars/" && extensions.tenantlabel == "gold"`,
		Actions: []Action{
			{Type: ActionEnqueue, Queue: "images", Kind: "resize", Args: `{"url": data.url, "owner": data.owner.id}`,
				UniqueKey: `"resize:" + id`, Delay: "30s", Priority: 1},
			{Type: ActionEnqueue, Kind: "audit"},
			{Type: ActionPublish, Topic: "uploads"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Matches("image.uploaded") || r.Matches("video.uploaded") {
		t.Fatal("type patterns")
	}
	matched, ds, err := r.Evaluate(mustEnv(t, upload))
	if err != nil || !matched || len(ds) != 3 {
		t.Fatalf("Evaluate = %v, %+v, %v", matched, ds, err)
	}
	j := ds[0].Job
	if ds[0].Err != nil || j.Queue != "images" || j.Kind != "resize" || string(j.Args) != `{"owner":"u7","url":"https://cdn.example/a.png"}` ||
		j.UniqueKey != "resize:1" || j.Delay.String() != "30s" || j.Priority != 1 {
		t.Errorf("enqueue decision = %+v (%v)", j, ds[0].Err)
	}
	if ds[1].Err != nil || !strings.Contains(string(ds[1].Job.Args), `"size":2048`) {
		t.Errorf("args default to the event's data: %+v", ds[1])
	}
	if ds[2].Topic != "uploads" || ds[2].Job != nil {
		t.Errorf("publish decision = %+v", ds[2])
	}

	small := strings.Replace(upload, `"size":2048`, `"size":10`, 1)
	if matched, _, err := r.Evaluate(mustEnv(t, small)); matched || err != nil {
		t.Errorf("a false filter: matched %v, err %v", matched, err)
	}
	// A filter that fails on this event: not matched, and why.
	noData := `{"specversion":"1.0","id":"2","source":"/app","type":"image.uploaded","subject":"avatars/7","tenantlabel":"gold"}`
	if matched, _, err := r.Evaluate(mustEnv(t, noData)); matched || err == nil || !strings.HasPrefix(err.Error(), "filter: ") {
		t.Errorf("a filter over missing data: matched %v, err %v; want an error", matched, err)
	}
	r.Spec.Enabled = false
	if r.Matches("image.uploaded") {
		t.Error("a disabled rule matches")
	}
}

func TestEvaluateActionErrors(t *testing.T) {
	r, err := Compile("rul_2", "x", Spec{Types: []string{"*"}, Enabled: true, Actions: []Action{
		{Type: ActionEnqueue, Kind: "k"},                  // data is an array: not args
		{Type: ActionEnqueue, Kind: "k", Args: `data[9]`}, // out of range
		{Type: ActionPublish, Topic: "t"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	matched, ds, err := r.Evaluate(mustEnv(t, `{"specversion":"1.0","id":"1","source":"/s","type":"t","data":[1,2]}`))
	if !matched || err != nil {
		t.Fatalf("Evaluate = %v, %v", matched, err)
	}
	if ds[0].Err == nil || !strings.Contains(ds[0].Err.Error(), "want an object, got an array") {
		t.Errorf("args from array data: %v", ds[0].Err)
	}
	if ds[1].Err == nil || ds[2].Err != nil || ds[2].Topic != "t" {
		t.Errorf("one failing action must not stop the others: %+v", ds)
	}
}

func TestCompileRefuses(t *testing.T) {
	ok := []Action{{Type: ActionPublish, Topic: "t"}}
	for name, spec := range map[string]Spec{
		"no types":          {Actions: ok},
		"inner star":        {Types: []string{"im*ge.uploaded"}, Actions: ok},
		"empty pattern":     {Types: []string{""}, Actions: ok},
		"space in pattern":  {Types: []string{"bad type"}, Actions: ok},
		"no actions":        {Types: []string{"*"}},
		"unknown action":    {Types: []string{"*"}, Actions: []Action{{Type: "email"}}},
		"action type":       {Types: []string{"*"}, Actions: []Action{{Topic: "t"}}},
		"enqueue no kind":   {Types: []string{"*"}, Actions: []Action{{Type: ActionEnqueue}}},
		"publish no topic":  {Types: []string{"*"}, Actions: []Action{{Type: ActionPublish}}},
		"publish with kind": {Types: []string{"*"}, Actions: []Action{{Type: ActionPublish, Topic: "t", Kind: "k"}}},
		"filter syntax":     {Types: []string{"*"}, Filter: `data.size >`, Actions: ok},
		"filter unknown":    {Types: []string{"*"}, Filter: `payload.size > 1`, Actions: ok},
		"filter not bool":   {Types: []string{"*"}, Filter: `"yes"`, Actions: ok},
		"args unknown name": {Types: []string{"*"}, Actions: []Action{{Type: ActionEnqueue, Kind: "k", Args: `{"a": nope}`}}},
		"bad delay":         {Types: []string{"*"}, Actions: []Action{{Type: ActionEnqueue, Kind: "k", Delay: "soon"}}},
		"key not string":    {Types: []string{"*"}, Actions: []Action{{Type: ActionEnqueue, Kind: "k", UniqueKey: `1 + 2`}}},
		"huge filter":       {Types: []string{"*"}, Filter: strings.Repeat("true && ", 1000) + "true", Actions: ok},
	} {
		if _, err := Compile("rul", "r", spec); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Compile = %v, want ErrInvalid", name, err)
		} else if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: the message spans lines: %q", name, err)
		}
	}
}

func BenchmarkEvaluate(b *testing.B) {
	r, err := Compile("rul_1", "resize", Spec{
		Types: []string{"image.*"}, Enabled: true, Filter: `data.size > 1000 && subject startsWith "avatars/"`,
		Actions: []Action{{Type: ActionEnqueue, Queue: "images", Kind: "resize", Args: `{"url": data.url}`}},
	})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		ev, _ := Env([]byte(upload))
		if matched, _, err := r.Evaluate(ev); !matched || err != nil {
			b.Fatal(matched, err)
		}
	}
}
