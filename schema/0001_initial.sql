-- Accounts, tokens, licenses, product instances, people and the audit trail.
-- Times are integer seconds since the Unix epoch (UTC).

CREATE TABLE smart_accounts (
    id               INTEGER PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    eula_accepted_at INTEGER,
    eula_accepted_by TEXT,
    created_at       INTEGER NOT NULL
);

CREATE TABLE virtual_accounts (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES smart_accounts(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (account_id, name)
);

CREATE TABLE registration_tokens (
    id                INTEGER PRIMARY KEY,
    token             TEXT NOT NULL UNIQUE,
    va_id             INTEGER NOT NULL REFERENCES virtual_accounts(id) ON DELETE CASCADE,
    description       TEXT NOT NULL DEFAULT '',
    created_at        INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,
    max_uses          INTEGER CHECK (max_uses IS NULL OR max_uses > 0),
    uses              INTEGER NOT NULL DEFAULT 0,
    export_controlled INTEGER NOT NULL DEFAULT 0,
    created_by        TEXT NOT NULL,
    revoked_at        INTEGER,
    revoked_by        TEXT
);
CREATE INDEX registration_tokens_va ON registration_tokens (va_id);

-- Purchased licenses: entered on the authority, received from upstream on a satellite.
CREATE TABLE licenses (
    id          INTEGER PRIMARY KEY,
    va_id       INTEGER NOT NULL REFERENCES virtual_accounts(id) ON DELETE CASCADE,
    tag         TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    kind        TEXT NOT NULL CHECK (kind IN ('rtu', 'sia', 'tracking')),
    quantity    INTEGER NOT NULL CHECK (quantity > 0),
    starts_at   INTEGER,
    ends_at     INTEGER,
    created_at  INTEGER NOT NULL
);
CREATE INDEX licenses_va_tag ON licenses (va_id, tag);

CREATE TABLE license_transfers (
    id         INTEGER PRIMARY KEY,
    from_va_id INTEGER NOT NULL REFERENCES virtual_accounts(id) ON DELETE CASCADE,
    to_va_id   INTEGER NOT NULL REFERENCES virtual_accounts(id) ON DELETE CASCADE,
    tag        TEXT NOT NULL,
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL
);
CREATE INDEX license_transfers_from ON license_transfers (from_va_id, tag);
CREATE INDEX license_transfers_to ON license_transfers (to_va_id, tag);

CREATE TABLE product_instances (
    id                      INTEGER PRIMARY KEY,
    udi_pid                 TEXT NOT NULL,
    udi_serial              TEXT NOT NULL,
    hostname                TEXT,
    software_version        TEXT,
    va_id                   INTEGER NOT NULL REFERENCES virtual_accounts(id),
    public_key              TEXT NOT NULL,
    export_controlled       INTEGER NOT NULL DEFAULT 0,
    token_id                INTEGER REFERENCES registration_tokens(id) ON DELETE SET NULL,
    registered_at           INTEGER NOT NULL,
    last_renewed_at         INTEGER NOT NULL,
    id_cert_serial          TEXT NOT NULL,
    id_cert_not_after       INTEGER NOT NULL,
    last_contact_at         INTEGER NOT NULL,
    last_authorized_at      INTEGER,
    sia_grace_used_seconds  INTEGER NOT NULL DEFAULT 0,
    sia_ooc_since           INTEGER,
    UNIQUE (udi_serial, udi_pid)
);
CREATE INDEX product_instances_va ON product_instances (va_id, id);
CREATE INDEX product_instances_pid ON product_instances (udi_pid);
CREATE INDEX product_instances_hostname ON product_instances (hostname);

-- Latest full usage report of each instance.
CREATE TABLE instance_usage (
    instance_id INTEGER NOT NULL REFERENCES product_instances(id) ON DELETE CASCADE,
    tag         TEXT NOT NULL,
    count       INTEGER NOT NULL CHECK (count > 0),
    PRIMARY KEY (instance_id, tag)
) WITHOUT ROWID;

-- Incremental aggregate: sum of instance_usage per virtual account and tag,
-- maintained in the same transaction as every usage change.
CREATE TABLE usage_totals (
    va_id  INTEGER NOT NULL REFERENCES virtual_accounts(id) ON DELETE CASCADE,
    tag    TEXT NOT NULL,
    in_use INTEGER NOT NULL CHECK (in_use >= 0),
    PRIMARY KEY (va_id, tag)
) WITHOUT ROWID;

-- Nonces seen within the clock-skew window, for replay refusal.
CREATE TABLE seen_nonces (
    udi_serial TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    seen_at    INTEGER NOT NULL,
    PRIMARY KEY (udi_serial, nonce)
) WITHOUT ROWID;
CREATE INDEX seen_nonces_age ON seen_nonces (seen_at);

-- Call Home messages that are not smart licensing requests, and device history.
CREATE TABLE device_events (
    id           INTEGER PRIMARY KEY,
    udi_pid      TEXT,
    udi_serial   TEXT,
    kind         TEXT NOT NULL,
    message_type TEXT NOT NULL DEFAULT '',
    message_id   TEXT NOT NULL DEFAULT '',
    detail       TEXT NOT NULL DEFAULT '',
    received_at  INTEGER NOT NULL
);
CREATE INDEX device_events_serial ON device_events (udi_serial, id);

-- Daily usage snapshots per virtual account and tag, for trends and reports.
CREATE TABLE usage_snapshots (
    day       TEXT NOT NULL,
    va_id     INTEGER NOT NULL REFERENCES virtual_accounts(id) ON DELETE CASCADE,
    tag       TEXT NOT NULL,
    in_use    INTEGER NOT NULL,
    available INTEGER NOT NULL,
    PRIMARY KEY (va_id, tag, day)
) WITHOUT ROWID;

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('system-admin', 'operator', 'account-admin', 'viewer')),
    created_at    INTEGER NOT NULL,
    disabled_at   INTEGER
);

CREATE TABLE api_clients (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    client_id   TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('system-admin', 'operator', 'account-admin', 'viewer')),
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    revoked_at  INTEGER
);

-- Accounts that an account-limited principal may act on ('user' or 'client').
CREATE TABLE principal_accounts (
    principal_kind TEXT NOT NULL CHECK (principal_kind IN ('user', 'client')),
    principal_id   INTEGER NOT NULL,
    account_id     INTEGER NOT NULL REFERENCES smart_accounts(id) ON DELETE CASCADE,
    PRIMARY KEY (principal_kind, principal_id, account_id)
) WITHOUT ROWID;

-- Bearer tokens from /oauth/token; only a SHA-256 of each is kept.
CREATE TABLE access_tokens (
    token_hash TEXT PRIMARY KEY,
    client_id  INTEGER NOT NULL REFERENCES api_clients(id) ON DELETE CASCADE,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY,
    at     INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
