package dispatch_test

import (
	"fmt"

	"github.com/switchyard-dev/switchyard/internal/dispatch"
)

// ExampleCompile compiles a rule once and evaluates it for an event.
func ExampleCompile() {
	rule, err := dispatch.Compile("rul_1", "thumbnails", dispatch.Spec{
		Types:   []string{"image.*"},
		Filter:  `data.size > 1000 && subject startsWith "avatars/"`,
		Enabled: true,
		Actions: []dispatch.Action{{Type: dispatch.ActionEnqueue, Kind: "thumbnail", Args: `{"url": data.url}`}},
	})
	if err != nil {
		panic(err)
	}
	ev, _ := dispatch.Env([]byte(`{"specversion":"1.0","id":"1","source":"/uploads","type":"image.uploaded",
		"subject":"avatars/7","data":{"url":"https://cdn.example/a.png","size":52000}}`))
	if rule.Matches(ev.Type) {
		matched, decisions, err := rule.Evaluate(ev)
		fmt.Println(matched, err, decisions[0].Job.Kind, string(decisions[0].Job.Args))
	}
	// Output: true <nil> thumbnail {"url":"https://cdn.example/a.png"}
}
