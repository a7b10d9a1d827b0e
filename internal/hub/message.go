package hub

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Message is one message of a topic as subscribers receive it. One Message
// is shared by every subscriber of its topic on this node: read it, never
// modify it.
type Message struct {
	Topic string `json:"topic"`
	// Offset numbers the topic's messages on this node, from 1, without
	// holes; it is only meaningful with Epoch.
	Offset uint64 `json:"offset"`
	// Epoch names the numbering Offset belongs to (see the package doc).
	Epoch string          `json:"epoch"`
	Type  string          `json:"type"`
	Data  json.RawMessage `json:"data"`
	// Time is when the message was published, by the publishing node's
	// clock.
	Time time.Time `json:"time"`
}

// Position returns the stream position of m: resuming from it replays
// what came after m.
func (m *Message) Position() Position { return Position{Offset: m.Offset, Epoch: m.Epoch} }

// Position is a place in a topic's stream on one node: the offset of the
// last message a client has, and the epoch it belongs to.
type Position struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// Outgoing is a message to publish.
type Outgoing struct {
	Tenant string
	Topic  string
	Type   string
	Data   json.RawMessage // JSON; empty means null
}

// maxNameBytes limits tenants, topics and types.
const maxNameBytes = 256

// checkName validates a tenant, topic or type: non-empty, short, UTF-8
// without control characters (so it needs no escaping but quotes and
// backslashes, and prints safely in logs).
func checkName(what, s string) error {
	if s == "" {
		return fmt.Errorf("hub: %w: %s is empty", ErrInvalid, what)
	}
	if len(s) > maxNameBytes {
		return fmt.Errorf("hub: %w: %s is longer than %d bytes", ErrInvalid, what, maxNameBytes)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("hub: %w: %s is not valid UTF-8", ErrInvalid, what)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("hub: %w: %s contains a control character", ErrInvalid, what)
		}
	}
	return nil
}

// The wire form of a send: {"m":[message, …]}, each message
// {"n":tenant,"t":topic,"y":type,"a":unix microseconds,"d":data}. Short keys
// keep small messages small enough to share one notification.
type wireBatch struct {
	M []wireMsg `json:"m"`
}

type wireMsg struct {
	Tenant string          `json:"n"`
	Topic  string          `json:"t"`
	Type   string          `json:"y"`
	At     int64           `json:"a"`
	Data   json.RawMessage `json:"d"`
}

const (
	batchOpen  = `{"m":[`
	batchClose = `]}`
)

// encodeMsg validates o and appends its wire form to buf.
func (h *Hub) encodeMsg(buf []byte, o *Outgoing, at time.Time) ([]byte, error) {
	for _, f := range [...]struct{ what, s string }{{"tenant", o.Tenant}, {"topic", o.Topic}, {"type", o.Type}} {
		if err := checkName(f.what, f.s); err != nil {
			return buf, err
		}
	}
	if len(o.Data) > h.cfg.MaxMessageBytes {
		return buf, fmt.Errorf("hub: %w: data is larger than the limit of %d bytes", ErrInvalid, h.cfg.MaxMessageBytes)
	}
	if !utf8.Valid(o.Data) {
		return buf, fmt.Errorf("hub: %w: data is not valid UTF-8", ErrInvalid)
	}
	start := len(buf)
	buf = append(buf, `{"n":`...)
	buf = appendString(buf, o.Tenant)
	buf = append(buf, `,"t":`...)
	buf = appendString(buf, o.Topic)
	buf = append(buf, `,"y":`...)
	buf = appendString(buf, o.Type)
	buf = append(buf, `,"a":`...)
	buf = strconv.AppendInt(buf, at.UnixMicro(), 10)
	buf = append(buf, `,"d":`...)
	if len(bytes.TrimSpace(o.Data)) == 0 {
		buf = append(buf, "null"...)
	} else {
		// Compact validates as it copies.
		w := bytes.NewBuffer(buf)
		if err := json.Compact(w, o.Data); err != nil {
			return buf[:start], fmt.Errorf("hub: %w: data is not JSON: %v", ErrInvalid, err)
		}
		buf = w.Bytes()
	}
	return append(buf, '}'), nil
}

// appendString appends s as a JSON string; checkName has ruled out control
// characters, so only quotes and backslashes need escaping.
func appendString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			buf = append(buf, '\\')
		}
		buf = append(buf, s[i])
	}
	return append(buf, '"')
}

// decodeBatch decodes a send's payload.
func decodeBatch(p []byte) ([]wireMsg, error) {
	var b wireBatch
	if err := json.Unmarshal(p, &b); err != nil {
		return nil, err
	}
	return b.M, nil
}
