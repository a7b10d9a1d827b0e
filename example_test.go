package switchyard_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/switchyard-dev/switchyard"
)

type GreetArgs struct {
	Name string `json:"name"`
}

func (GreetArgs) Kind() string { return "greet" }

// Example enqueues a job on an embedded SQLite file and runs it with a typed
// handler.
func Example() {
	dir, _ := os.MkdirTemp("", "switchyard-example-")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	client, err := switchyard.Open(ctx, switchyard.Config{Database: "sqlite:" + filepath.Join(dir, "switchyard.db")})
	if err != nil {
		panic(err)
	}
	defer client.Close()

	done := make(chan struct{})
	switchyard.Handle(client, func(ctx context.Context, job *switchyard.Job[GreetArgs]) error {
		defer close(done)
		fmt.Printf("hello, %s (attempt %d)\n", job.Args.Name, job.Attempt)
		return job.SetResult("greeted")
	})
	if err := client.Start(ctx); err != nil {
		panic(err)
	}
	res, err := client.Enqueue(ctx, GreetArgs{Name: "Ada"}, nil)
	if err != nil {
		panic(err)
	}
	<-done
	_ = client.Stop(ctx) // records the outcome before returning

	job, _ := client.GetJob(ctx, res.Job.ID)
	fmt.Println(job.State, string(job.Result))
	// Output:
	// hello, Ada (attempt 1)
	// succeeded "greeted"
}

// ExampleSnooze polls an external system with growing intervals without
// using up attempts.
func ExampleSnooze() {
	handler := func(ctx context.Context, job *switchyard.Job[GreetArgs]) error {
		ready := false // ask the external system here
		if !ready {
			return switchyard.Snooze(30 * time.Second) // look again later
		}
		return nil
	}
	_ = handler
}

type ThumbnailArgs struct {
	URL string `json:"url"`
}

func (ThumbnailArgs) Kind() string { return "thumbnail" }

// ExampleClient_SendEvents routes a CloudEvent through a rule: the event
// and the job the rule makes of it are recorded together, and sending the
// event again changes nothing.
func ExampleClient_SendEvents() {
	dir, _ := os.MkdirTemp("", "switchyard-example-")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	client, err := switchyard.Open(ctx, switchyard.Config{Database: "sqlite:" + filepath.Join(dir, "switchyard.db")})
	if err != nil {
		panic(err)
	}
	defer client.Close()
	switchyard.Handle(client, func(ctx context.Context, job *switchyard.Job[ThumbnailArgs]) error { return nil })

	_, err = client.CreateRule(ctx, "thumbnails", switchyard.RuleSpec{
		Types:   []string{"image.*"},
		Filter:  `data.size > 1000`,
		Enabled: true,
		Actions: []switchyard.RuleAction{{Type: switchyard.RuleEnqueue, Kind: "thumbnail", Queue: "images", Args: `{"url": data.url}`}},
	})
	if err != nil {
		panic(err)
	}
	upload := switchyard.CloudEvent{
		SpecVersion: "1.0", ID: "upload-1", Source: "/uploads", Type: "image.uploaded",
		Data: []byte(`{"url":"https://cdn.example/cat.png","size":52000}`),
	}
	for range 2 {
		sent, err := client.SendEvents(ctx, upload)
		if err != nil {
			panic(err)
		}
		d := sent[0].Event.Dispatch[0]
		job, _ := client.GetJob(ctx, d.Actions[0].JobID)
		fmt.Printf("repeat %v: rule %s matched %v, job %s %s\n", sent[0].Existing, d.RuleName, d.Matched, job.Kind, job.Args)
	}
	// Output:
	// repeat false: rule thumbnails matched true, job thumbnail {"url":"https://cdn.example/cat.png"}
	// repeat true: rule thumbnails matched true, job thumbnail {"url":"https://cdn.example/cat.png"}
}
