//! Events: cameras insert them (with a [`Device`] proof), members read them (with an
//! [`Authorized`] proof). Every read filters by camera and event together.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cc_core::api::{EventInfo, EventPage, EventQuery, MAX_PAGE};
use cc_core::manifest::{Manifest, SignedManifest};
use cc_core::{CameraId, EventId};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::authz::{Authorized, Device, View};
use crate::blobs::{BlobKey, MediaObject};
use crate::time::{from_ms, now_ms, to_ms};
use crate::{rows, Result, Store, StoreError};

const EVENT_COLUMNS: &str = "camera_id, id, kind, started_at, duration_ms, epoch, thumb_sha256, \
    thumb_size, clip_sha256, clip_size, manifest_body, manifest_sig, received_at";

/// Whether an upload created the event or found it already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    New,
    Duplicate,
}

/// Where a media object is, and whether the caller must step up to read it.
pub struct MediaLocation {
    pub key: BlobKey,
    pub size: u64,
    /// The account asks for a fresh password or TOTP check and this session has none.
    pub step_up_needed: bool,
}

/// An event row as the group commit writes it.
pub(crate) struct EventRecord {
    pub(crate) camera: String,
    event: String,
    kind: &'static str,
    started_at: i64,
    duration_ms: i64,
    epoch: i64,
    thumb_sha256: String,
    thumb_size: i64,
    clip_sha256: String,
    clip_size: i64,
    body: String,
    signature: String,
}

#[cfg(test)]
impl EventRecord {
    pub(crate) fn for_test(camera: &str) -> Self {
        Self {
            camera: camera.to_owned(),
            event: EventId::new_v7().to_string(),
            kind: "motion",
            started_at: 0,
            duration_ms: 0,
            epoch: 1,
            thumb_sha256: String::new(),
            thumb_size: 0,
            clip_sha256: String::new(),
            clip_size: 0,
            body: String::new(),
            signature: String::new(),
        }
    }
}

/// Inserts `record` on `conn` (inside the group commit's transaction).
pub(crate) async fn insert_in(conn: &mut AnyConnection, r: &EventRecord) -> Result<Inserted> {
    let now = now_ms();
    let done = sqlx::query(&format!(
        "INSERT INTO events ({EVENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (camera_id, id) DO NOTHING"
    ))
    .bind(&r.camera)
    .bind(&r.event)
    .bind(r.kind)
    .bind(r.started_at)
    .bind(r.duration_ms)
    .bind(r.epoch)
    .bind(&r.thumb_sha256)
    .bind(r.thumb_size)
    .bind(&r.clip_sha256)
    .bind(r.clip_size)
    .bind(&r.body)
    .bind(&r.signature)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        let existing =
            sqlx::query("SELECT manifest_body FROM events WHERE camera_id = $1 AND id = $2")
                .bind(&r.camera)
                .bind(&r.event)
                .fetch_optional(&mut *conn)
                .await?;
        return match existing {
            Some(row) if row.try_get::<String, _>("manifest_body")? == r.body => {
                Ok(Inserted::Duplicate)
            }
            _ => Err(StoreError::Conflict(
                "a different event with this ID is already stored",
            )),
        };
    }
    sqlx::query("UPDATE cameras SET last_event_at = $1, last_seen_at = $1 WHERE id = $2")
        .bind(now)
        .bind(&r.camera)
        .execute(&mut *conn)
        .await?;
    Ok(Inserted::New)
}

/// The position after which the next page starts: (started_at ms, event ID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    started_at: i64,
    event: EventId,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}.{}", self.started_at, self.event))
    }

    pub fn decode(text: &str) -> Result<Self> {
        let bad = || StoreError::Invalid("the cursor is not one this server issued");
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let (ms, id) = text.split_once('.').ok_or_else(bad)?;
        Ok(Self {
            started_at: ms.parse().map_err(|_| bad())?,
            event: id.parse().map_err(|_| bad())?,
        })
    }
}

fn event_from_row(row: &AnyRow) -> Result<EventInfo> {
    let kind: String = row.try_get("kind")?;
    Ok(EventInfo {
        event_id: rows::id(row, "id")?,
        camera_id: rows::id(row, "camera_id")?,
        kind: kind.parse().map_err(StoreError::Corrupt)?,
        started_at: from_ms(row.try_get("started_at")?),
        duration_ms: rows::u32_col(row, "duration_ms")?,
        epoch: rows::u32_col(row, "epoch")?,
        thumb_size: rows::u64_col(row, "thumb_size")?,
        clip_size: rows::u64_col(row, "clip_size")?,
        received_at: from_ms(row.try_get("received_at")?),
        manifest: SignedManifest::from_parts(
            row.try_get("manifest_body")?,
            row.try_get("manifest_sig")?,
        ),
    })
}

fn to_i64(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::Invalid("size out of range"))
}

impl Store {
    /// The manifest already stored for this camera's event, if any: lets a retried
    /// upload be acknowledged without writing anything.
    pub async fn stored_manifest(
        &self,
        device: &Device,
        event: EventId,
    ) -> Result<Option<SignedManifest>> {
        let row = sqlx::query(
            "SELECT manifest_body, manifest_sig FROM events WHERE camera_id = $1 AND id = $2",
        )
        .bind(device.camera().to_string())
        .bind(event.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(SignedManifest::from_parts(
                r.try_get("manifest_body")?,
                r.try_get("manifest_sig")?,
            ))
        })
        .transpose()
    }

    /// Commits an event row whose blobs are already durable, through the group commit.
    /// Idempotent on the event ID: the same manifest again is a duplicate, a different
    /// one a conflict.
    pub async fn insert_event(
        &self,
        device: &Device,
        manifest: &Manifest,
        signed: &SignedManifest,
    ) -> Result<Inserted> {
        if manifest.camera_id != device.camera() {
            return Err(StoreError::Invalid("manifest names another camera"));
        }
        let record = EventRecord {
            camera: device.camera().to_string(),
            event: manifest.event_id.to_string(),
            kind: manifest.kind.as_str(),
            started_at: to_ms(manifest.started_at),
            duration_ms: i64::from(manifest.duration_ms),
            epoch: i64::from(manifest.epoch),
            thumb_sha256: manifest.thumb_sha256.clone(),
            thumb_size: to_i64(manifest.thumb_size)?,
            clip_sha256: manifest.clip_sha256.clone(),
            clip_size: to_i64(manifest.clip_size)?,
            body: signed.body.clone(),
            signature: signed.signature.clone(),
        };
        self.commit.insert_event(record).await
    }

    /// One page of a camera's events, newest first.
    pub async fn list_events(
        &self,
        auth: &Authorized<View>,
        query: &EventQuery,
    ) -> Result<EventPage> {
        let limit = query.limit.unwrap_or(50).clamp(1, MAX_PAGE);
        let mut sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE camera_id = $1");
        let mut binds: Vec<Bind> = vec![Bind::Text(auth.camera().to_string())];
        if let Some(kind) = query.kind {
            binds.push(Bind::Text(kind.as_str().to_owned()));
            sql.push_str(&format!(" AND kind = ${}", binds.len()));
        }
        if let Some(since) = query.since {
            binds.push(Bind::Int(to_ms(since)));
            sql.push_str(&format!(" AND started_at >= ${}", binds.len()));
        }
        if let Some(before) = &query.before {
            let cursor = Cursor::decode(before)?;
            binds.push(Bind::Int(cursor.started_at));
            let t = binds.len();
            binds.push(Bind::Text(cursor.event.to_string()));
            let e = binds.len();
            sql.push_str(&format!(
                " AND (started_at < ${t} OR (started_at = ${t} AND id < ${e}))"
            ));
        }
        binds.push(Bind::Int(i64::from(limit) + 1));
        sql.push_str(&format!(
            " ORDER BY started_at DESC, id DESC LIMIT ${}",
            binds.len()
        ));
        let mut q = sqlx::query(&sql);
        for bind in binds {
            q = match bind {
                Bind::Text(t) => q.bind(t),
                Bind::Int(i) => q.bind(i),
            };
        }
        let mut events = q
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(event_from_row)
            .collect::<Result<Vec<_>>>()?;
        let next_cursor = if events.len() > limit as usize {
            events.truncate(limit as usize);
            events.last().map(|e| {
                Cursor {
                    started_at: to_ms(e.started_at),
                    event: e.event_id,
                }
                .encode()
            })
        } else {
            None
        };
        Ok(EventPage {
            events,
            next_cursor,
        })
    }

    pub async fn event(&self, auth: &Authorized<View>, event: EventId) -> Result<EventInfo> {
        self.fetch_event(auth.camera(), event).await
    }

    async fn fetch_event(&self, camera: CameraId, event: EventId) -> Result<EventInfo> {
        let row = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE camera_id = $1 AND id = $2"
        ))
        .bind(camera.to_string())
        .bind(event.to_string())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        event_from_row(&row)
    }

    /// Where an event's thumbnail or clip is stored and how large it is, in one query
    /// with what the media route also needs: whether this session must step up first.
    pub async fn media_location(
        &self,
        auth: &Authorized<View>,
        event: EventId,
        object: MediaObject,
    ) -> Result<MediaLocation> {
        let (hash, size) = match object {
            MediaObject::Thumb => ("e.thumb_sha256", "e.thumb_size"),
            MediaObject::Clip => ("e.clip_sha256", "e.clip_size"),
        };
        let row = sqlx::query(&format!(
            "SELECT {hash} AS hash, {size} AS size, u.require_step_up, s.step_up_at \
             FROM events e, users u JOIN sessions s ON s.user_id = u.id \
             WHERE e.camera_id = $1 AND e.id = $2 AND u.id = $3 AND s.id = $4"
        ))
        .bind(auth.camera().to_string())
        .bind(event.to_string())
        .bind(auth.user().to_string())
        .bind(auth.session().to_string())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        let hash: String = row.try_get("hash")?;
        Ok(MediaLocation {
            key: BlobKey::media(auth.camera(), event, object, &hash),
            size: rows::u64_col(&row, "size")?,
            step_up_needed: crate::sessions::step_up_needed(
                row.try_get("require_step_up")?,
                row.try_get("step_up_at")?,
            ),
        })
    }

    /// The event as just stored by this camera, for fan-out to members' streams.
    pub async fn event_for_device(&self, device: &Device, event: EventId) -> Result<EventInfo> {
        self.fetch_event(device.camera(), event).await
    }
}

enum Bind {
    Text(String),
    Int(i64),
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn cursors_round_trip(ms in any::<i64>()) {
            let c = Cursor { started_at: ms, event: EventId::new_v7() };
            prop_assert_eq!(Cursor::decode(&c.encode()).ok(), Some(c));
        }

        #[test]
        fn cursor_decoder_never_panics(s in ".{0,100}") {
            let _ = Cursor::decode(&s);
        }
    }
}
