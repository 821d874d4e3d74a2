-- Closed Circuit metadata, version 1, for PostgreSQL: the same tables, columns and
-- representations as the SQLite schema (times are Unix milliseconds as BIGINT, IDs are
-- UUID text, bytes are BYTEA), so one set of queries serves both.
-- Nothing here is media, a thumbnail or a private key: only ciphertext, hashes and
-- the minimum metadata needed to route and authorize.

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    salt BYTEA NOT NULL,
    kdf_m_kib BIGINT NOT NULL,
    kdf_t BIGINT NOT NULL,
    kdf_p BIGINT NOT NULL,
    -- Argon2id PHC string of the client-derived auth key (never the password).
    auth_hash TEXT NOT NULL,
    age_recipient TEXT NOT NULL,
    signing_key TEXT NOT NULL,
    wrapped_keys BYTEA NOT NULL,
    recovery_wrapped_keys BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- SHA-256 of the bearer token; the token itself is never stored.
    token_hash TEXT NOT NULL UNIQUE,
    client TEXT NOT NULL,
    ip TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX sessions_by_user ON sessions(user_id);

CREATE TABLE claims (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL UNIQUE,
    expires_at BIGINT NOT NULL,
    -- Set when a camera presents the code.
    pairing_id TEXT UNIQUE,
    device_key TEXT,
    mac BYTEA,
    -- Set when the owner completes pairing; the device token is issued once after that.
    camera_id TEXT,
    token_issued BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE cameras (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users(id),
    epoch BIGINT NOT NULL,
    name_epoch BIGINT NOT NULL,
    name_ct BYTEA NOT NULL,
    certificate_body TEXT NOT NULL,
    certificate_sig TEXT NOT NULL,
    device_key TEXT NOT NULL,
    device_token_hash TEXT UNIQUE,
    paired_at BIGINT NOT NULL,
    last_seen_at BIGINT,
    last_event_at BIGINT
);

CREATE TABLE members (
    camera_id TEXT NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    since BIGINT NOT NULL,
    PRIMARY KEY (camera_id, user_id)
);
CREATE INDEX members_by_user ON members(user_id);

CREATE TABLE grants (
    camera_id TEXT NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    epoch BIGINT NOT NULL,
    grant_ct BYTEA NOT NULL,
    PRIMARY KEY (camera_id, user_id, epoch)
);

CREATE TABLE events (
    camera_id TEXT NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    epoch BIGINT NOT NULL,
    thumb_sha256 TEXT NOT NULL,
    thumb_size BIGINT NOT NULL,
    clip_sha256 TEXT NOT NULL,
    clip_size BIGINT NOT NULL,
    manifest_body TEXT NOT NULL,
    manifest_sig TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (camera_id, id)
);
CREATE INDEX events_by_time ON events(camera_id, started_at, id);

CREATE TABLE access_log (
    -- Assigned by the store from access_log_head, as on SQLite.
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    camera_id TEXT NOT NULL,
    event_id TEXT,
    object TEXT NOT NULL,
    ip TEXT NOT NULL
);
CREATE INDEX access_log_by_camera ON access_log(camera_id, at);
