//! The one door (DESIGN I3). A [`Session`] is minted only by [`authenticate`], an
//! [`Authorized`] proof only by [`check`] (or [`visible_cameras`]), and a [`Device`]
//! only by [`authenticate_device`]. Every function that reads or changes a camera's data
//! takes one of these, so a handler cannot reach camera data without passing here.

use std::marker::PhantomData;

use cc_core::api::Role;
use cc_core::{CameraId, SessionId, UserId};
use rand::RngCore;
use sqlx::Row;

use crate::accounts::token_hash;
use crate::cache::MemberKey;
use crate::time::now_ms;
use crate::{rows, Result, Store, StoreError};

pub(crate) const USER_TOKEN_PREFIX: &str = "ccu_";
pub(crate) const DEVICE_TOKEN_PREFIX: &str = "ccd_";

/// A 256-bit random bearer token with a prefix naming its kind.
pub(crate) fn new_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// A logged-in user, proven by a live session token.
#[derive(Clone, Debug)]
pub struct Session {
    id: SessionId,
    user: UserId,
}

impl Session {
    pub fn id(&self) -> SessionId {
        self.id
    }
    pub fn user(&self) -> UserId {
        self.user
    }
}

/// Resolves a bearer token to a session that is neither expired nor revoked.
pub async fn authenticate(store: &Store, token: &str) -> Result<Session> {
    if !token.starts_with(USER_TOKEN_PREFIX) || token.len() > 128 {
        return Err(StoreError::Unauthenticated);
    }
    let now = now_ms();
    let row = sqlx::query(
        "SELECT id, user_id, last_seen_at FROM sessions \
         WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2",
    )
    .bind(token_hash(token))
    .bind(now)
    .fetch_optional(&store.pool)
    .await?
    .ok_or(StoreError::Unauthenticated)?;
    let session = Session {
        id: rows::id(&row, "id")?,
        user: rows::id(&row, "user_id")?,
    };
    // Refresh "last seen" at most once a minute, not on every request.
    let last_seen: i64 = row.try_get("last_seen_at")?;
    if now - last_seen > 60_000 {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2")
            .bind(now)
            .bind(session.id.to_string())
            .execute(&store.pool)
            .await?;
    }
    Ok(session)
}

/// Ends this session ("log out").
pub async fn revoke(store: &Store, session: &Session) -> Result<()> {
    sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now_ms())
        .bind(session.id.to_string())
        .execute(&store.pool)
        .await?;
    Ok(())
}

/// Ends every session of the user ("log out everywhere").
pub async fn revoke_all(store: &Store, session: &Session) -> Result<()> {
    sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
        .bind(now_ms())
        .bind(session.user.to_string())
        .execute(&store.pool)
        .await?;
    Ok(())
}

mod sealed {
    pub trait Sealed {}
}

/// What a caller wants to do with a camera. Sealed: the set of actions is fixed here.
pub trait Action: sealed::Sealed {
    fn permits(role: Role) -> bool;
}

/// See the camera, its events, media and the caller's own grants.
pub enum View {}
/// Rename the camera (owner or admin).
pub enum Manage {}
/// Remove the camera (owner only).
pub enum Own {}

impl sealed::Sealed for View {}
impl sealed::Sealed for Manage {}
impl sealed::Sealed for Own {}
impl Action for View {
    fn permits(_: Role) -> bool {
        true
    }
}
impl Action for Manage {
    fn permits(role: Role) -> bool {
        matches!(role, Role::Owner | Role::Admin)
    }
}
impl Action for Own {
    fn permits(role: Role) -> bool {
        role == Role::Owner
    }
}

/// Proof that `user` (in `session`) may perform `A` on `camera`, checked just now.
/// It has no public constructor and is neither `Clone` nor serialisable.
#[derive(Debug)]
pub struct Authorized<A> {
    session: SessionId,
    user: UserId,
    camera: CameraId,
    role: Role,
    action: PhantomData<fn() -> A>,
}

impl<A> Authorized<A> {
    pub fn camera(&self) -> CameraId {
        self.camera
    }
    pub fn user(&self) -> UserId {
        self.user
    }
    pub fn session(&self) -> SessionId {
        self.session
    }
    pub fn role(&self) -> Role {
        self.role
    }
}

pub(crate) fn role_str(role: Role) -> &'static str {
    match role {
        Role::Owner => "owner",
        Role::Admin => "admin",
        Role::Viewer => "viewer",
    }
}

pub(crate) fn parse_role(text: &str) -> Result<Role> {
    match text {
        "owner" => Ok(Role::Owner),
        "admin" => Ok(Role::Admin),
        "viewer" => Ok(Role::Viewer),
        other => Err(StoreError::Corrupt(format!("unknown role {other:?}"))),
    }
}

/// The door: may this session's user do `A` to `camera`? Not a member → `NotFound`
/// (the same answer as a camera that does not exist); a member whose role is too
/// weak → `Forbidden`.
pub async fn check<A: Action>(
    store: &Store,
    session: &Session,
    camera: CameraId,
) -> Result<Authorized<A>> {
    let key = MemberKey {
        user: session.user,
        camera,
    };
    let role = store
        .members
        .role(key, || load_membership(store, key))
        .await?
        .ok_or(StoreError::NotFound)?;
    if !A::permits(role) {
        return Err(StoreError::Forbidden);
    }
    Ok(Authorized {
        session: session.id,
        user: session.user,
        camera,
        role,
        action: PhantomData,
    })
}

/// The truth behind the cache: the member's role and when the membership ends.
async fn load_membership(store: &Store, key: MemberKey) -> Result<(Option<Role>, Option<i64>)> {
    let row = sqlx::query(
        "SELECT role, expires_at FROM members WHERE camera_id = $1 AND user_id = $2 \
         AND (expires_at IS NULL OR expires_at > $3)",
    )
    .bind(key.camera.to_string())
    .bind(key.user.to_string())
    .bind(now_ms())
    .fetch_optional(&store.pool)
    .await?;
    match row {
        None => Ok((None, None)),
        Some(row) => Ok((
            Some(parse_role(&row.try_get::<String, _>("role")?)?),
            row.try_get("expires_at")?,
        )),
    }
}

/// View proofs for every camera the user is a member of, for listings.
pub async fn visible_cameras(store: &Store, session: &Session) -> Result<Vec<Authorized<View>>> {
    sqlx::query(
        "SELECT camera_id, role FROM members WHERE user_id = $1 \
         AND (expires_at IS NULL OR expires_at > $2) ORDER BY camera_id",
    )
    .bind(session.user.to_string())
    .bind(now_ms())
    .fetch_all(&store.pool)
    .await?
    .iter()
    .map(|row| {
        Ok(Authorized {
            session: session.id,
            user: session.user,
            camera: rows::id(row, "camera_id")?,
            role: parse_role(&row.try_get::<String, _>("role")?)?,
            action: PhantomData,
        })
    })
    .collect()
}

/// A paired camera, proven by its device token.
#[derive(Clone, Debug)]
pub struct Device {
    camera: CameraId,
    device_key: String,
    epoch: u32,
}

impl Device {
    pub fn camera(&self) -> CameraId {
        self.camera
    }
    /// The Ed25519 key (base64) from the owner-signed certificate.
    pub fn device_key(&self) -> &str {
        &self.device_key
    }
    /// The content-key epoch the camera must encrypt to.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }
}

pub async fn authenticate_device(store: &Store, token: &str) -> Result<Device> {
    if !token.starts_with(DEVICE_TOKEN_PREFIX) || token.len() > 128 {
        return Err(StoreError::Unauthenticated);
    }
    let row = sqlx::query("SELECT id, device_key, epoch FROM cameras WHERE device_token_hash = $1")
        .bind(token_hash(token))
        .fetch_optional(&store.devices)
        .await?
        .ok_or(StoreError::Unauthenticated)?;
    Ok(Device {
        camera: rows::id(&row, "id")?,
        device_key: row.try_get("device_key")?,
        epoch: rows::u32_col(&row, "epoch")?,
    })
}

impl Store {
    /// Re-reads a device's record (after a rotation changed its epoch, or a removal
    /// ended it).
    pub async fn device_again(&self, device: &Device) -> Result<Device> {
        let row = sqlx::query(
            "SELECT device_key, epoch FROM cameras WHERE id = $1 AND device_token_hash IS NOT NULL",
        )
        .bind(device.camera.to_string())
        .fetch_optional(&self.devices)
        .await?
        .ok_or(StoreError::Unauthenticated)?;
        Ok(Device {
            camera: device.camera,
            device_key: row.try_get("device_key")?,
            epoch: rows::u32_col(&row, "epoch")?,
        })
    }
}
