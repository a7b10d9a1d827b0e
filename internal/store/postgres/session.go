package postgres

import (
	"context"
	"hash/fnv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// A session makes leadership failover push-based. Each Store keeps, per
// leadership name, one dedicated connection that contends for a
// session-level advisory lock: the leader's session holds it, and the
// followers' sessions wait for it inside PostgreSQL, costing nothing. When
// the leader's process dies its connection closes, PostgreSQL releases the
// lock at once, and one follower's wait returns: that Store announces
// NotifyLeader locally, its engine calls TryLead, and TryLead may take the
// lease row early because the row's leader_pid session no longer exists.
//
// The lease row stays the authority (a hung leader whose connection lives
// still loses the lead when its lease expires); the session only lets a
// dead leader be replaced at once without anyone renewing or polling often,
// which is what keeps an idle cluster asleep.
type session struct {
	s   *Store
	key int64

	mu      sync.Mutex
	pid     uint32 // backend pid of the current connection; 0 if none
	holding bool
	drop    context.CancelFunc // closes the current connection

	ctx  context.Context // cancelled when the Store closes
	stop context.CancelFunc
	done chan struct{}
}

// sessionFor returns name's session, starting it on first use.
func (s *Store) sessionFor(name string) *session {
	s.sessionsMu.Lock()
	defer s.sessionsMu.Unlock()
	if se := s.sessions[name]; se != nil {
		return se
	}
	h := fnv.New64a()
	h.Write([]byte("switchyard.leader." + name))
	se := &session{s: s, key: int64(h.Sum64()), done: make(chan struct{})}
	se.ctx, se.stop = context.WithCancel(context.Background())
	if s.sessions == nil {
		s.sessions = map[string]*session{}
	}
	s.sessions[name] = se
	go se.run()
	return se
}

func (s *Store) stopSessions() {
	s.sessionsMu.Lock()
	sessions := s.sessions
	s.sessions = nil
	s.sessionsMu.Unlock()
	for _, se := range sessions {
		se.stop()
		<-se.done
	}
}

// state reports the session's backend pid and whether it holds the lock.
func (se *session) state() (pid uint32, holding bool) {
	se.mu.Lock()
	defer se.mu.Unlock()
	return se.pid, se.holding
}

// release gives the lock up (by closing the connection) and queues for it
// again: a follower must not sit on the lock the leader should hold.
func (se *session) release() {
	se.mu.Lock()
	defer se.mu.Unlock()
	// Forget the connection now, so that no TryLead records the pid of a
	// session that is about to end.
	se.pid, se.holding = 0, false
	if se.drop != nil {
		se.drop()
		se.drop = nil
	}
}

func (se *session) run() {
	defer close(se.done)
	backoff := 50 * time.Millisecond
	for se.ctx.Err() == nil {
		if err := se.serve(); err != nil && se.ctx.Err() == nil {
			se.s.log.Debug("postgres: leader session ended", "err", err)
		}
		select {
		case <-se.ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// serve runs one connection: wait for the lock, hold it until the
// connection is dropped or fails.
func (se *session) serve() error {
	ctx, cancel := context.WithCancel(se.ctx)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, se.s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer closeConn(conn)
	pid := conn.PgConn().PID()
	se.mu.Lock()
	se.pid, se.drop = pid, cancel
	se.mu.Unlock()
	defer func() {
		se.mu.Lock()
		wasHolding := se.holding && se.pid == pid
		if se.pid == pid {
			se.pid, se.holding, se.drop = 0, false, nil
		}
		se.mu.Unlock()
		if wasHolding {
			// Our engine may think it leads; make it look again.
			se.s.deliver(store.Notification{Kind: store.NotifyLeader})
		}
	}()
	if _, err := conn.Exec(ctx, sqlSessionLock, se.key); err != nil {
		return err
	}
	se.mu.Lock()
	released := se.pid != pid
	se.holding = !released
	se.mu.Unlock()
	if released {
		return nil
	}
	// Whoever held the lock is gone (or gave it up): the lead may be free.
	se.s.deliver(store.Notification{Kind: store.NotifyLeader})
	// Hold it: this read returns only when the connection fails or is
	// dropped (nothing LISTENs on it).
	_, err = conn.WaitForNotification(ctx)
	return err
}
