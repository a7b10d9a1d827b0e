package hub_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/switchyard-dev/switchyard/internal/hub"
	"github.com/switchyard-dev/switchyard/internal/store/sqlite"
)

// A subscriber takes the position of the last message it saw; resuming
// from it later replays exactly what it missed.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "hub-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "switchyard.db")})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	h, err := hub.New(hub.Config{Store: st})
	if err != nil {
		log.Fatal(err)
	}
	st.Listen(h.Notify) // the store's notifications carry every node's messages
	if err := h.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer h.Stop()

	conn := h.NewSubscriber("default")
	if _, err := conn.Subscribe("orders", nil); err != nil {
		log.Fatal(err)
	}
	_ = h.Publish(ctx, "default", "orders", "order.created", []byte(`{"id":1}`))
	m := <-conn.C()
	fmt.Println(m.Offset, m.Type, string(m.Data))
	last := m.Position()
	conn.Close() // the connection drops…

	_ = h.Publish(ctx, "default", "orders", "order.paid", []byte(`{"id":1}`))
	_ = h.Publish(ctx, "default", "orders", "order.shipped", []byte(`{"id":1}`))

	conn = h.NewSubscriber("default") // …and comes back
	defer conn.Close()
	r, err := conn.Subscribe("orders", &last)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("gap:", r.Gap)
	// What it missed comes first; whatever had not reached this node yet
	// when it resubscribed follows live, with nothing lost or repeated.
	for _, m := range r.Missed {
		fmt.Println(m.Offset, m.Type, string(m.Data))
	}
	for seen := r.Position.Offset; seen < 3; seen++ {
		m := <-conn.C()
		fmt.Println(m.Offset, m.Type, string(m.Data))
	}
	// Output:
	// 1 order.created {"id":1}
	// gap: false
	// 2 order.paid {"id":1}
	// 3 order.shipped {"id":1}
}
