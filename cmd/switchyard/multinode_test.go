package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// node is one real `switchyard serve` process.
type node struct {
	name string
	cmd  *exec.Cmd
	url  string
	log  *syncBuffer
	done chan struct{} // closed when the process exited
	err  error         // its exit status, once done
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const multiNodeKey = "multinode-test-admin-key-0123456789"

// startNode runs `switchyard serve` in a child process on db and waits until
// it serves.
func startNode(t *testing.T, name, db string) *node {
	t.Helper()
	cmd := exec.Command(os.Args[0], "serve", "--db", db, "--addr", "127.0.0.1:0", "--node-id", name,
		"--lease-duration", "3s", "--shutdown-timeout", "10s", "--access-log=false",
		"--allow-private") // the jobs call a receiver on loopback
	cmd.Env = append(os.Environ(), childEnv+"=1", "SWITCHYARD_ADMIN_KEY="+multiNodeKey)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	n := &node{name: name, cmd: cmd, log: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout = n.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	addr := make(chan string, 1)
	go func() {
		// Copy the log, and pick the listen address out of the line that
		// announces it.
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			n.log.Write(append(line, '\n'))
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "switchyard serving" {
				addr <- rec.Addr
			}
		}
		n.err = cmd.Wait()
		close(n.done)
	}()
	t.Cleanup(func() {
		select {
		case <-n.done:
		default:
			_ = cmd.Process.Kill()
			<-n.done
		}
		if t.Failed() {
			t.Logf("log of %s:\n%s", name, tail(n.log.String(), 4000))
		}
	})
	select {
	case a := <-addr:
		n.url = "http://" + a
	case <-n.done:
		t.Fatalf("%s exited before serving: %v\n%s", name, n.err, n.log.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not start serving within 60s:\n%s", name, n.log.String())
	}
	return n
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func (n *node) request(t *testing.T, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, n.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+multiNodeKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, n.name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s on %s: decode %s: %v", method, path, n.name, b, err)
		}
	}
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s on %s: %d %s", method, path, n.name, resp.StatusCode, b)
	}
	return resp.StatusCode
}

// isLeader reads the node's switchyard_leader gauge from /metrics.
func (n *node) isLeader(t *testing.T) bool {
	t.Helper()
	resp, err := http.Get(n.url + "/metrics")
	if err != nil {
		t.Fatalf("metrics of %s: %v", n.name, err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse metrics of %s: %v", n.name, err)
	}
	f := fams["switchyard_leader"]
	return f != nil && len(f.Metric) == 1 && f.Metric[0].GetGauge().GetValue() == 1
}

// ledger is the receiver every job calls: it records each (job, attempt)
// that ran.
type ledger struct {
	mu       sync.Mutex
	calls    map[string]int // "id/attempt" -> times called
	total    int
	midway   int
	reached  chan struct{}
	reachedO sync.Once
}

func (l *ledger) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Switchyard-Job-Id") + "/" + r.Header.Get("Switchyard-Attempt")
	l.mu.Lock()
	l.calls[key]++
	l.total++
	total := l.total
	l.mu.Unlock()
	if total >= l.midway {
		l.reachedO.Do(func() { close(l.reached) })
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"ok":true}`)
}

// TestMultiNodeKill runs three serve processes on one PostgreSQL database,
// enqueues 10,000 jobs through all of them, SIGKILLs the leader mid-run and
// checks that every job succeeds, none is lost, no attempt ran twice, and
// leadership moves to a live node.
func TestMultiNodeKill(t *testing.T) {
	t.Parallel()
	const total = 10000
	db := testdb.PostgresURL(t)
	led := &ledger{calls: map[string]int{}, midway: total / 3, reached: make(chan struct{})}
	receiver := httptest.NewServer(led)
	t.Cleanup(receiver.Close)

	nodes := []*node{startNode(t, "node1", db), startNode(t, "node2", db), startNode(t, "node3", db)}

	// Hold the queue until every job is in, so the kill lands mid-run.
	nodes[0].request(t, "POST", "/v1/queues/multi/pause", "", nil)
	ids := map[string]bool{}
	const batch = 500
	job := fmt.Sprintf(`{"kind":"http","queue":"multi","args":{"url":%q,"body":{}}}`, receiver.URL)
	for b := 0; b < total/batch; b++ {
		var sb strings.Builder
		sb.WriteString(`{"jobs":[`)
		for i := range batch {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(job)
		}
		sb.WriteString(`]}`)
		var res struct {
			Items []struct {
				Job struct {
					ID string `json:"id"`
				} `json:"job"`
			} `json:"items"`
		}
		nodes[b%len(nodes)].request(t, "POST", "/v1/jobs/batch", sb.String(), &res)
		for _, it := range res.Items {
			ids[it.Job.ID] = true
		}
	}
	if len(ids) != total {
		t.Fatalf("enqueued %d distinct jobs, want %d", len(ids), total)
	}

	// Find the leader before resuming, then kill it once a third has run.
	var leader *node
	testdb.Poll(t, 30*time.Second, "a leader", func() bool {
		for _, n := range nodes {
			if n.isLeader(t) {
				leader = n
				return true
			}
		}
		return false
	})
	nodes[1].request(t, "POST", "/v1/queues/multi/resume", "", nil)
	select {
	case <-led.reached:
	case <-time.After(120 * time.Second):
		led.mu.Lock()
		defer led.mu.Unlock()
		t.Fatalf("only %d calls within 120s", led.total)
	}
	if err := leader.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-leader.done
	var live []*node
	for _, n := range nodes {
		if n != leader {
			live = append(live, n)
		}
	}
	t.Logf("killed leader %s after %d calls", leader.name, led.midway)

	// Leadership moves to a live node (its session lock died with it).
	testdb.Poll(t, 30*time.Second, "a new leader", func() bool {
		for _, n := range live {
			if n.isLeader(t) {
				return true
			}
		}
		return false
	})

	// Every job ends succeeded: the killed node's jobs are rescued when their
	// leases expire.
	var counts map[string]int64
	testdb.Poll(t, 180*time.Second, "every job to succeed", func() bool {
		var qs struct {
			Items []struct {
				Name   string           `json:"name"`
				Counts map[string]int64 `json:"counts"`
			} `json:"items"`
		}
		live[0].request(t, "GET", "/v1/queues", "", &qs)
		for _, q := range qs.Items {
			if q.Name == "multi" {
				counts = q.Counts
			}
		}
		return counts["succeeded"] == total
	})
	for state, n := range counts {
		if state != "succeeded" && n != 0 {
			t.Errorf("%d jobs %s", n, state)
		}
	}

	// Every job's recorded attempt ran, and no attempt ran twice.
	seen := 0
	cursor := ""
	for {
		var page struct {
			Items []struct {
				ID      string `json:"id"`
				State   string `json:"state"`
				Attempt int    `json:"attempt"`
			} `json:"items"`
			NextCursor *string `json:"next_cursor"`
		}
		path := "/v1/jobs?queue=multi&limit=1000"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		live[1].request(t, "GET", path, "", &page)
		led.mu.Lock()
		for _, j := range page.Items {
			seen++
			if !ids[j.ID] || j.State != "succeeded" {
				t.Errorf("job %s: state %s, enqueued here %v", j.ID, j.State, ids[j.ID])
			}
			if led.calls[j.ID+"/"+strconv.Itoa(j.Attempt)] != 1 {
				t.Errorf("job %s succeeded at attempt %d, which the receiver saw %d times", j.ID, j.Attempt, led.calls[j.ID+"/"+strconv.Itoa(j.Attempt)])
			}
		}
		led.mu.Unlock()
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	if seen != total {
		t.Errorf("listed %d jobs, want %d", seen, total)
	}
	led.mu.Lock()
	retried := 0
	for key, n := range led.calls {
		if n != 1 {
			t.Errorf("attempt %s ran %d times", key, n)
		}
		if !strings.HasSuffix(key, "/1") {
			retried++
		}
	}
	led.mu.Unlock()
	t.Logf("%d attempts beyond the first (the killed node's jobs, rescued)", retried)

	// The live nodes shut down cleanly on SIGTERM.
	for _, n := range live {
		if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range live {
		select {
		case <-n.done:
			if n.err != nil {
				t.Errorf("%s exited with %v after SIGTERM", n.name, n.err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not exit within 30s of SIGTERM", n.name)
		}
	}
}
