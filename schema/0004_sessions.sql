-- Console sessions: only a SHA-256 of each session id is kept, so a copy of the
-- database does not let anyone take over a signed-in browser.

CREATE TABLE console_sessions (
    id_hash      TEXT PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX console_sessions_seen ON console_sessions (last_seen_at);
CREATE INDEX console_sessions_user ON console_sessions (user_id);
