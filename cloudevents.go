package switchyard

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// CloudEvent is an event in the CloudEvents 1.0 format
// (https://cloudevents.io): what POST /v1/events takes, in any of the HTTP
// binding's modes, and what rules route. Its JSON form is the structured
// one, extensions as top-level attributes.
type CloudEvent struct {
	SpecVersion string `json:"specversion"` // "1.0"
	// ID and Source identify the event: a second event with both the same
	// is a repeat, answered with the first, and recorded once.
	ID     string `json:"id"`
	Source string `json:"source"` // a URI reference: "/shop", "https://github.com/acme/app"
	Type   string `json:"type"`   // "com.example.image.uploaded", "image.uploaded"
	// Optional attributes.
	Subject         string     `json:"subject,omitempty"`
	Time            *time.Time `json:"time,omitempty"`
	DataContentType string     `json:"datacontenttype,omitempty"`
	DataSchema      string     `json:"dataschema,omitempty"`
	// Data is the payload as JSON; DataBase64 the payload of an event
	// whose data is binary. At most one is set.
	Data       json.RawMessage `json:"data,omitempty"`
	DataBase64 string          `json:"data_base64,omitempty"`
	// Extensions are further attributes by name: lower-case letters and
	// digits, values strings, numbers or booleans.
	Extensions map[string]any `json:"-"`
}

// CloudEvents limits.
const (
	// MaxEventBytes bounds an event in its structured JSON form: room for
	// the largest common webhooks (a GitHub push of many commits).
	MaxEventBytes = 1 << 20
	// MaxEventBatch bounds the events of one batch.
	MaxEventBatch = 1000
	maxAttrBytes  = 1024
	maxExtensions = 32
)

// cloudEventAttributes are the attributes CloudEvent has fields for.
var cloudEventAttributes = map[string]bool{
	"specversion": true, "id": true, "source": true, "type": true, "subject": true, "time": true,
	"datacontenttype": true, "dataschema": true, "data": true, "data_base64": true,
}

// ParseCloudEvent reads an event in structured JSON form and checks it
// (Validate).
func ParseCloudEvent(b []byte) (CloudEvent, error) {
	var e CloudEvent
	if err := e.UnmarshalJSON(b); err != nil {
		return CloudEvent{}, err
	}
	return e, e.Validate()
}

// UnmarshalJSON reads the structured form; attributes it has no field for
// are extensions. It checks types, not rules: see Validate.
func (e *CloudEvent) UnmarshalJSON(b []byte) error {
	var attrs map[string]json.RawMessage
	if err := json.Unmarshal(b, &attrs); err != nil {
		return invalid("event: not a JSON object: %v", err)
	}
	if attrs == nil {
		return invalid("event: null is not an event")
	}
	*e = CloudEvent{}
	str := func(name string, dst *string) error {
		v, ok := attrs[name]
		if !ok || string(v) == "null" {
			return nil
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return invalid("event: attribute %q must be a string", name)
		}
		return nil
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{"specversion", &e.SpecVersion}, {"id", &e.ID}, {"source", &e.Source}, {"type", &e.Type},
		{"subject", &e.Subject}, {"datacontenttype", &e.DataContentType}, {"dataschema", &e.DataSchema},
		{"data_base64", &e.DataBase64},
	} {
		if err := str(f.name, f.dst); err != nil {
			return err
		}
	}
	var ts string
	if err := str("time", &ts); err != nil {
		return err
	}
	if ts != "" {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return invalid("event: attribute \"time\" must be an RFC 3339 time, got %q", ts)
		}
		e.Time = &t
	}
	if d, ok := attrs["data"]; ok && string(d) != "null" {
		e.Data = compactJSON(d)
	}
	for name, v := range attrs {
		if cloudEventAttributes[name] {
			continue
		}
		var x any
		if err := json.Unmarshal(v, &x); err != nil {
			return invalid("event: extension %q: %v", name, err)
		}
		if e.Extensions == nil {
			e.Extensions = map[string]any{}
		}
		e.Extensions[name] = x
	}
	return nil
}

func compactJSON(b []byte) json.RawMessage {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return slices.Clone(b)
	}
	return buf.Bytes()
}

// MarshalJSON writes the structured form, attributes in a fixed order,
// extensions sorted by name.
func (e CloudEvent) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 256+len(e.Data)+len(e.DataBase64))
	b = append(b, '{')
	add := func(name string, v string) {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, name)
		b = append(b, ':')
		b = appendJSONString(b, v)
	}
	add("specversion", e.SpecVersion)
	add("id", e.ID)
	add("source", e.Source)
	add("type", e.Type)
	if e.Subject != "" {
		add("subject", e.Subject)
	}
	if e.Time != nil {
		add("time", e.Time.UTC().Format(time.RFC3339Nano))
	}
	if e.DataContentType != "" {
		add("datacontenttype", e.DataContentType)
	}
	if e.DataSchema != "" {
		add("dataschema", e.DataSchema)
	}
	for _, name := range slices.Sorted(maps.Keys(e.Extensions)) {
		v, err := json.Marshal(e.Extensions[name])
		if err != nil {
			return nil, fmt.Errorf("extension %q: %w", name, err)
		}
		b = append(b, ',')
		b = strconv.AppendQuote(b, name)
		b = append(b, ':')
		b = append(b, v...)
	}
	if len(e.Data) > 0 {
		b = append(b, `,"data":`...)
		b = append(b, e.Data...)
	}
	if e.DataBase64 != "" {
		add("data_base64", e.DataBase64)
	}
	return append(b, '}'), nil
}

// Validate checks e against CloudEvents 1.0 and Switchyard's limits.
func (e *CloudEvent) Validate() error { return e.validate(true) }

// validate is Validate; checkData false skips scanning data, for a caller
// that has just made it from JSON it checked (a scan costs about as much
// as the rest of receiving a several-KB webhook).
func (e *CloudEvent) validate(checkData bool) error {
	switch {
	case e.SpecVersion == "":
		return invalid("event: attribute \"specversion\" is required (\"1.0\")")
	case e.SpecVersion != "1.0":
		return invalid("event: specversion %q is not supported: want \"1.0\"", e.SpecVersion)
	}
	for _, a := range []struct{ name, v string }{{"id", e.ID}, {"source", e.Source}, {"type", e.Type}} {
		if a.v == "" {
			return invalid("event: attribute %q is required and must not be empty", a.name)
		}
	}
	for _, a := range []struct{ name, v string }{
		{"id", e.ID}, {"source", e.Source}, {"type", e.Type}, {"subject", e.Subject},
		{"datacontenttype", e.DataContentType}, {"dataschema", e.DataSchema},
	} {
		if len(a.v) > maxAttrBytes || !utf8.ValidString(a.v) || strings.ContainsFunc(a.v, unicode.IsControl) {
			return invalid("event: attribute %q must be valid UTF-8 of at most %d bytes, without control characters", a.name, maxAttrBytes)
		}
	}
	if _, err := url.Parse(e.Source); err != nil {
		return invalid("event: source %q is not a URI reference", e.Source)
	}
	if e.DataSchema != "" {
		if u, err := url.Parse(e.DataSchema); err != nil || !u.IsAbs() {
			return invalid("event: dataschema %q is not an absolute URI", e.DataSchema)
		}
	}
	if len(e.Data) > 0 && e.DataBase64 != "" {
		return invalid("event: give \"data\" or \"data_base64\", not both")
	}
	if checkData && len(e.Data) > 0 && !json.Valid(e.Data) {
		return invalid("event: data is not valid JSON")
	}
	if e.DataBase64 != "" {
		if _, err := base64.StdEncoding.DecodeString(e.DataBase64); err != nil {
			return invalid("event: data_base64 is not base64: %v", err)
		}
	}
	if len(e.Extensions) > maxExtensions {
		return invalid("event: %d extension attributes, at most %d", len(e.Extensions), maxExtensions)
	}
	for name, v := range e.Extensions {
		if !validExtensionName(name) {
			return invalid("event: extension attribute %q: names are 1 to 20 lower-case letters and digits", name)
		}
		switch x := v.(type) {
		case string:
			if len(x) > maxAttrBytes {
				return invalid("event: extension attribute %q is over %d bytes", name, maxAttrBytes)
			}
		case float64, bool, int, int64, json.Number:
		default:
			return invalid("event: extension attribute %q must be a string, a number or a boolean", name)
		}
	}
	return nil
}

func validExtensionName(name string) bool {
	if name == "" || len(name) > 20 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
