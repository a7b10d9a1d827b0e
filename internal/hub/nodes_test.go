package hub_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/internal/hub"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// Two nodes on one PostgreSQL database: what either publishes reaches the
// subscribers of both, every topic in one order on both; a batch too large
// for a notification crosses as a stored payload.
func TestTwoNodes(t *testing.T) {
	t.Parallel()
	url := testdb.PostgresURL(t)
	regA, regB := prometheus.NewRegistry(), prometheus.NewRegistry()
	a := node(t, url, hub.Config{SubscriberBuffer: 1000, Registerer: regA})
	b := node(t, url, hub.Config{SubscriberBuffer: 1000, Registerer: regB})
	nodes := []*hub.Hub{a, b}
	topics := []string{"shared", "other"}

	subs := map[string][]*hub.Subscriber{}
	for _, topic := range topics {
		for _, h := range nodes {
			s, _ := subscribe(t, h, "default", topic, nil)
			subs[topic] = append(subs[topic], s)
		}
	}

	const publishers, each = 4, 50
	var wg sync.WaitGroup
	for p := range publishers {
		h := nodes[p%2]
		wg.Go(func() {
			for i := range each {
				if err := h.Publish(t.Context(), "default", topics[i%2], "x", json.RawMessage(fmt.Sprintf(`[%d,%d]`, p, i))); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, topic := range topics {
		onA := take(t, subs[topic][0], publishers*each/2)
		onB := take(t, subs[topic][1], publishers*each/2)
		checkOffsets(t, topic+" on a", onA, 1)
		checkOffsets(t, topic+" on b", onB, 1)
		if !slices.Equal(datas(onA), datas(onB)) {
			t.Fatalf("%s: the nodes saw different orders:\n%v\n%v", topic, datas(onA), datas(onB))
		}
	}

	// Over 8000 bytes in one batch, and one message alone over it.
	var out []hub.Outgoing
	var want []string
	for i := range 20 {
		d := fmt.Sprintf(`{"i":%d,"pad":"%s"}`, i, strings.Repeat("z", 1000))
		out = append(out, hub.Outgoing{Tenant: "default", Topic: "shared", Type: "big", Data: json.RawMessage(d)})
		want = append(want, d)
	}
	if err := b.PublishBatch(t.Context(), out); err != nil {
		t.Fatalf("PublishBatch: %v", err)
	}
	huge := fmt.Sprintf(`"%s"`, strings.Repeat("é", 15000))
	publish(t, a, "default", "shared", "huge", huge)
	want = append(want, huge)
	for i, s := range subs["shared"] {
		got := take(t, s, len(want))
		checkOffsets(t, "large ones", got, publishers*each/2+1)
		if !slices.Equal(datas(got), want) {
			t.Errorf("node %d: large messages arrived altered or out of order", i)
		}
	}
	for name, reg := range map[string]*prometheus.Registry{"a": regA, "b": regB} {
		if v := counter(t, reg, "switchyard_hub_stored_payloads_total"); v != 2 {
			t.Errorf("node %s fetched %v stored payloads, want 2 (the batch and the huge message)", name, v)
		}
	}
}

// counter reads a counter without labels from reg.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
