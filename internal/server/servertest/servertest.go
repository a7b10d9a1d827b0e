// Package servertest starts a real Switchyard server on loopback for tests:
// a client on a real database, the built-in kinds, the HTTP API on an
// httptest server, and an admin API key.
package servertest

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	switchyard "github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/auth"
	"github.com/switchyard-dev/switchyard/internal/kinds"
	"github.com/switchyard-dev/switchyard/internal/server"
	"github.com/switchyard-dev/switchyard/internal/store"
	"github.com/switchyard-dev/switchyard/internal/store/postgres"
	"github.com/switchyard-dev/switchyard/internal/store/sqlite"
)

// Server is a started server.
type Server struct {
	// URL is the API's base URL, as http://127.0.0.1:PORT.
	URL string
	// AdminKey is an instance-administrator API key.
	AdminKey string
	// Client is the server's own switchyard client.
	Client *switchyard.Client
	// Registry holds the server's metrics.
	Registry *prometheus.Registry

	db string
}

// SigningKey reads the key the server signs access tokens with from its
// database, so that tests can forge tokens (expired ones, say).
func (s *Server) SigningKey(ctx context.Context) ([]byte, error) {
	var st store.Store
	var err error
	if strings.HasPrefix(s.db, "sqlite:") {
		st, err = sqlite.Open(ctx, sqlite.Config{Path: strings.TrimPrefix(s.db, "sqlite:"), NoMigrate: true})
	} else {
		st, err = postgres.Open(ctx, postgres.Config{URL: s.db, NoMigrate: true})
	}
	if err != nil {
		return nil, err
	}
	defer st.Close()
	// The server creates the key on first use; asking creates it if no
	// token was issued yet, and the server then reads this one.
	fresh := make([]byte, 32)
	_, _ = rand.Read(fresh)
	return st.InstanceSecret(ctx, auth.SigningKeyName, fresh)
}

// Options adjust Start.
type Options struct {
	// Config is the client's configuration; Database, AllQueues,
	// AllTenants, Logger and Registerer are set by Start. Zero durations take fast test values.
	Config switchyard.Config
	// Server is the server's configuration; Client, Gatherer and Registerer
	// are set by Start.
	Server server.Config
	// NotStarted leaves the client's workers stopped (jobs stay queued).
	NotStarted bool
}

// Start starts a server on db ("sqlite:PATH" or a postgres URL) and stops it
// when the test ends.
func Start(t testing.TB, db string, opts ...Options) *Server {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := prometheus.NewRegistry()
	cfg := o.Config
	cfg.Database = db
	cfg.AllQueues = true
	cfg.AllTenants = true
	cfg.Logger = logger
	cfg.Registerer = reg
	if cfg.Retry == nil {
		cfg.Retry = switchyard.ExponentialBackoff{Base: time.Millisecond, Max: 10 * time.Millisecond}
	}
	c, err := switchyard.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("servertest: open %s: %v", db, err)
	}
	if err := kinds.Register(c, kinds.Config{}); err != nil {
		c.Close()
		t.Fatalf("servertest: register kinds: %v", err)
	}
	key, _, err := c.CreateAPIKey(ctx, switchyard.NewAPIKey{Name: "servertest", Role: switchyard.RoleInstanceAdmin})
	if err != nil {
		c.Close()
		t.Fatalf("servertest: create key: %v", err)
	}
	if !o.NotStarted {
		if err := c.Start(ctx); err != nil {
			c.Close()
			t.Fatalf("servertest: start: %v", err)
		}
	}
	scfg := o.Server
	scfg.Client = c
	scfg.Gatherer = reg
	scfg.Registerer = reg
	if scfg.Logger == nil {
		scfg.Logger = logger
	}
	srv, err := server.New(scfg)
	if err != nil {
		c.Close()
		t.Fatalf("servertest: new server: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Stop(stopCtx); err != nil {
			t.Errorf("servertest: stop: %v", err)
		}
		if err := c.Close(); err != nil {
			t.Errorf("servertest: close: %v", err)
		}
	})
	return &Server{URL: hs.URL, AdminKey: key, Client: c, Registry: reg, db: db}
}
