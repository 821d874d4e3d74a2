-- Sharing, key rotation, sessions and step-up, and the hash-chained access log.

-- Invitations and their state; grants for the invitee are written with the invitation.
CREATE TABLE shares (
    camera_id TEXT NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
    inviter_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    invitee_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    history BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    accepted_at BIGINT,
    PRIMARY KEY (camera_id, invitee_id)
);
CREATE INDEX shares_by_invitee ON shares(invitee_id);

-- Guest shares end by themselves.
ALTER TABLE members ADD COLUMN expires_at BIGINT;

-- Who was a member of which camera when: the breach report's ground truth.
CREATE TABLE membership_history (
    camera_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL,
    from_at BIGINT NOT NULL,
    until_at BIGINT
);
CREATE INDEX membership_history_by_camera ON membership_history(camera_id, user_id);

-- One owner-signed certificate per content-key epoch.
CREATE TABLE certificates (
    camera_id TEXT NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
    epoch BIGINT NOT NULL,
    body TEXT NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (camera_id, epoch)
);
INSERT INTO certificates (camera_id, epoch, body, signature)
    SELECT id, epoch, certificate_body, certificate_sig FROM cameras;
INSERT INTO membership_history (camera_id, user_id, role, from_at)
    SELECT camera_id, user_id, role, since FROM members;

-- Set when a member was removed and the owner's client has not rotated the key yet.
ALTER TABLE cameras ADD COLUMN rotation_needed BIGINT NOT NULL DEFAULT 0;

ALTER TABLE users ADD COLUMN totp_secret BYTEA;
ALTER TABLE users ADD COLUMN totp_enabled BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN require_step_up BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN step_up_at BIGINT;

CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

-- The access log becomes a hash chain: each entry commits to the one before it.
ALTER TABLE access_log ADD COLUMN prev_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE access_log ADD COLUMN hash TEXT NOT NULL DEFAULT '';
CREATE TABLE access_log_head (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO access_log_head (id, seq, hash) VALUES (1, 0, '');
