-- Ownership transfers: offered by the owner's client with a statement signed by the
-- owner's key, accepted by the new owner's client together with a key rotation.
CREATE TABLE transfers (
    camera_id TEXT NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
    epoch BIGINT NOT NULL,
    from_user_id TEXT NOT NULL,
    to_user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    body TEXT NOT NULL,
    signature TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    accepted_at BIGINT,
    PRIMARY KEY (camera_id, epoch)
);
CREATE INDEX transfers_by_recipient ON transfers(to_user_id);

-- Every epoch's content key encrypted to the new owner, held until they accept.
CREATE TABLE transfer_grants (
    camera_id TEXT NOT NULL,
    transfer_epoch BIGINT NOT NULL,
    epoch BIGINT NOT NULL,
    grant_ct BYTEA NOT NULL,
    PRIMARY KEY (camera_id, transfer_epoch, epoch),
    FOREIGN KEY (camera_id, transfer_epoch) REFERENCES transfers(camera_id, epoch) ON DELETE CASCADE
);
