-- Synchronisation: the authority's registry of satellites and what they report,
-- and the satellite's log of changes not yet acknowledged upstream.

-- Authority: one row per enrolled (or enrolling) satellite.
CREATE TABLE satellites (
    id                     INTEGER PRIMARY KEY,
    satellite_id           TEXT NOT NULL UNIQUE,
    name                   TEXT NOT NULL,
    account_id             INTEGER NOT NULL REFERENCES smart_accounts(id) ON DELETE CASCADE,
    enrollment_token_hash  TEXT UNIQUE,
    public_key             TEXT,
    created_at             INTEGER NOT NULL,
    enrolled_at            INTEGER,
    last_request_sequence  INTEGER NOT NULL DEFAULT 0,
    last_response_sequence INTEGER NOT NULL DEFAULT 0,
    last_sync_at           INTEGER,
    -- The last answer, so a repeated request (a transfer cut off) gets the same file back;
    -- only for the very same request bytes.
    last_request_sha256    TEXT,
    last_response          BLOB
);

-- Authority: which satellite serves a virtual account; one at a time.
CREATE TABLE satellite_vas (
    va_id        INTEGER PRIMARY KEY REFERENCES virtual_accounts(id) ON DELETE CASCADE,
    satellite_id INTEGER NOT NULL REFERENCES satellites(id) ON DELETE CASCADE
);

-- Authority: the product instances each satellite last reported, with their usage.
CREATE TABLE reported_instances (
    satellite_id    INTEGER NOT NULL REFERENCES satellites(id) ON DELETE CASCADE,
    udi_pid         TEXT NOT NULL,
    udi_serial      TEXT NOT NULL,
    va_id           INTEGER NOT NULL REFERENCES virtual_accounts(id) ON DELETE CASCADE,
    hostname        TEXT,
    last_contact_at TEXT NOT NULL,
    usage_json      TEXT NOT NULL,
    PRIMARY KEY (satellite_id, udi_serial, udi_pid)
) WITHOUT ROWID;

-- Authority: usage per virtual account and tag as last reported by its satellite.
CREATE TABLE reported_usage (
    va_id  INTEGER NOT NULL REFERENCES virtual_accounts(id) ON DELETE CASCADE,
    tag    TEXT NOT NULL,
    in_use INTEGER NOT NULL,
    PRIMARY KEY (va_id, tag)
) WITHOUT ROWID;

-- Satellite: changes since the last acknowledged request.
CREATE TABLE sync_changes (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    account     TEXT NOT NULL,
    va          TEXT NOT NULL,
    udi_pid     TEXT,
    udi_serial  TEXT,
    detail      TEXT
);
