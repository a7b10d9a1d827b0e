package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	switchyard "github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/hub"
)

func TestCloseReason(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err    error
		code   int
		reason string
	}{
		{fmt.Errorf("%w: buffer of 64 messages full", hub.ErrSlowConsumer), 4000, "slow consumer: buffer of 64 messages full"},
		{hub.ErrResync, 4001, hub.ErrResync.Error()},
		{hub.ErrStopped, 1001, "server shutting down"},
		{errors.New("odd"), 1011, "internal error"},
	} {
		code, reason := closeReason(tc.err)
		if code != tc.code || reason != tc.reason || len(reason) > closeReasonMaxSize {
			t.Errorf("closeReason(%v) = %d %q, want %d %q", tc.err, code, reason, tc.code, tc.reason)
		}
	}
}

// TestEncodeMessage: the hand-made encoding is JSON that says what the
// message says, escapes included, and is shared between calls.
func TestEncodeMessage(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 28, 9, 0, 0, 123000000, time.UTC)
	m := &hub.Message{Topic: `we"ird\topic ü`, Offset: 7, Epoch: "ab-1", Type: "ev\u2028", Data: json.RawMessage(`{"a":[1,"x"]}`), Time: at}
	b := encodeMessage(m)
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	want := map[string]any{"type": "message", "topic": m.Topic, "offset": 7.0, "epoch": "ab-1", "event": m.Type,
		"data": map[string]any{"a": []any{1.0, "x"}}, "time": "2026-11-28T09:00:00.123Z"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("encoded %s, want %v", b, want)
	}
	if again := encodeMessage(m); &again[0] != &b[0] {
		t.Error("a message is encoded twice")
	}
	null := encodeMessage(&hub.Message{Topic: "t", Offset: 1, Epoch: "e", Type: "x", Time: at})
	if err := json.Unmarshal(null, &got); err != nil || got["data"] != nil {
		t.Fatalf("no data: %s", null)
	}
	for _, s := range []string{"plain", "quote\"back\\slash", "ctl\x01\n\t", "bad\xffutf8", "emoji 🚂"} {
		var out string
		if err := json.Unmarshal(appendJSONString(nil, s), &out); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
}

func TestResumeToken(t *testing.T) {
	t.Parallel()
	topics := []string{"a", "b.c", "missing"}
	pos := map[string]*topicPos{"a": {epoch: "e1", last: 17}, "b.c": {epoch: `e"2`, last: 0}}
	tok := string(appendResumeToken(nil, topics, pos))
	got, err := decodeResumeToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || *got["a"] != (hub.Position{Offset: 17, Epoch: "e1"}) || *got["b.c"] != (hub.Position{Epoch: `e"2`}) {
		t.Fatalf("round trip: %v", got)
	}
	for _, bad := range []string{"", "!!", "e30x", "WyJ4Il0"} {
		if _, err := decodeResumeToken(bad); err == nil && bad != "" {
			t.Errorf("decodeResumeToken(%q) succeeded", bad)
		}
	}
	// Last-Event-ID wins; since takes a token or JSON.
	p, err := parseStreamSince(tok, `{"a":{"offset":1,"epoch":"x"}}`)
	if err != nil || p["a"].Offset != 17 {
		t.Fatalf("Last-Event-ID: %v %v", p, err)
	}
	p, err = parseStreamSince("", `{"a":{"offset":1,"epoch":"x"}}`)
	if err != nil || p["a"].Offset != 1 {
		t.Fatalf("since JSON: %v %v", p, err)
	}
	if p, err = parseStreamSince("", tok); err != nil || p["a"].Offset != 17 {
		t.Fatalf("since token: %v %v", p, err)
	}
	for _, bad := range [][2]string{{"nope", ""}, {"", "nope"}, {"", "{broken"}} {
		if _, err := parseStreamSince(bad[0], bad[1]); !errors.Is(err, switchyard.ErrInvalidArgument) {
			t.Errorf("parseStreamSince(%q, %q): %v", bad[0], bad[1], err)
		}
	}
}

func TestTopicPos(t *testing.T) {
	t.Parallel()
	p := &topicPos{epoch: "e", last: 5}
	for _, tc := range []struct {
		offset uint64
		epoch  string
		want   bool
	}{{5, "e", false}, {3, "e", false}, {6, "e", true}, {6, "e", false}, {1, "f", true}, {1, "f", false}, {2, "f", true}} {
		if got := p.wants(&hub.Message{Offset: tc.offset, Epoch: tc.epoch}); got != tc.want {
			t.Errorf("wants(%d, %s) = %v", tc.offset, tc.epoch, got)
		}
	}
}

func TestTopics(t *testing.T) {
	t.Parallel()
	for topic, builtin := range map[string]bool{"jobs": true, "job.1": true, "queue.q": true, "workflow.x": true,
		"events": true, "events.a.b": true, "workers": true, "jobs.1": false, "job": false, "worker": false, "chat.room": false} {
		if switchyard.IsBuiltinTopic(topic) != builtin {
			t.Errorf("IsBuiltinTopic(%q) = %v", topic, !builtin)
		}
	}
	for _, tc := range []struct {
		pattern, topic string
		want           bool
	}{{"a.*", "a.b", true}, {"a.*", "a.b.c", true}, {"a.*", "a", false}, {"a.*", "a.", false}, {"a.*", "ab", false},
		{"a", "a", true}, {"a", "a.b", false}, {"a*", "ab", false}} {
		if got := switchyard.TopicMatches(tc.pattern, tc.topic); got != tc.want {
			t.Errorf("TopicMatches(%q, %q) = %v", tc.pattern, tc.topic, got)
		}
	}
	for p, ok := range map[string]bool{"a.*": true, "a": true, "*": false, ".*": false, "a.b*": false, "a b": false, "a.*.*": false} {
		if err := switchyard.CheckTopicPattern(p); (err == nil) != ok {
			t.Errorf("CheckTopicPattern(%q) = %v", p, err)
		}
	}
}
