//! The access log: every read of a camera's media, thumbnails, live view or grants, as a
//! hash chain. Each entry's hash covers the previous hash and the entry's fields, so an
//! edit or a deletion anywhere breaks every hash after it.

use cc_core::api::{AccessEntry, AccessQuery};
use cc_core::{CameraId, EventId, SessionId, UserId};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::authz::{Authorized, Manage, View};
use crate::time::{from_ms, now_ms, to_ms};
use crate::{rows, Result, Store};

/// The fields an entry's hash covers, in a fixed order.
struct Chained<'a> {
    seq: i64,
    at: i64,
    user: &'a str,
    session: &'a str,
    camera: &'a str,
    event: Option<&'a str>,
    object: &'a str,
    ip: &'a str,
}

fn chain_hash(prev: &str, e: &Chained<'_>) -> String {
    let mut h = Sha256::new();
    h.update(b"closedcircuit access log v1\0");
    h.update(prev.as_bytes());
    for field in [
        &e.seq.to_string(),
        &e.at.to_string(),
        e.user,
        e.session,
        e.camera,
        e.event.unwrap_or("-"),
        e.object,
        e.ip,
    ] {
        h.update(b"\0");
        h.update(field.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The outcome of checking the whole chain.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ChainReport {
    pub entries: u64,
    /// The first entry whose hash, link or sequence does not check out.
    pub first_broken_seq: Option<i64>,
}

/// One access by someone who was not a member of the camera at that moment.
#[derive(Debug, Serialize)]
pub struct BreachEntry {
    pub owner_email: String,
    pub entry: AccessEntry,
}

fn entry_from_row(row: &AnyRow) -> Result<AccessEntry> {
    Ok(AccessEntry {
        seq: row.try_get("seq")?,
        at: from_ms(row.try_get("at")?),
        user_id: rows::id(row, "user_id")?,
        email: row.try_get("email")?,
        session_id: rows::id(row, "session_id")?,
        camera_id: rows::id(row, "camera_id")?,
        event_id: rows::opt_id(row, "event_id")?,
        object: row.try_get("object")?,
        ip: row.try_get("ip")?,
    })
}

/// One access as the group commit appends it.
pub(crate) struct AccessRecord {
    at: i64,
    user: String,
    session: String,
    camera: String,
    event: Option<String>,
    object: String,
    ip: String,
}

#[cfg(test)]
impl AccessRecord {
    pub(crate) fn for_test(n: usize) -> Self {
        Self {
            at: i64::try_from(n).unwrap_or_default(),
            user: UserId::new_v7().to_string(),
            session: SessionId::new_v7().to_string(),
            camera: CameraId::new_v7().to_string(),
            event: None,
            object: "clip".into(),
            ip: "192.0.2.1".into(),
        }
    }
}

/// Appends `r` to the chain on `conn` (inside the group commit's transaction). The head
/// row serialises appends on every backend.
pub(crate) async fn append_in(conn: &mut AnyConnection, r: &AccessRecord) -> Result<()> {
    sqlx::query("UPDATE access_log_head SET seq = seq + 1 WHERE id = 1")
        .execute(&mut *conn)
        .await?;
    let head = sqlx::query("SELECT seq, hash FROM access_log_head WHERE id = 1")
        .fetch_one(&mut *conn)
        .await?;
    let seq: i64 = head.try_get("seq")?;
    let prev: String = head.try_get("hash")?;
    let hash = chain_hash(
        &prev,
        &Chained {
            seq,
            at: r.at,
            user: &r.user,
            session: &r.session,
            camera: &r.camera,
            event: r.event.as_deref(),
            object: &r.object,
            ip: &r.ip,
        },
    );
    sqlx::query(
        "INSERT INTO access_log (seq, at, user_id, session_id, camera_id, event_id, object, ip, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(seq)
    .bind(r.at)
    .bind(&r.user)
    .bind(&r.session)
    .bind(&r.camera)
    .bind(&r.event)
    .bind(&r.object)
    .bind(&r.ip)
    .bind(&prev)
    .bind(&hash)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE access_log_head SET hash = $1 WHERE id = 1")
        .bind(&hash)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

const ENTRY_COLUMNS: &str =
    "l.seq, l.at, l.user_id, u.email, l.session_id, l.camera_id, l.event_id, l.object, l.ip";

impl Store {
    /// Appends one read of camera data. The head row serialises appends on every backend.
    pub async fn log_access(
        &self,
        auth: &Authorized<View>,
        event: Option<EventId>,
        object: &str,
        ip: &str,
    ) -> Result<()> {
        self.append_access(
            auth.user(),
            auth.session(),
            auth.camera(),
            event,
            object,
            ip,
            now_ms(),
        )
        .await
    }

    /// Records an access that did not pass the door, as a bug or a lying cache would:
    /// only for tests that stage breach scenarios.
    #[cfg(feature = "test-support")]
    pub async fn record_access_unchecked(
        &self,
        user: UserId,
        session: SessionId,
        camera: CameraId,
        event: Option<EventId>,
        object: &str,
    ) -> Result<()> {
        self.append_access(user, session, camera, event, object, "test", now_ms())
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn append_access(
        &self,
        user: UserId,
        session: SessionId,
        camera: CameraId,
        event: Option<EventId>,
        object: &str,
        ip: &str,
        at: i64,
    ) -> Result<()> {
        let record = AccessRecord {
            at,
            user: user.to_string(),
            session: session.to_string(),
            camera: camera.to_string(),
            event: event.map(|e| e.to_string()),
            object: object.to_owned(),
            ip: ip.to_owned(),
        };
        self.commit.append_access(record).await
    }

    /// Who read what from this camera, oldest first (owner and admins).
    pub async fn access_log(
        &self,
        auth: &Authorized<Manage>,
        query: &AccessQuery,
    ) -> Result<Vec<AccessEntry>> {
        let limit = i64::from(query.limit.unwrap_or(200).clamp(1, 1000));
        sqlx::query(&format!(
            "SELECT {ENTRY_COLUMNS} FROM access_log l LEFT JOIN users u ON u.id = l.user_id \
             WHERE l.camera_id = $1 AND l.at >= $2 ORDER BY l.seq LIMIT $3"
        ))
        .bind(auth.camera().to_string())
        .bind(query.since.map_or(0, to_ms))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(entry_from_row)
        .collect()
    }

    /// Recomputes the whole chain (an operator's check, run on the server host).
    pub async fn verify_access_log(&self) -> Result<ChainReport> {
        let all = sqlx::query(
            "SELECT seq, at, user_id, session_id, camera_id, event_id, object, ip, prev_hash, hash \
             FROM access_log ORDER BY seq",
        )
        .fetch_all(&self.pool)
        .await?;
        let head = sqlx::query("SELECT seq, hash FROM access_log_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        let mut prev = String::new();
        let mut expected_seq = 1;
        for row in &all {
            let seq: i64 = row.try_get("seq")?;
            let (user, session, camera): (String, String, String) = (
                row.try_get("user_id")?,
                row.try_get("session_id")?,
                row.try_get("camera_id")?,
            );
            let event: Option<String> = row.try_get("event_id")?;
            let (object, ip): (String, String) = (row.try_get("object")?, row.try_get("ip")?);
            let computed = chain_hash(
                &prev,
                &Chained {
                    seq,
                    at: row.try_get("at")?,
                    user: &user,
                    session: &session,
                    camera: &camera,
                    event: event.as_deref(),
                    object: &object,
                    ip: &ip,
                },
            );
            let stored_prev: String = row.try_get("prev_hash")?;
            let stored: String = row.try_get("hash")?;
            if seq != expected_seq || stored_prev != prev || stored != computed {
                return Ok(ChainReport {
                    entries: all.len() as u64,
                    first_broken_seq: Some(seq.min(expected_seq)),
                });
            }
            prev = stored;
            expected_seq += 1;
        }
        let head_seq: i64 = head.try_get("seq")?;
        let head_hash: String = head.try_get("hash")?;
        let truncated = head_seq != expected_seq - 1 || head_hash != prev;
        Ok(ChainReport {
            entries: all.len() as u64,
            first_broken_seq: truncated.then_some(expected_seq),
        })
    }

    /// Every access in `[since, until)` by someone who was not a member of the camera
    /// at that moment, with the email of the camera's owner to notify.
    pub async fn breach_report(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<BreachEntry>> {
        sqlx::query(&format!(
            "SELECT {ENTRY_COLUMNS}, COALESCE(o.email, '(camera removed)') AS owner_email \
             FROM access_log l LEFT JOIN users u ON u.id = l.user_id \
             LEFT JOIN (SELECT camera_id, MIN(user_id) AS owner_id FROM membership_history \
                        WHERE role = 'owner' GROUP BY camera_id) h ON h.camera_id = l.camera_id \
             LEFT JOIN users o ON o.id = h.owner_id \
             WHERE l.at >= $1 AND l.at < $2 AND NOT EXISTS ( \
                 SELECT 1 FROM membership_history m WHERE m.camera_id = l.camera_id AND m.user_id = l.user_id \
                 AND m.from_at <= l.at AND (m.until_at IS NULL OR m.until_at > l.at)) \
             ORDER BY owner_email, l.seq"
        ))
        .bind(to_ms(since))
        .bind(to_ms(until))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(BreachEntry {
                owner_email: row.try_get("owner_email")?,
                entry: entry_from_row(row)?,
            })
        })
        .collect()
    }
}
