package kinds_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/kinds"
)

// Example calls a webhook with the built-in http kind: no Go handler of
// the application's own, just args.
func Example() {
	// A webhook receiver; it answers with JSON, which the job records.
	called := make(chan string, 1)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		called <- fmt.Sprintf("%s %s %s", r.Method, r.URL.Path, body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"received": true}`)
	}))
	defer receiver.Close()

	dir, _ := os.MkdirTemp("", "switchyard-example-")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	client, err := switchyard.Open(ctx, switchyard.Config{
		Database: "sqlite:" + filepath.Join(dir, "switchyard.db"),
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	defer client.Close()
	// The receiver is on this machine, which the http kind refuses to call
	// unless told otherwise.
	if err := kinds.Register(client, kinds.Config{AllowPrivateTargets: true}); err != nil {
		panic(err)
	}
	if err := client.Start(ctx); err != nil {
		panic(err)
	}

	args := fmt.Sprintf(`{"url": %q, "body": {"order": 42}}`, receiver.URL+"/orders")
	res, err := client.Enqueue(ctx, switchyard.RawArgs{KindName: kinds.KindHTTP, JSON: []byte(args)}, nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(<-called)
	_ = client.Stop(ctx) // waits for the job and records its outcome

	job, _ := client.GetJob(ctx, res.Job.ID)
	fmt.Println(job.State, string(job.Result))
	// Output:
	// POST /orders {"order":42}
	// succeeded {"status":200,"headers":{"Content-Type":"application/json"},"body":{"received":true}}
}
