-- Secrets of the installation, shared by every node: the key of the decoy answers that
-- prelogin gives unknown emails, so every node answers alike.
CREATE TABLE instance (
    id BIGINT PRIMARY KEY,
    secret BYTEA NOT NULL
);
