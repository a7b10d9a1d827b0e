package main

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// What bench --mode ingest sends (--ingest).
const (
	ingestJobs     = "jobs"
	ingestEvents   = "events"
	ingestWebhooks = "webhooks"
	// ingestEventType is the type of the CloudEvents the events ingest
	// sends.
	ingestEventType = "bench.ingest"
)

// ingestShape is one kind of ingest request: where it goes, the status
// every answer must have, and how request seq is written.
type ingestShape struct {
	path       string
	status     int
	newRequest func(u *url.URL, key string) func(b []byte, seq int64) []byte
}

// newIngestShape returns the shape of --ingest kind against target t, with
// payload bytes more in each event's data.
func newIngestShape(kind string, t *ingestTarget, payload int) (*ingestShape, error) {
	pad := ingestPadding(payload)
	// Events and deliveries are unique per run: a shared database keeps
	// those of earlier runs, and a repeat would be answered 200.
	run := make([]byte, 6)
	_, _ = rand.Read(run)
	runID := hex.EncodeToString(run)
	switch kind {
	case ingestJobs:
		return &ingestShape{path: "/v1/jobs", status: http.StatusCreated, newRequest: func(u *url.URL, key string) func([]byte, int64) []byte {
			head := requestHead(u, "application/json", key)
			return func(b []byte, seq int64) []byte {
				return appendRequest(b, head, nil, `{"kind":"noop","queue":"`+ingestQueue+`","args":{"i":`+strconv.FormatInt(seq, 10)+`}}`)
			}
		}}, nil
	case ingestEvents:
		return &ingestShape{path: "/v1/events", status: http.StatusCreated, newRequest: func(u *url.URL, key string) func([]byte, int64) []byte {
			head := requestHead(u, "application/cloudevents+json", key)
			return func(b []byte, seq int64) []byte {
				i := strconv.FormatInt(seq, 10)
				return appendRequest(b, head, nil, `{"specversion":"1.0","id":"`+runID+`-`+i+`","source":"/bench","type":"`+
					ingestEventType+`","data":{"i":`+i+pad+`}}`)
			}
		}}, nil
	case ingestWebhooks:
		if t.sourceID == "" {
			return nil, errors.New("--ingest webhooks needs the in-process server (it creates the source), not --server")
		}
		return &ingestShape{path: "/hooks/" + t.sourceID, status: http.StatusCreated, newRequest: func(u *url.URL, _ string) func([]byte, int64) []byte {
			head := requestHead(u, "application/json", "")
			mac := hmac.New(sha256.New, []byte(t.sourceSecret))
			return func(b []byte, seq int64) []byte {
				i := strconv.FormatInt(seq, 10)
				body := `{"ref":"refs/heads/main","i":` + i + pad + `}`
				extra := "X-GitHub-Event: push\r\nX-GitHub-Delivery: " + runID + "-" + i + "\r\nX-Hub-Signature-256: sha256=" + sign(mac, body) + "\r\n"
				return appendRequest(b, head, []byte(extra), body)
			}
		}}, nil
	}
	return nil, fmt.Errorf("--ingest %q: want %s, %s or %s", kind, ingestJobs, ingestEvents, ingestWebhooks)
}

// requestHead is a POST's request line and fixed headers.
func requestHead(u *url.URL, contentType, key string) []byte {
	head := "POST " + u.RequestURI() + " HTTP/1.1\r\n" +
		"Host: " + u.Host + "\r\n" +
		"User-Agent: switchyard-bench/" + version + "\r\n" +
		"Content-Type: " + contentType + "\r\n"
	if key != "" {
		head += "Authorization: Bearer " + key + "\r\n"
	}
	return []byte(head)
}

// appendRequest appends a whole request: head, extra headers, and body.
func appendRequest(b, head, extra []byte, body string) []byte {
	b = append(b, head...)
	b = append(b, extra...)
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	return append(b, body...)
}

func sign(mac hash.Hash, body string) string {
	mac.Reset()
	mac.Write([]byte(body))
	return hex.EncodeToString(mac.Sum(nil))
}

// maxIngestPayload bounds --payload, well under the largest event
// (switchyard.MaxEventBytes).
const maxIngestPayload = 128 << 10

// ingestPadding returns `,"repository":{…}` of about n bytes, shaped like
// the repository object of a GitHub push (URLs, counts, flags, a nested
// owner), for --payload; "" for n <= 0.
func ingestPadding(n int) string {
	if n <= 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(`,"repository":{"id":1296269,"name":"hello","full_name":"octo/hello","private":false,` +
		`"owner":{"login":"octo","id":1,"type":"User","site_admin":false}`)
	for i := 0; b.Len() < n-1; i++ {
		switch i % 3 {
		case 0:
			fmt.Fprintf(&b, `,"url_%d":"https://api.github.com/repos/octo/hello/things/%d"`, i, i)
		case 1:
			fmt.Fprintf(&b, `,"count_%d":%d`, i, i*37)
		default:
			fmt.Fprintf(&b, `,"has_%d":%t`, i, i%2 == 0)
		}
	}
	b.WriteString("}")
	return b.String()
}
