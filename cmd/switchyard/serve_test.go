package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// serveOutput is a bytes.Buffer that serve's goroutine may write while the
// test reads it.
type serveOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *serveOutput) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *serveOutput) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serveLog is serve's stderr. It keeps everything serve writes and sends
// the address of the "switchyard serving" line on serving, once: that line
// is how a test learns the port behind --addr 127.0.0.1:0.
type serveLog struct {
	serveOutput
	once    sync.Once
	serving chan string
}

func newServeLog() *serveLog { return &serveLog{serving: make(chan string, 1)} }

func (w *serveLog) Write(p []byte) (int, error) {
	n, err := w.serveOutput.Write(p)
	// slog handlers write each record with one Write.
	for line := range strings.Lines(string(p)) {
		if addr, ok := servingAddr(line); ok {
			w.once.Do(func() { w.serving <- addr })
		}
	}
	return n, err
}

// servingAddr reads the addr attribute of a "switchyard serving" log line
// in either log format.
func servingAddr(line string) (string, bool) {
	var rec struct {
		Msg  string `json:"msg"`
		Addr string `json:"addr"`
	}
	if json.Unmarshal([]byte(line), &rec) == nil {
		return rec.Addr, rec.Msg == "switchyard serving" && rec.Addr != ""
	}
	if !strings.Contains(line, `msg="switchyard serving"`) {
		return "", false
	}
	for _, f := range strings.Fields(line) {
		if addr, ok := strings.CutPrefix(f, "addr="); ok {
			return addr, true
		}
	}
	return "", false
}

// serveProc is a `switchyard serve` running in this process.
type serveProc struct {
	url    string // http://127.0.0.1:PORT
	stdout *serveOutput
	stderr *serveLog
	cancel context.CancelFunc
	done   chan error

	stopOnce sync.Once
	err      error
}

// startServe runs runServe with args until it serves, and stops it when
// the test ends. Args should include --addr 127.0.0.1:0.
func startServe(t *testing.T, args ...string) *serveProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &serveProc{stdout: &serveOutput{}, stderr: newServeLog(), cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- runServe(ctx, args, p.stdout, p.stderr) }()
	t.Cleanup(func() { p.stop() })
	select {
	case addr := <-p.stderr.serving:
		p.url = "http://" + addr
	case err := <-p.done:
		p.stopOnce.Do(func() { p.err = err })
		t.Fatalf("serve %q ended before serving: %v\nstderr:\n%s", args, err, p.stderr)
	}
	return p
}

// stop cancels serve's context, as SIGINT and SIGTERM do in main, and
// returns what serve returned.
func (p *serveProc) stop() error {
	p.stopOnce.Do(func() {
		p.cancel()
		p.err = <-p.done
	})
	return p.err
}

// mustStop stops serve and fails the test unless it returned nil.
func (p *serveProc) mustStop(t *testing.T) {
	t.Helper()
	if err := p.stop(); err != nil {
		t.Fatalf("serve returned %v\nstderr:\n%s", err, p.stderr)
	}
}

// serveAPI calls the server's HTTP API with its own transport, closed when the
// test ends.
type serveAPI struct {
	base string
	hc   *http.Client
}

func newServeAPI(t *testing.T, base string) *serveAPI {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &serveAPI{base: base, hc: &http.Client{Transport: tr}}
}

// do sends a request with key as the bearer token (none if empty) and
// returns the status and body.
func (a *serveAPI) do(t *testing.T, method, path, key, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, b
}

// status is the status of GET /v1/jobs with key.
func (a *serveAPI) status(t *testing.T, key string) int {
	t.Helper()
	code, _ := a.do(t, "GET", "/v1/jobs", key, "")
	return code
}

type serveJob struct {
	ID    string `json:"id"`
	State string `json:"state"`
}

func (a *serveAPI) enqueue(t *testing.T, key, body string) serveJob {
	t.Helper()
	code, b := a.do(t, "POST", "/v1/jobs", key, body)
	var j serveJob
	if code != http.StatusCreated || json.Unmarshal(b, &j) != nil || j.ID == "" {
		t.Fatalf("POST /v1/jobs %s: %d %s", body, code, b)
	}
	return j
}

// waitRunning polls the job until it is running. Polling a state is the
// one wait that has nothing to block on; the bound only keeps a broken
// server from hanging the test.
func (a *serveAPI) waitRunning(t *testing.T, key, id string) {
	t.Helper()
	testdb.Poll(t, 30*time.Second, "job "+id+" running", func() bool {
		code, b := a.do(t, "GET", "/v1/jobs/"+id, key, "")
		var j serveJob
		if code != http.StatusOK || json.Unmarshal(b, &j) != nil {
			t.Fatalf("GET /v1/jobs/%s: %d %s", id, code, b)
		}
		switch j.State {
		case switchyard.StateSucceeded, switchyard.StateDead, switchyard.StateCancelled:
			t.Fatalf("job %s is %s; it never was seen running", id, j.State)
		}
		return j.State == switchyard.StateRunning
	})
}

// serveStoredJob reads a job from the SQLite file of a stopped server.
func serveStoredJob(t *testing.T, db, id string) *switchyard.JobRow {
	t.Helper()
	ctx := context.Background()
	c, err := switchyard.Open(ctx, switchyard.Config{Database: db, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("open %s: %v", db, err)
	}
	defer c.Close()
	j, err := c.GetJob(ctx, id)
	if err != nil {
		t.Fatalf("get job %s: %v", id, err)
	}
	return j
}

func writeServeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// servePrintedKey is the admin key serve printed on first start.
var servePrintedKey = regexp.MustCompile(`(?m)^    (\S+)$`)

// clearServeEnv unsets every variable serve reads, for the test, so that
// the developer's environment cannot change the result. It uses t.Setenv,
// so the test cannot be parallel.
func clearServeEnv(t *testing.T) {
	t.Helper()
	names := []string{"SWITCHYARD_ADMIN_KEY"}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	serveFlags(fs, &serveSettings{})
	fs.VisitAll(func(f *flag.Flag) { names = append(names, envName(f.Name)) })
	for _, n := range names {
		t.Setenv(n, "") // restores the old value when the test ends
		os.Unsetenv(n)
	}
}

// serveDirEntries names what dir holds.
func serveDirEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestServeDefaults starts serve with no flags but the address: it creates
// switchyard.db and switchyard.key in the working directory and prints the
// key once; a second start reuses both.
func TestServeDefaults(t *testing.T) {
	clearServeEnv(t)
	dir := t.TempDir()
	t.Chdir(dir)

	p := startServe(t, "--addr", "127.0.0.1:0")
	out := p.stdout.String()
	m := servePrintedKey.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no key printed on first start; stdout:\n%s", out)
	}
	key := m[1]
	if strings.Count(out, key) != 1 || !strings.Contains(out, "shown only this once") || !strings.Contains(out, "Saved to switchyard.key") {
		t.Errorf("first-start message:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "switchyard.db")); err != nil {
		t.Fatalf("default database: %v", err)
	}
	keyPath := filepath.Join(dir, "switchyard.key")
	fi, err := os.Stat(keyPath)
	if err != nil {
		t.Fatalf("key file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	saved, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(saved)) != key {
		t.Errorf("key file holds %q, printed key %q", saved, key)
	}
	for _, name := range serveDirEntries(t, dir) {
		if strings.HasPrefix(name, ".switchyard.key-") {
			t.Errorf("temporary key file %s left behind", name)
		}
	}

	a := newServeAPI(t, p.url)
	if code := a.status(t, key); code != http.StatusOK {
		t.Errorf("with the printed key: %d, want 200", code)
	}
	if code := a.status(t, ""); code != http.StatusUnauthorized {
		t.Errorf("without a key: %d, want 401", code)
	}
	if code := a.status(t, key+"x"); code != http.StatusUnauthorized {
		t.Errorf("with a wrong key: %d, want 401", code)
	}
	// The CLI in this directory finds the key file, as the message says.
	if out, errOut, code := runCLI(t, "queues", "list", "--server", p.url); code != 0 {
		t.Errorf("CLI with the key file: exit %d\n%s%s", code, out, errOut)
	}
	p.mustStop(t)
	if !strings.Contains(p.stderr.String(), "switchyard stopped") {
		t.Errorf("no \"switchyard stopped\" log line:\n%s", p.stderr)
	}

	// A second start on the same database creates and prints no key.
	p2 := startServe(t, "--addr", "127.0.0.1:0")
	if out := p2.stdout.String(); out != "" {
		t.Errorf("second start printed %q", out)
	}
	if again, err := os.ReadFile(keyPath); err != nil || !bytes.Equal(again, saved) {
		t.Errorf("key file changed on second start: %q, %v", again, err)
	}
	if code := newServeAPI(t, p2.url).status(t, key); code != http.StatusOK {
		t.Errorf("first key after restart: %d, want 200", code)
	}
	p2.mustStop(t)
}

// TestServeSettingsPrecedence checks flag > env > file > default with the
// layering function itself.
func TestServeSettingsPrecedence(t *testing.T) {
	clearServeEnv(t)
	file := writeServeFile(t, t.TempDir(), "switchyard.yaml", `
concurrency: 7
lease_duration: 5s
addr: 127.0.0.1:7001
access_log: false
admin_key: from-the-config-file
`)
	type want struct {
		concurrency int
		lease       time.Duration
		addr        string
		accessLog   bool
		adminKey    string
	}
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want want
	}{
		{"defaults", nil, nil, want{100, 30 * time.Second, ":8080", true, ""}},
		{"flags", nil, []string{"--concurrency", "3", "--lease-duration", "2s", "--addr", "127.0.0.1:7003"},
			want{3, 2 * time.Second, "127.0.0.1:7003", true, ""}},
		{"env", map[string]string{"SWITCHYARD_CONCURRENCY": "8", "SWITCHYARD_LEASE_DURATION": "6s"}, nil,
			want{8, 6 * time.Second, ":8080", true, ""}},
		{"file", nil, []string{"--config", file}, want{7, 5 * time.Second, "127.0.0.1:7001", false, "from-the-config-file"}},
		{"file named by SWITCHYARD_CONFIG", map[string]string{"SWITCHYARD_CONFIG": file}, nil,
			want{7, 5 * time.Second, "127.0.0.1:7001", false, "from-the-config-file"}},
		{"env over file", map[string]string{"SWITCHYARD_CONCURRENCY": "8", "SWITCHYARD_ACCESS_LOG": "true"}, []string{"--config", file},
			want{8, 5 * time.Second, "127.0.0.1:7001", true, "from-the-config-file"}},
		{"flag over env over file",
			map[string]string{"SWITCHYARD_CONCURRENCY": "8", "SWITCHYARD_LEASE_DURATION": "6s", "SWITCHYARD_ADDR": "127.0.0.1:7002"},
			[]string{"--config", file, "--concurrency", "9", "--addr", "127.0.0.1:7003"},
			want{9, 6 * time.Second, "127.0.0.1:7003", false, "from-the-config-file"}},
		{"flag equal to the default still wins", map[string]string{"SWITCHYARD_CONCURRENCY": "8"},
			[]string{"--config", file, "--concurrency", "100", "--access-log=true"},
			want{100, 5 * time.Second, "127.0.0.1:7001", true, "from-the-config-file"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var s serveSettings
			fs := flag.NewFlagSet("serve", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			serveFlags(fs, &s)
			extra, err := parseLayered(fs, tc.args, "admin_key")
			if err != nil {
				t.Fatal(err)
			}
			got := want{s.concurrency, s.leaseDuration, s.addr, s.accessLog, extra["admin_key"]}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// serveCLI runs `switchyard serve args` through run, as the binary does.
// Should serve start instead of refusing, it is stopped at once, so that a
// refusal test fails rather than hangs.
func serveCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out serveOutput
	w := newServeLog()
	go func() {
		select {
		case <-w.serving:
			cancel()
		case <-ctx.Done():
		}
	}()
	code = run(ctx, append([]string{"serve"}, args...), &out, w)
	return out.String(), w.String(), code
}

// checkServeRefused checks that serve exited 1 with want in its message and
// without serving.
func checkServeRefused(t *testing.T, stdout, stderr string, code int, want ...string) {
	t.Helper()
	if code != 1 || !strings.Contains(stderr, "switchyard serve: ") || strings.Contains(stderr, "switchyard serving") {
		t.Fatalf("exit %d, want 1 with an error and nothing served; stderr:\n%s", code, stderr)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr %q does not say %q", stderr, w)
		}
	}
	if stdout != "" {
		t.Errorf("stdout %q, want nothing", stdout)
	}
}

// TestServeRefuses checks that bad settings stop serve before it opens
// anything, with a message naming the problem.
func TestServeRefuses(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() }) // after the parallel subtests
	longKey := strings.Repeat("k", 24)
	cases := []struct {
		name string
		file string // config file content; passed with --config if set
		args []string
		want []string
	}{
		{"unknown key in the file", "concurrency: 5\nconcurency: 6\n", nil,
			[]string{`unknown key "concurency"`, "switchyard.yaml", "concurrency"}},
		{"config key in the file", "config: other.yaml\n", nil, []string{`unknown key "config"`}},
		{"wrong type in the file", "concurrency: lots\n", nil, []string{"switchyard.yaml", "concurrency", "lots"}},
		{"duration without a unit in the file", "lease_duration: 5\n", nil, []string{"switchyard.yaml", "lease_duration", "5"}},
		{"bad bool in the file", "access_log: maybe\n", nil, []string{"access_log", "maybe"}},
		{"nested value in the file", "concurrency:\n  default: 5\n", nil, []string{"concurrency: want a single value"}},
		{"empty value in the file", "node_id:\n", nil, []string{"node_id: want a single value"}},
		{"malformed YAML", "concurrency: [1, 2\n", nil, []string{"config file", "switchyard.yaml"}},
		{"YAML not a mapping", "- concurrency\n- 5\n", nil, []string{"config file", "switchyard.yaml"}},
		{"short admin_key in the file", "admin_key: too-short\n", nil, []string{"at least 24 characters"}},
		{"missing config file", "", []string{"--config", "/nonexistent/switchyard.yaml"},
			[]string{"config file", "/nonexistent/switchyard.yaml", "no such file"}},
		{"malformed PostgreSQL URL", "", []string{"--db", "postgres://%zz"}, []string{"malformed PostgreSQL URL", "%zz"}},
		{"PostgreSQL URL without a host", "", []string{"--db", "postgres:///switchyard"}, []string{"no host"}},
		{"neither sqlite nor postgres", "", []string{"--db", "mysql://localhost/switchyard"},
			[]string{"mysql://localhost/switchyard", "want sqlite:PATH or a postgres:// URL"}},
		{"sqlite without a path", "", []string{"--db", "sqlite:"}, []string{"needs a file path"}},
		{"port in use", "", []string{"--addr", busy.Addr().String()},
			[]string{"listen on " + busy.Addr().String(), "address already in use"}},
		{"bad log format", "", []string{"--log-format", "xml"}, []string{`log-format "xml"`, "json or text"}},
		{"bad CORS origin", "", []string{"--cors-origins", "https://ok.example,app.example/path"}, []string{"cors-origins", `"app.example/path"`}},
		{"bad trusted proxy", "", []string{"--trusted-proxies", "10.0.0.0/8,proxy.internal"}, []string{"trusted-proxies", `"proxy.internal"`}},
		{"bad log format in the file", "log_format: xml\n", nil, []string{`log-format "xml"`}},
		{"bad log level", "", []string{"--log-level", "loud"}, []string{`log-level "loud"`}},
		{"zero concurrency", "", []string{"--concurrency", "0"}, []string{"concurrency must be between 1 and", "got 0"}},
		{"short lease", "", []string{"--lease-duration", "10ms"}, []string{"lease-duration must be at least 1s"}},
		{"negative shutdown timeout", "", []string{"--shutdown-timeout", "-1s"}, []string{"shutdown-timeout must not be negative"}},
		{"small body limit", "", []string{"--max-body-bytes", "10"}, []string{"max-body-bytes must be at least 1024"}},
		{"every bad setting at once", "", []string{"--concurrency", "0", "--lease-duration", "1ms"},
			[]string{"concurrency must be", "lease-duration must be"}},
		{"bad durability", "", []string{"--durability", "sometimes"}, []string{"durability", "sometimes"}},
		{"bad flag value", "", []string{"--concurrency", "lots"}, []string{"concurrency", "lots"}},
		{"unknown flag", "", []string{"--concurency", "5"}, []string{"flag provided but not defined: -concurency"}},
		{"positional argument", "", []string{"now"}, []string{"unexpected arguments: now"}},
		{"admin key is no flag", "", []string{"--admin-key", longKey}, []string{"not defined: -admin-key"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			db := filepath.Join(dir, "switchyard.db")
			args := []string{"--db", "sqlite:" + db, "--addr", "127.0.0.1:0", "--key-file", filepath.Join(dir, "switchyard.key")}
			if tc.file != "" {
				args = append(args, "--config", writeServeFile(t, t.TempDir(), "switchyard.yaml", tc.file))
			}
			stdout, stderr, code := serveCLI(t, append(args, tc.args...)...)
			checkServeRefused(t, stdout, stderr, code, tc.want...)
			if names := serveDirEntries(t, dir); len(names) != 0 {
				t.Errorf("refused, but created %q", names)
			}
		})
	}
}

// TestServeRefusesBadEnvironment checks the settings that come from the
// environment.
func TestServeRefusesBadEnvironment(t *testing.T) {
	clearServeEnv(t)
	cases := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"short SWITCHYARD_ADMIN_KEY", map[string]string{"SWITCHYARD_ADMIN_KEY": "only-23-characters-long"},
			[]string{"SWITCHYARD_ADMIN_KEY", "at least 24 characters"}},
		{"bad SWITCHYARD_CONCURRENCY", map[string]string{"SWITCHYARD_CONCURRENCY": "lots"},
			[]string{`SWITCHYARD_CONCURRENCY="lots"`}},
		{"zero SWITCHYARD_CONCURRENCY", map[string]string{"SWITCHYARD_CONCURRENCY": "0"},
			[]string{"concurrency must be between 1 and"}},
		{"missing SWITCHYARD_CONFIG", map[string]string{"SWITCHYARD_CONFIG": "/nonexistent/switchyard.yaml"},
			[]string{"/nonexistent/switchyard.yaml", "no such file"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			dir := t.TempDir()
			stdout, stderr, code := serveCLI(t, "--db", "sqlite:"+filepath.Join(dir, "switchyard.db"), "--addr", "127.0.0.1:0")
			checkServeRefused(t, stdout, stderr, code, tc.want...)
			if strings.Contains(stderr, "only-23-characters-long") {
				t.Errorf("the message shows the secret: %q", stderr)
			}
			if names := serveDirEntries(t, dir); len(names) != 0 {
				t.Errorf("refused, but created %q", names)
			}
		})
	}
}

// checkServeAdminKey checks that key (and no other) works, and that serve
// neither printed a key nor wrote a key file.
func checkServeAdminKey(t *testing.T, p *serveProc, key, keyFile string) {
	t.Helper()
	if out := p.stdout.String(); out != "" {
		t.Errorf("serve printed %q with an admin key set", out)
	}
	if _, err := os.Stat(keyFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("key file %s: %v, want none", keyFile, err)
	}
	a := newServeAPI(t, p.url)
	if code := a.status(t, key); code != http.StatusOK {
		t.Errorf("with the admin key: %d, want 200", code)
	}
	if code := a.status(t, ""); code != http.StatusUnauthorized {
		t.Errorf("without a key: %d, want 401", code)
	}
}

// TestServeAdminKeyFromEnvironment checks SWITCHYARD_ADMIN_KEY, which wins
// over the file's admin_key.
func TestServeAdminKeyFromEnvironment(t *testing.T) {
	clearServeEnv(t)
	envKey := "env-admin-key-0123456789abcdef"
	fileKey := "file-admin-key-0123456789abcdef"
	t.Setenv("SWITCHYARD_ADMIN_KEY", envKey)
	dir := t.TempDir()
	cfg := writeServeFile(t, t.TempDir(), "switchyard.yaml", "admin_key: "+fileKey+"\n")
	db := "sqlite:" + filepath.Join(dir, "switchyard.db")
	for range 2 { // the second start finds the key stored
		p := startServe(t, "--db", db, "--addr", "127.0.0.1:0", "--config", cfg)
		checkServeAdminKey(t, p, envKey, filepath.Join(dir, "switchyard.key"))
		if code := newServeAPI(t, p.url).status(t, fileKey); code != http.StatusUnauthorized {
			t.Errorf("the file's admin_key, overridden by the environment: %d, want 401", code)
		}
		p.mustStop(t)
	}
}

// TestServeAdminKeyFromConfigFile checks admin_key in the config file, with
// the other settings from the file too.
func TestServeAdminKeyFromConfigFile(t *testing.T) {
	t.Parallel()
	key := "file-admin-key-0123456789abcdef"
	dir := t.TempDir()
	cfg := writeServeFile(t, t.TempDir(), "switchyard.yaml", `# serve's settings
db: sqlite:`+filepath.Join(dir, "switchyard.db")+`
addr: 127.0.0.1:0
log_format: text
admin_key: `+key+"\n")
	p := startServe(t, "--config", cfg)
	checkServeAdminKey(t, p, key, filepath.Join(dir, "switchyard.key"))
	p.mustStop(t)
	if _, err := os.Stat(filepath.Join(dir, "switchyard.db")); err != nil {
		t.Errorf("db from the file: %v", err)
	}
	if logs := p.stderr.String(); !strings.Contains(logs, `msg="switchyard serving"`) {
		t.Errorf("log_format: text from the file not used:\n%s", logs)
	}
}

// startSQLiteServe starts serve on a fresh SQLite file with extra args and
// returns it, its database and the first-start key read from the key file
// beside the database.
func startSQLiteServe(t *testing.T, args ...string) (p *serveProc, db, key string) {
	t.Helper()
	dir := t.TempDir()
	db = "sqlite:" + filepath.Join(dir, "switchyard.db")
	p = startServe(t, append([]string{"--db", db, "--addr", "127.0.0.1:0"}, args...)...)
	b, err := os.ReadFile(filepath.Join(dir, "switchyard.key"))
	if err != nil {
		t.Fatalf("key file beside the database: %v", err)
	}
	return p, db, strings.TrimSpace(string(b))
}

// TestServeShutdownFinishesRunningJobs cancels serve's context while a job
// runs: serve waits for it, and it succeeds.
func TestServeShutdownFinishesRunningJobs(t *testing.T) {
	t.Parallel()
	p, db, key := startSQLiteServe(t, "--allow-private") // the receiver is on loopback
	a := newServeAPI(t, p.url)
	// The job calls a receiver that holds the call until the shutdown has
	// begun: the job is surely running (not just leased) when it does.
	called := make(chan struct{}, 1)
	release := make(chan struct{})
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called <- struct{}{}
		<-release
	}))
	defer receiver.Close()
	job := a.enqueue(t, key, `{"kind":"http","args":{"url":"`+receiver.URL+`"}}`)
	testdb.Receive(t, called, "the job's call")
	p.cancel() // as SIGTERM does
	testdb.Poll(t, 30*time.Second, "the shutdown to begin", func() bool {
		return strings.Contains(p.stderr.String(), "switchyard shutting down")
	})
	close(release) // the job finishes during the shutdown
	p.mustStop(t)
	if got := serveStoredJob(t, db, job.ID); got.State != switchyard.StateSucceeded {
		t.Fatalf("job after shutdown: %s (errors %+v), want succeeded", got.State, got.Errors)
	}
	logs := p.stderr.String()
	for _, want := range []string{"switchyard shutting down", "switchyard stopped"} {
		if !strings.Contains(logs, want) {
			t.Errorf("no %q log line:\n%s", want, logs)
		}
	}
}

// TestServeShutdownReleasesUnfinishedJobs shuts down with a job that
// outlasts --shutdown-timeout: the job is released to run again, neither
// lost nor left running.
func TestServeShutdownReleasesUnfinishedJobs(t *testing.T) {
	t.Parallel()
	p, db, key := startSQLiteServe(t, "--shutdown-timeout", "50ms")
	a := newServeAPI(t, p.url)
	job := a.enqueue(t, key, `{"kind":"sleep","args":{"duration":"1h"}}`)
	a.waitRunning(t, key, job.ID)
	p.mustStop(t)
	if got := serveStoredJob(t, db, job.ID); got.State != switchyard.StateAvailable {
		t.Fatalf("job after shutdown: %s, want available", got.State)
	}

	// It runs again on the next start.
	p2 := startServe(t, "--db", db, "--addr", "127.0.0.1:0", "--shutdown-timeout", "50ms")
	newServeAPI(t, p2.url).waitRunning(t, key, job.ID)
	p2.mustStop(t)
}

// TestServePostgres runs serve on the other driver, with --key-file.
func TestServePostgres(t *testing.T) {
	t.Parallel()
	db := testdb.PostgresURL(t)
	keyFile := filepath.Join(t.TempDir(), "admin.key")
	p := startServe(t, "--db", db, "--addr", "127.0.0.1:0", "--key-file", keyFile)
	m := servePrintedKey.FindStringSubmatch(p.stdout.String())
	if m == nil {
		t.Fatalf("no key printed on first start:\n%s", p.stdout)
	}
	if b, err := os.ReadFile(keyFile); err != nil || strings.TrimSpace(string(b)) != m[1] {
		t.Fatalf("--key-file holds %q (%v), want the printed key", b, err)
	}
	a := newServeAPI(t, p.url)
	job := a.enqueue(t, m[1], `{"kind":"sleep","args":{"duration":"300ms"}}`)
	a.waitRunning(t, m[1], job.ID)
	p.mustStop(t)

	p2 := startServe(t, "--db", db, "--addr", "127.0.0.1:0", "--key-file", keyFile)
	if out := p2.stdout.String(); out != "" {
		t.Errorf("second start printed %q", out)
	}
	a2 := newServeAPI(t, p2.url)
	// It finished during the shutdown, or (if it was leased but not yet
	// started when the shutdown came) was released and runs now: never lost.
	testdb.Poll(t, 30*time.Second, "the job to succeed", func() bool {
		code, b := a2.do(t, "GET", "/v1/jobs/"+job.ID, m[1], "")
		var got serveJob
		if code != http.StatusOK || json.Unmarshal(b, &got) != nil {
			t.Fatalf("GET job: %d %s", code, b)
		}
		return got.State == switchyard.StateSucceeded
	})
	p2.mustStop(t)
}

// TestServeHelp checks that --help exits 0 and lists every setting.
func TestServeHelp(t *testing.T) {
	t.Parallel()
	out, errOut, code := runCLI(t, "serve", "--help")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	help := out + errOut
	// Each setting is a row: flag, environment variable, file key, default.
	rows := map[string][]string{}
	for l := range strings.Lines(help) {
		if strings.HasSuffix(l, " \n") {
			t.Errorf("trailing spaces in help line %q", l)
		}
		if f := strings.Fields(l); strings.HasPrefix(l, "  -") && len(f) == 4 {
			name := f[0]
			if name == "-" { // no flag: known by its variable
				name = f[1]
			}
			rows[name] = f
			if len(l) > 100 {
				t.Errorf("help row %d characters wide: %q", len(l), l)
			}
		}
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	serveFlags(fs, &serveSettings{})
	settings := 2 // the admin key and GOGC, which are no flags
	fs.VisitAll(func(f *flag.Flag) {
		settings++
		key := strings.ReplaceAll(f.Name, "-", "_")
		if f.Name == "config" {
			key = "-"
		}
		row := rows["--"+f.Name]
		if row == nil || row[1] != envName(f.Name) || row[2] != key {
			t.Errorf("help row of --%s: %q, want its variable %s and file key %s", f.Name, row, envName(f.Name), key)
		}
	})
	if row := rows["SWITCHYARD_ADMIN_KEY"]; row == nil || row[0] != "-" || row[2] != "admin_key" {
		t.Errorf("help row of the admin key: %q", row)
	}
	if row := rows["GOGC"]; row == nil || row[3] != strconv.Itoa(serverGCPercent) {
		t.Errorf("help row of GOGC: %q", row)
	}
	if len(rows) != settings {
		t.Errorf("help lists %d settings, want %d:\n%s", len(rows), settings, help)
	}
}

// TestServeShutdownDeadlineClosesConnections shuts down with a request
// still being sent at the deadline: serve closes the connection and returns
// nil, as it releases jobs that outlast the deadline.
func TestServeShutdownDeadlineClosesConnections(t *testing.T) {
	t.Parallel()
	p, _, _ := startSQLiteServe(t, "--shutdown-timeout", "0")
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Half a request: the server waits for the rest of its header.
	if _, err := io.WriteString(conn, "GET /v1/jobs HTTP/1.1\r\n"); err != nil {
		t.Fatal(err)
	}
	p.mustStop(t)
	// The deadline only keeps a connection left open from hanging the test.
	if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	// Closed reads as EOF or, with the request unread, as a reset.
	n, err := conn.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("read from the connection after serve returned: %d bytes, %v; want it closed", n, err)
	}
}
