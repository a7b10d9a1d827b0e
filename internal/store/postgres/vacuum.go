package postgres

import (
	"context"
	"errors"
	"time"
)

// countLeased adds n dead row versions (from leases, or deleted jobs) to the
// count since the last vacuum and starts a background vacuum when it
// reaches Config.VacuumEvery.
func (s *Store) countLeased(n int) {
	if s.vacuumEvery == 0 || n == 0 {
		return
	}
	if s.leased.Add(int64(n)) < s.vacuumEvery || !s.vacuuming.CompareAndSwap(false, true) {
		return
	}
	s.leased.Store(0)
	s.bg.Go(func() {
		defer s.vacuuming.Store(false)
		err := s.vacuum(s.bgCtx)
		if err != nil && !errors.Is(err, context.Canceled) {
			s.log.Warn("postgres: background vacuum of switchyard.jobs failed", "err", err)
		}
		if s.onVacuum != nil {
			s.onVacuum(err)
		}
	})
}

// vacuum runs VACUUM on the jobs table unless another node is doing so: the
// session advisory lock is held on the connection that vacuums, so it is
// released with the connection whatever happens.
func (s *Store) vacuum(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	var got bool
	if err := conn.QueryRow(ctx, sqlVacuumTryLock, vacuumLockKey).Scan(&got); err != nil {
		return err
	}
	if !got {
		return nil
	}
	start := time.Now()
	_, err = conn.Exec(ctx, sqlVacuum)
	if _, uerr := conn.Exec(context.WithoutCancel(ctx), sqlVacuumUnlock, vacuumLockKey); uerr != nil {
		// The lock is released when the connection goes: make sure it does.
		conn.Conn().PgConn().Close(context.WithoutCancel(ctx)) //nolint:errcheck
	}
	if err != nil {
		return err
	}
	s.log.Debug("postgres: vacuumed switchyard.jobs", "took", time.Since(start))
	return nil
}
