// Package testdb gives tests real databases: a fresh PostgreSQL database per
// call and a temporary SQLite file. It never skips: when no PostgreSQL can be
// found or started, the test fails saying what was tried.
//
// PostgreSQL is found in this order:
//  1. SWITCHYARD_TEST_DATABASE_URL, if set;
//  2. the local server on 127.0.0.1:5432 as user postgres;
//  3. a throwaway cluster started with the machine's initdb and pg_ctl,
//     shared by the test binary and stopped by Shutdown (call it from TestMain).
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"
)

var (
	serverOnce sync.Once
	serverURL  string // admin URL of the server, database "postgres"
	serverErr  error
	clusterDir string // set when this process started its own cluster
)

// PostgresURL creates a fresh, empty database for t and returns its URL. The
// database is dropped when t ends.
func PostgresURL(t testing.TB) string {
	t.Helper()
	admin, err := server()
	if err != nil {
		t.Fatalf("testdb: no PostgreSQL for tests: %v", err)
	}
	name := "switchyard_test_" + randomHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("testdb: connect %s: %v", redact(admin), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE template0"); err != nil {
		t.Fatalf("testdb: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("testdb: drop database: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("testdb: drop database %s: %v", name, err)
		}
	})
	u, _ := url.Parse(admin)
	u.Path = "/" + name
	return u.String()
}

// SQLitePath returns the path of a not-yet-existing SQLite file in a
// temporary directory removed when t ends.
func SQLitePath(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "switchyard.db")
}

// Shutdown stops the throwaway cluster if this process started one. Call it
// at the end of TestMain.
func Shutdown() {
	if clusterDir == "" {
		return
	}
	ctl, err := pgBin("pg_ctl")
	if err == nil {
		_ = exec.Command(ctl, "-D", filepath.Join(clusterDir, "data"), "-m", "immediate", "stop").Run()
	}
	_ = os.RemoveAll(clusterDir)
}

func server() (string, error) {
	serverOnce.Do(func() { serverURL, serverErr = findServer() })
	return serverURL, serverErr
}

func findServer() (string, error) {
	var tried []string
	if u := os.Getenv("SWITCHYARD_TEST_DATABASE_URL"); u != "" {
		if err := ping(u); err != nil {
			return "", fmt.Errorf("SWITCHYARD_TEST_DATABASE_URL=%s is set but unusable: %w", redact(u), err)
		}
		return u, nil
	}
	local := "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	if err := ping(local); err == nil {
		return local, nil
	} else {
		tried = append(tried, fmt.Sprintf("local server %s: %v", local, err))
	}
	u, err := startCluster()
	if err == nil {
		return u, nil
	}
	tried = append(tried, fmt.Sprintf("throwaway cluster with initdb/pg_ctl: %v", err))
	return "", fmt.Errorf("set SWITCHYARD_TEST_DATABASE_URL, run PostgreSQL on 127.0.0.1:5432, or install initdb/pg_ctl; tried: %s", strings.Join(tried, "; "))
}

func ping(u string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.Ping(ctx)
}

// pgBin finds a PostgreSQL server binary on PATH or in Debian's versioned
// directories.
func pgBin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(matches) == 0 {
		return "", fmt.Errorf("%s not found on PATH or in /usr/lib/postgresql/*/bin", name)
	}
	return matches[len(matches)-1], nil
}

func startCluster() (string, error) {
	initdb, err := pgBin("initdb")
	if err != nil {
		return "", err
	}
	ctl, err := pgBin("pg_ctl")
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "switchyard-pg-")
	if err != nil {
		return "", err
	}
	data := filepath.Join(dir, "data")
	cmd := exec.Command(initdb, "-D", data, "-U", "postgres", "--auth=trust", "--no-sync")
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root; run it as the postgres user.
		if err := chownRecursive(dir, "postgres"); err != nil {
			return "", err
		}
		cmd = exec.Command("runuser", "-u", "postgres", "--", initdb, "-D", data, "-U", "postgres", "--auth=trust", "--no-sync")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("initdb: %v: %s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", port, dir)
	args := []string{"-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "start"}
	cmd = exec.Command(ctl, args...)
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", ctl}, args...)...)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("pg_ctl start: %v: %s", err, out)
	}
	clusterDir = dir
	u := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	return u, ping(u)
}

func chownRecursive(dir, user string) error {
	out, err := exec.Command("chown", "-R", user, dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("chown %s: %v: %s", dir, err, out)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparseable URL)"
	}
	return p.Redacted()
}

// Main is a TestMain body for packages that use real databases: it runs the
// tests, stops the throwaway PostgreSQL cluster if one was started, and
// fails a passing run that left goroutines behind (every component must
// stop on Close or Stop). goleak.VerifyTestMain cannot be used, because it
// exits before Shutdown could run. A failed run is not checked for leaks: a
// failed test may leave goroutines behind, and its failure says more.
func Main(m *testing.M) {
	code := m.Run()
	Shutdown()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goroutines left running after the tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// ForEachBackend runs fn as a parallel subtest on each backend, "sqlite"
// (a fresh SQLite file) and "postgres" (a fresh database), passing the
// database URL.
func ForEachBackend(t *testing.T, fn func(t *testing.T, db string)) {
	t.Helper()
	for _, b := range []struct {
		name string
		db   func(testing.TB) string
	}{
		{"sqlite", func(t testing.TB) string { return "sqlite:" + SQLitePath(t) }},
		{"postgres", PostgresURL},
	} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, b.db(t))
		})
	}
}
