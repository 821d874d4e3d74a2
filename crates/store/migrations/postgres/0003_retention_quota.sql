-- Retention per camera (days; NULL keeps events) and storage quota per account (bytes;
-- NULL is unlimited).
ALTER TABLE cameras ADD COLUMN retention_days BIGINT;
ALTER TABLE users ADD COLUMN quota_bytes BIGINT;
