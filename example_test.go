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
