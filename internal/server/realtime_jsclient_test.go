package server_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/server/servertest"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// TestJSClient checks GET /v1/client.js as served, then, where Node is
// installed, runs it (testdata/jsclient_test.mjs) against a real server:
// subscribing, resuming after a cut connection over WebSocket and over
// SSE, falling back to SSE when WebSocket does not connect, gaps, and
// publishing. Without Node only the served file is checked; the test says
// so in its log.
func TestJSClient(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "sqlite:"+testdb.SQLitePath(t), servertest.Options{NotStarted: true})
	resp, err := http.Get(srv.URL + "/v1/client.js")
	if err != nil {
		t.Fatal(err)
	}
	js, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" || etag == "" ||
		!strings.Contains(string(js), "export function connect(") || !strings.Contains(string(js), "globalThis.Switchyard") {
		t.Fatalf("GET /v1/client.js: %d %v, %d bytes", resp.StatusCode, resp.Header, len(js))
	}
	req, _ := http.NewRequest("GET", srv.URL+"/v1/client.js", nil)
	req.Header.Set("If-None-Match", etag)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d", resp.StatusCode)
	}

	node, err := exec.LookPath("node")
	if err != nil {
		t.Log("node is not installed: client.js was checked as served, not run")
		return
	}
	dir := t.TempDir()
	script, err := os.ReadFile(filepath.Join("testdata", "jsclient_test.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"client.mjs": js, "jsclient_test.mjs": script} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "jsclient_test.mjs"))
	cmd.Env = append(os.Environ(), "SY_URL="+srv.URL, "SY_KEY="+newKey(t, srv, "", "operator"))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("node %s: %v\n%s", filepath.Join(dir, "jsclient_test.mjs"), err, out)
	}
}
