//! Retention per camera and storage quotas per account. The sweeper deletes an event's
//! row first (so nothing visible points at missing media), then its blobs, and logs it.

use cc_core::{CameraId, EventId};
use sqlx::Row;

use crate::authz::{Authorized, Device, Manage};
use crate::blobs::{BlobKey, MediaObject};
use crate::time::now_ms;
use crate::{rows, Result, Store, StoreError};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

impl Store {
    /// Keeps the camera's events `days` days (`None`: until removed).
    pub async fn set_retention(&self, auth: &Authorized<Manage>, days: Option<u32>) -> Result<()> {
        if days == Some(0) {
            return Err(StoreError::Invalid("retention must be at least one day"));
        }
        sqlx::query("UPDATE cameras SET retention_days = $1 WHERE id = $2")
            .bind(days.map(i64::from))
            .bind(auth.camera().to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Sets an account's storage quota in bytes (`None`: unlimited); an operator action.
    pub async fn set_quota(&self, email: &str, bytes: Option<u64>) -> Result<()> {
        let email = crate::accounts::normalize_email(email)?;
        let bytes = bytes
            .map(i64::try_from)
            .transpose()
            .map_err(|_| StoreError::Invalid("quota out of range"))?;
        let done = sqlx::query("UPDATE users SET quota_bytes = $1 WHERE email = $2")
            .bind(bytes)
            .bind(email)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Refuses an upload of `incoming` bytes that would take the camera owner's account
    /// past its quota. The sum is cast back to BIGINT because PostgreSQL widens it to
    /// NUMERIC, a type the portable driver does not read.
    pub async fn check_quota(&self, device: &Device, incoming: u64) -> Result<()> {
        let row = sqlx::query(
            "SELECT u.quota_bytes, \
             (SELECT CAST(COALESCE(SUM(e.thumb_size + e.clip_size), 0) AS BIGINT) FROM events e \
              JOIN cameras c ON c.id = e.camera_id WHERE c.owner_id = u.id) AS used \
             FROM cameras k JOIN users u ON u.id = k.owner_id WHERE k.id = $1",
        )
        .bind(device.camera().to_string())
        .fetch_one(&self.pool)
        .await?;
        let quota: Option<i64> = row.try_get("quota_bytes")?;
        let used: i64 = row.try_get("used")?;
        let incoming = i64::try_from(incoming).unwrap_or(i64::MAX);
        match quota {
            Some(q) if used.saturating_add(incoming) > q => Err(StoreError::QuotaExceeded),
            _ => Ok(()),
        }
    }

    /// Deletes events older than their camera's retention; returns how many.
    pub async fn sweep_retention(&self) -> Result<usize> {
        let now = now_ms();
        let due = sqlx::query(
            "SELECT e.camera_id, e.id, e.thumb_sha256, e.clip_sha256 FROM events e JOIN cameras k ON k.id = e.camera_id \
             WHERE k.retention_days IS NOT NULL AND e.started_at < $1 - k.retention_days * $2 LIMIT 1000",
        )
        .bind(now)
        .bind(DAY_MS)
        .fetch_all(&self.pool)
        .await?;
        for row in &due {
            let camera: CameraId = rows::id(row, "camera_id")?;
            let event: EventId = rows::id(row, "id")?;
            sqlx::query("DELETE FROM events WHERE camera_id = $1 AND id = $2")
                .bind(camera.to_string())
                .bind(event.to_string())
                .execute(&self.pool)
                .await?;
            for (object, column) in [
                (MediaObject::Thumb, "thumb_sha256"),
                (MediaObject::Clip, "clip_sha256"),
            ] {
                let hash: String = row.try_get(column)?;
                self.blobs
                    .delete(&BlobKey::media(camera, event, object, &hash))
                    .await?;
            }
            tracing::info!(%camera, %event, "retention: event deleted");
        }
        Ok(due.len())
    }
}
