//! The orphan sweeper. An upload writes its blobs first and commits the event row
//! second (DESIGN I5), so a crash, a lost connection or a refused duplicate between the
//! two leaves blobs no row points at. Nothing can read them (every read starts from a
//! row), but they take space; the sweeper deletes those older than a grace period,
//! which must outlast any upload still between its two steps.

use std::time::Duration;

use sqlx::Row;

use crate::blobs::{BlobKey, MediaObject, MEDIA_ROOT};
use crate::time::now_ms;
use crate::{Result, Store};

/// How old a rowless blob must be before the sweeper believes no upload still owns it.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(60 * 60);

impl Store {
    /// Deletes every media blob older than `grace` that no event row names, logging each,
    /// and returns how many it deleted.
    pub async fn sweep_orphan_blobs(&self, grace: Duration) -> Result<usize> {
        let cutoff = now_ms().saturating_sub(i64::try_from(grace.as_millis()).unwrap_or(i64::MAX));
        let mut deleted = 0;
        for listed in self.blobs.list(MEDIA_ROOT).await? {
            if listed.modified_ms > cutoff {
                continue;
            }
            let Some((camera, event, key)) = BlobKey::parse_media(&listed.key) else {
                tracing::warn!(key = %listed.key, "orphan sweep: not a media key; left alone");
                continue;
            };
            let row = sqlx::query(
                "SELECT thumb_sha256, clip_sha256 FROM events WHERE camera_id = $1 AND id = $2",
            )
            .bind(camera.to_string())
            .bind(event.to_string())
            .fetch_optional(&self.pool)
            .await?;
            let named = match row {
                None => false,
                Some(row) => {
                    let thumb: String = row.try_get("thumb_sha256")?;
                    let clip: String = row.try_get("clip_sha256")?;
                    key == BlobKey::media(camera, event, MediaObject::Thumb, &thumb)
                        || key == BlobKey::media(camera, event, MediaObject::Clip, &clip)
                }
            };
            if !named {
                self.blobs.delete(&key).await?;
                tracing::info!(%camera, %event, key = %listed.key, "orphan sweep: deleted a blob no event names");
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}
