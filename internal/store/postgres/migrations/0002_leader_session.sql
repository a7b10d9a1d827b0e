-- 0002_leader_session: the backend pid of the leader's session connection,
-- so that a follower can take over as soon as that session is gone instead
-- of waiting for the lease to expire (see session.go).
ALTER TABLE switchyard.leaders ADD COLUMN leader_pid integer NOT NULL DEFAULT 0;
