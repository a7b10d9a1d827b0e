package postgres

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// Listener reconnection backoff: the first retry comes quickly (a killed
// backend or a restarted server usually accepts at once), then the wait
// doubles up to the cap.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 5 * time.Second
	// A connection that stayed up this long resets the backoff; a shorter
	// one counts as a failed attempt, so a server that accepts and then
	// drops every connection is not hammered.
	healthyAfter = 30 * time.Second
	// connectTimeout bounds one connection attempt.
	connectTimeout = 10 * time.Second
)

// listenerAppName names the listener's session in pg_stat_activity unless the
// configuration already names it.
const listenerAppName = "switchyard-listener"

// listener owns one connection outside the pool, LISTENing on the channel.
type listener struct {
	cc      *pgx.ConnConfig
	channel string
	origin  string // payloads carrying it were delivered locally already
	log     *slog.Logger
	deliver func(...store.Notification)

	cancel context.CancelFunc
	done   chan struct{}
	pid    atomic.Uint32 // backend pid of the live connection, 0 while down
}

// startListener connects and LISTENs before returning, so that every
// notification committed after Open is received, then serves it from a
// goroutine that stop ends.
func startListener(ctx context.Context, cc *pgx.ConnConfig, channel, origin string, log *slog.Logger, deliver func(...store.Notification)) (*listener, error) {
	if cc.RuntimeParams == nil {
		cc.RuntimeParams = map[string]string{}
	}
	if _, ok := cc.RuntimeParams["application_name"]; !ok {
		cc.RuntimeParams["application_name"] = listenerAppName
	}
	l := &listener{cc: cc, channel: channel, origin: origin, log: log, deliver: deliver, done: make(chan struct{})}
	conn, err := l.connect(ctx)
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go l.run(lctx, conn)
	return l, nil
}

func (l *listener) connect(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, l.cc)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{l.channel}.Sanitize()); err != nil {
		closeConn(conn)
		return nil, err
	}
	l.pid.Store(conn.PgConn().PID())
	return conn, nil
}

// stop ends the goroutine and closes its connection; it returns when both
// are done.
func (l *listener) stop() {
	l.cancel()
	<-l.done
}

func (l *listener) run(ctx context.Context, conn *pgx.Conn) {
	defer close(l.done)
	backoff := minBackoff
	for {
		up := time.Now()
		err := l.serve(ctx, conn)
		l.pid.Store(0)
		closeConn(conn)
		if ctx.Err() != nil {
			return
		}
		l.log.Warn("postgres: listener connection lost; reconnecting", "err", err)
		if time.Since(up) >= healthyAfter {
			backoff = minBackoff
		}
		for {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, maxBackoff)
			conn, err = l.connect(ctx)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			l.log.Warn("postgres: listener reconnect failed", "err", err, "retry_in", backoff)
		}
		l.log.Info("postgres: listener reconnected")
		// Anything sent while we were away is lost: tell every consumer to
		// look again.
		l.deliver(store.Notification{Kind: store.NotifyResync})
	}
}

// serve delivers notifications until the connection fails or ctx ends.
func (l *listener) serve(ctx context.Context, conn *pgx.Conn) error {
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if hn, ok := hubNote(n.Payload); ok {
			// Never sent with an origin: every Store, the sender's
			// included, hears a hub message here, in commit order.
			l.deliver(hn)
			continue
		}
		var msg wireNote
		if err := json.Unmarshal([]byte(n.Payload), &msg); err != nil || msg.Kind == "" {
			// Someone else's message on our channel; not ours to interpret.
			l.log.Debug("postgres: listener ignored a payload", "payload", n.Payload, "err", err)
			continue
		}
		if msg.Origin == l.origin {
			continue // this Store delivered it right after its commit
		}
		l.deliver(msg.Notification)
	}
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

// noteKey identifies one notification a write sends.
type noteKey struct {
	kind, tenant, queue string
	job                 int64
}

// noteSet collects notifications, merging duplicates: one NotifyInsert per
// (tenant, queue) that got available jobs, one NotifyScheduled for
// everything scheduled or made retryable with the earliest run_at, and each
// other notification once.
type noteSet struct {
	list []store.Notification
	idx  map[noteKey]int
	last int // index of the last note touched: batches mostly hit one queue
}

// add records the notification a job written in state with runAt calls for.
func (ns *noteSet) add(tenant, queue, state string, runAt time.Time) {
	switch state {
	case store.StateAvailable:
		ns.addNote(store.Notification{Kind: store.NotifyInsert, TenantID: tenant, Queue: queue})
	case store.StateScheduled, store.StateRetryable:
		ns.addNote(store.Notification{Kind: store.NotifyScheduled, At: runAt})
	}
}

func (ns *noteSet) addNote(n store.Notification) {
	k := noteKey{n.Kind, n.TenantID, n.Queue, n.JobID}
	i, ok := -1, false
	if len(ns.list) > 0 {
		if m := &ns.list[ns.last]; m.Kind == n.Kind && m.TenantID == n.TenantID && m.Queue == n.Queue && m.JobID == n.JobID {
			i, ok = ns.last, true
		}
	}
	if !ok {
		i, ok = ns.idx[k]
	}
	if ok {
		ns.last = i
		if n.Kind == store.NotifyScheduled && n.At.Before(ns.list[i].At) {
			ns.list[i].At = n.At
		}
		return
	}
	if ns.idx == nil {
		ns.idx = make(map[noteKey]int)
	}
	ns.idx[k] = len(ns.list)
	ns.last = len(ns.list)
	ns.list = append(ns.list, n)
}
