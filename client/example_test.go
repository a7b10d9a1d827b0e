package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/switchyard-dev/switchyard/client"
)

func Example() {
	ctx := context.Background()
	c, err := client.New(client.Config{
		BaseURL: "http://localhost:8080",
		APIKey:  os.Getenv("SWITCHYARD_API_KEY"),
	})
	if err != nil {
		log.Fatal(err)
	}
	job, existing, err := c.EnqueueJob(ctx, client.JobRequest{
		Kind:      "email.send",
		Args:      map[string]string{"to": "ada@example.com"},
		Delay:     10 * time.Second,
		UniqueKey: "welcome:ada",
		Tags:      []string{"welcome"},
	})
	var apiErr *client.Error
	switch {
	case errors.As(err, &apiErr) && apiErr.Code == client.CodeInvalidArgument:
		log.Fatalf("rejected: %s", apiErr.Message)
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println(job.ID, job.State, existing)
}

func ExampleClient_ListJobs() {
	ctx := context.Background()
	c, err := client.New(client.Config{APIKey: os.Getenv("SWITCHYARD_API_KEY")})
	if err != nil {
		log.Fatal(err)
	}
	// Follow the cursors to see every dead job of the queue.
	p := client.ListJobsParams{Queue: "emails", State: client.StateDead, Limit: 500}
	for {
		page, err := c.ListJobs(ctx, p)
		if err != nil {
			log.Fatal(err)
		}
		for _, j := range page.Items {
			if n := len(j.Errors); n > 0 {
				fmt.Println(j.ID, j.Errors[n-1].Message)
			}
		}
		if page.NextCursor == "" {
			break
		}
		p.Cursor = page.NextCursor
	}
}

func ExampleClient_UpdateQueue() {
	ctx := context.Background()
	c, err := client.New(client.Config{APIKey: os.Getenv("SWITCHYARD_API_KEY")})
	if err != nil {
		log.Fatal(err)
	}
	concurrency := 20
	q, err := c.UpdateQueue(ctx, "emails", client.QueueUpdate{Concurrency: &concurrency})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(q.Name, q.Concurrency, q.Counts.Available)
}
