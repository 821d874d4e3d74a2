//! Sharing a camera and rotating its content key. Grants are written by clients (the
//! server never holds a content key); the server checks who may write them, that they
//! are age files, and that a rotation covers exactly the remaining members.

use std::collections::BTreeSet;

use cc_core::api::{
    Invitation, InviteRequest, MemberGrant, Role, RotateRequest, ShareInfo, ShareStatus, UserPublic,
};
use cc_core::certificate::SignedCertificate;
use cc_core::envelope::looks_like_age;
use cc_core::keys::verifying_key_from_bytes;
use cc_core::{CameraId, UserId};
use ed25519_dalek::VerifyingKey;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::authz::{parse_role, role_str, Authorized, Device, Manage, Own, Session, View};
use crate::time::{from_ms, now_ms, to_ms};
use crate::{rows, Result, Store, StoreError};

pub(crate) fn user_public(row: &AnyRow, prefix: &str) -> Result<UserPublic> {
    Ok(UserPublic {
        user_id: rows::id(row, &format!("{prefix}id"))?,
        email: row.try_get(format!("{prefix}email").as_str())?,
        age_recipient: row.try_get(format!("{prefix}age_recipient").as_str())?,
        signing_key: row.try_get(format!("{prefix}signing_key").as_str())?,
    })
}

pub(crate) fn check_grant(bytes: &[u8]) -> Result<()> {
    if bytes.len() > 4096 || !looks_like_age(bytes) {
        return Err(StoreError::Invalid("a grant must be a small age file"));
    }
    Ok(())
}

/// Ends a membership inside a transaction: the row, the grants, the invitation, and the
/// history interval; flags the camera for key rotation.
pub(crate) async fn end_membership(
    tx: &mut Transaction<'_, Any>,
    camera: CameraId,
    user: UserId,
) -> Result<()> {
    let (camera, user) = (camera.to_string(), user.to_string());
    for sql in [
        "DELETE FROM members WHERE camera_id = $1 AND user_id = $2",
        "DELETE FROM grants WHERE camera_id = $1 AND user_id = $2",
        "DELETE FROM shares WHERE camera_id = $1 AND invitee_id = $2",
    ] {
        sqlx::query(sql)
            .bind(&camera)
            .bind(&user)
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query("UPDATE membership_history SET until_at = $1 WHERE camera_id = $2 AND user_id = $3 AND until_at IS NULL")
        .bind(now_ms())
        .bind(&camera)
        .bind(&user)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE cameras SET rotation_needed = 1 WHERE id = $1")
        .bind(&camera)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    /// Public keys of the account with this email, so a client can invite it.
    pub async fn lookup_user(&self, _caller: &Session, email: &str) -> Result<UserPublic> {
        let email = crate::accounts::normalize_email(email).map_err(|_| StoreError::NotFound)?;
        let row =
            sqlx::query("SELECT id, email, age_recipient, signing_key FROM users WHERE email = $1")
                .bind(email)
                .fetch_optional(&self.pool)
                .await?
                .ok_or(StoreError::NotFound)?;
        user_public(&row, "")
    }

    pub async fn invite(&self, auth: &Authorized<Manage>, req: &InviteRequest) -> Result<()> {
        if req.role == Role::Owner {
            return Err(StoreError::Invalid(
                "a camera has one owner; transfer it instead",
            ));
        }
        if req.user_id == auth.user() {
            return Err(StoreError::Invalid("you cannot invite yourself"));
        }
        let now = now_ms();
        let expires = req.expires_at.map(to_ms);
        if expires.is_some_and(|e| e <= now) {
            return Err(StoreError::Invalid("expires_at is in the past"));
        }
        let camera = auth.camera().to_string();
        let current: i64 = sqlx::query("SELECT epoch FROM cameras WHERE id = $1")
            .bind(&camera)
            .fetch_one(&self.pool)
            .await?
            .try_get("epoch")?;
        let epochs: BTreeSet<i64> = req.grants.iter().map(|g| i64::from(g.epoch)).collect();
        if !epochs.contains(&current)
            || epochs.len() != req.grants.len()
            || epochs.iter().any(|e| *e < 1 || *e > current)
        {
            return Err(StoreError::Invalid(
                "grants must cover the current epoch once, and no future epoch",
            ));
        }
        for grant in &req.grants {
            check_grant(&grant.grant)?;
        }
        let mut tx = self.pool.begin().await?;
        let exists =
            sqlx::query("SELECT 1 AS one FROM members WHERE camera_id = $1 AND user_id = $2")
                .bind(&camera)
                .bind(req.user_id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_some() {
            return Err(StoreError::Conflict("this person is already a member"));
        }
        let inserted = sqlx::query(
            "INSERT INTO shares (camera_id, inviter_id, invitee_id, role, history, created_at, expires_at) \
             SELECT $1, $2, id, $3, $4, $5, $6 FROM users WHERE id = $7 \
             ON CONFLICT (camera_id, invitee_id) DO NOTHING",
        )
        .bind(&camera)
        .bind(auth.user().to_string())
        .bind(role_str(req.role))
        .bind(i64::from(epochs.len() > 1))
        .bind(now)
        .bind(expires)
        .bind(req.user_id.to_string())
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Conflict(
                "this person is already invited, or does not exist",
            ));
        }
        for grant in &req.grants {
            sqlx::query(
                "INSERT INTO grants (camera_id, user_id, epoch, grant_ct) VALUES ($1, $2, $3, $4)",
            )
            .bind(&camera)
            .bind(req.user_id.to_string())
            .bind(i64::from(grant.epoch))
            .bind(grant.grant.clone())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Members and pending invitations of a camera.
    pub async fn shares(&self, auth: &Authorized<View>) -> Result<Vec<ShareInfo>> {
        let now = now_ms();
        let members = sqlx::query(
            "SELECT u.id, u.email, u.age_recipient, u.signing_key, m.role, m.since, m.expires_at \
             FROM members m JOIN users u ON u.id = m.user_id \
             WHERE m.camera_id = $1 AND (m.expires_at IS NULL OR m.expires_at > $2) ORDER BY m.since",
        )
        .bind(auth.camera().to_string())
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let pending = sqlx::query(
            "SELECT u.id, u.email, u.age_recipient, u.signing_key, s.role, s.created_at AS since, s.expires_at \
             FROM shares s JOIN users u ON u.id = s.invitee_id \
             WHERE s.camera_id = $1 AND s.accepted_at IS NULL AND (s.expires_at IS NULL OR s.expires_at > $2) \
             ORDER BY s.created_at",
        )
        .bind(auth.camera().to_string())
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let tagged = members
            .iter()
            .map(|r| (r, ShareStatus::Active))
            .chain(pending.iter().map(|r| (r, ShareStatus::Pending)));
        tagged
            .map(|(row, status)| {
                let expires: Option<i64> = row.try_get("expires_at")?;
                Ok(ShareInfo {
                    camera_id: auth.camera(),
                    user: user_public(row, "")?,
                    role: parse_role(&row.try_get::<String, _>("role")?)?,
                    status,
                    since: from_ms(row.try_get("since")?),
                    expires_at: expires.map(from_ms),
                })
            })
            .collect()
    }

    /// Invitations addressed to the caller that are still open.
    pub async fn invitations(&self, session: &Session) -> Result<Vec<Invitation>> {
        sqlx::query(
            "SELECT s.camera_id, s.role, s.created_at, s.expires_at, \
             i.id AS i_id, i.email AS i_email, i.age_recipient AS i_age_recipient, i.signing_key AS i_signing_key, \
             o.id AS o_id, o.email AS o_email, o.age_recipient AS o_age_recipient, o.signing_key AS o_signing_key \
             FROM shares s JOIN users i ON i.id = s.inviter_id JOIN cameras k ON k.id = s.camera_id \
             JOIN users o ON o.id = k.owner_id \
             WHERE s.invitee_id = $1 AND s.accepted_at IS NULL AND (s.expires_at IS NULL OR s.expires_at > $2) \
             ORDER BY s.created_at",
        )
        .bind(session.user().to_string())
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            let expires: Option<i64> = row.try_get("expires_at")?;
            Ok(Invitation {
                camera_id: rows::id(row, "camera_id")?,
                inviter: user_public(row, "i_")?,
                owner: user_public(row, "o_")?,
                role: parse_role(&row.try_get::<String, _>("role")?)?,
                created_at: from_ms(row.try_get("created_at")?),
                expires_at: expires.map(from_ms),
            })
        })
        .collect()
    }

    /// Accepts an invitation: the caller becomes a member with the offered role.
    pub async fn accept_invitation(&self, session: &Session, camera: CameraId) -> Result<()> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT role, expires_at FROM shares WHERE camera_id = $1 AND invitee_id = $2 \
             AND accepted_at IS NULL AND (expires_at IS NULL OR expires_at > $3)",
        )
        .bind(camera.to_string())
        .bind(session.user().to_string())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let role: String = row.try_get("role")?;
        let expires: Option<i64> = row.try_get("expires_at")?;
        sqlx::query("UPDATE shares SET accepted_at = $1 WHERE camera_id = $2 AND invitee_id = $3")
            .bind(now)
            .bind(camera.to_string())
            .bind(session.user().to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO members (camera_id, user_id, role, since, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(camera.to_string())
            .bind(session.user().to_string())
            .bind(&role)
            .bind(now)
            .bind(expires)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO membership_history (camera_id, user_id, role, from_at, until_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(camera.to_string())
        .bind(session.user().to_string())
        .bind(&role)
        .bind(now)
        .bind(expires)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.members.bump(camera).await;
        Ok(())
    }

    /// Removes a member or withdraws an invitation. The owner cannot be removed; the
    /// camera is flagged for key rotation.
    pub async fn revoke_member(&self, auth: &Authorized<Manage>, user: UserId) -> Result<()> {
        let camera = auth.camera().to_string();
        let mut tx = self.pool.begin().await?;
        let member = sqlx::query("SELECT role FROM members WHERE camera_id = $1 AND user_id = $2")
            .bind(&camera)
            .bind(user.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        let invited =
            sqlx::query("SELECT 1 AS one FROM shares WHERE camera_id = $1 AND invitee_id = $2")
                .bind(&camera)
                .bind(user.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        match member {
            Some(row) if parse_role(&row.try_get::<String, _>("role")?)? == Role::Owner => {
                return Err(StoreError::Invalid(
                    "the owner cannot be removed; transfer or remove the camera",
                ))
            }
            None if invited.is_none() => return Err(StoreError::NotFound),
            _ => {}
        }
        end_membership(&mut tx, auth.camera(), user).await?;
        tx.commit().await?;
        self.members.bump(auth.camera()).await;
        Ok(())
    }

    /// Ends guest shares whose time is up (access already ended: the door checks expiry).
    pub async fn sweep_expired_members(&self) -> Result<usize> {
        let expired = sqlx::query("SELECT camera_id, user_id FROM members WHERE expires_at IS NOT NULL AND expires_at <= $1")
            .bind(now_ms())
            .fetch_all(&self.pool)
            .await?;
        for row in &expired {
            let mut tx = self.pool.begin().await?;
            let camera = rows::id(row, "camera_id")?;
            end_membership(&mut tx, camera, rows::id(row, "user_id")?).await?;
            tx.commit().await?;
            self.members.bump(camera).await;
        }
        Ok(expired.len())
    }

    /// Every certificate of the camera, one per epoch, oldest first.
    pub async fn certificates(&self, auth: &Authorized<View>) -> Result<Vec<SignedCertificate>> {
        sqlx::query("SELECT body, signature FROM certificates WHERE camera_id = $1 ORDER BY epoch")
            .bind(auth.camera().to_string())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(SignedCertificate::from_parts(
                    r.try_get("body")?,
                    r.try_get("signature")?,
                ))
            })
            .collect()
    }

    /// The certificate a camera must encrypt under now.
    pub async fn current_certificate(&self, device: &Device) -> Result<SignedCertificate> {
        let row =
            sqlx::query("SELECT certificate_body, certificate_sig FROM cameras WHERE id = $1")
                .bind(device.camera().to_string())
                .fetch_one(&self.devices)
                .await?;
        Ok(SignedCertificate::from_parts(
            row.try_get("certificate_body")?,
            row.try_get("certificate_sig")?,
        ))
    }

    /// Moves the camera to the next content-key epoch.
    pub async fn rotate(&self, auth: &Authorized<Own>, req: &RotateRequest) -> Result<()> {
        let row = sqlx::query(
            "SELECT k.epoch, k.device_key, u.signing_key FROM cameras k JOIN users u ON u.id = k.owner_id WHERE k.id = $1",
        )
        .bind(auth.camera().to_string())
        .fetch_one(&self.pool)
        .await?;
        let owner = signing_key(&row.try_get::<String, _>("signing_key")?)?;
        let current = CurrentEpoch {
            epoch: row.try_get("epoch")?,
            device_key: row.try_get("device_key")?,
        };
        let mut tx = self.pool.begin().await?;
        commit_rotation(&mut tx, auth.camera(), &current, &owner, req).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A camera's epoch and device key as they were when a rotation was prepared.
pub(crate) struct CurrentEpoch {
    pub epoch: i64,
    pub device_key: String,
}

/// An account's Ed25519 key as stored (base64).
pub(crate) fn signing_key(b64: &str) -> Result<VerifyingKey> {
    cc_core::b64::decode(b64)
        .ok()
        .and_then(|b| verifying_key_from_bytes(&b))
        .ok_or_else(|| StoreError::Corrupt("signing key".into()))
}

/// Moves `camera` from `current` to the next epoch inside `tx`: the certificate must be
/// signed by `owner` and name this camera, its device key and the next epoch; the grants
/// must cover exactly the members at commit time. Pending invitations end, because they
/// hold only old keys.
pub(crate) async fn commit_rotation(
    tx: &mut Transaction<'_, Any>,
    camera_id: CameraId,
    current: &CurrentEpoch,
    owner: &VerifyingKey,
    req: &RotateRequest,
) -> Result<()> {
    let epoch = current.epoch;
    let cert = req
        .certificate
        .verify_owner(owner)
        .map_err(|_| StoreError::Invalid("the certificate is not signed by the camera owner"))?;
    if cert.camera_id != camera_id
        || i64::from(cert.epoch) != epoch + 1
        || cert.device_key != current.device_key
    {
        return Err(StoreError::Invalid(
            "the certificate must name this camera, its device key and the next epoch",
        ));
    }
    if i64::from(req.name.epoch) != epoch + 1 {
        return Err(StoreError::Invalid(
            "the name must be sealed to the new epoch",
        ));
    }
    check_grant(&req.name.ciphertext)?;
    let camera = camera_id.to_string();
    // Members whose guest share has ended are not given the new key.
    let members: BTreeSet<String> = sqlx::query(
        "SELECT user_id FROM members WHERE camera_id = $1 AND (expires_at IS NULL OR expires_at > $2)",
    )
    .bind(&camera)
    .bind(now_ms())
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(|r| r.try_get::<String, _>("user_id"))
    .collect::<Result<_, _>>()?;
    let granted: BTreeSet<String> = req.grants.iter().map(|g| g.user_id.to_string()).collect();
    if members != granted || granted.len() != req.grants.len() {
        return Err(StoreError::Conflict(
            "grants must cover exactly the current members",
        ));
    }
    for MemberGrant { user_id, grant } in &req.grants {
        check_grant(grant)?;
        sqlx::query(
            "INSERT INTO grants (camera_id, user_id, epoch, grant_ct) VALUES ($1, $2, $3, $4)",
        )
        .bind(&camera)
        .bind(user_id.to_string())
        .bind(epoch + 1)
        .bind(grant.clone())
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query(
        "DELETE FROM grants WHERE camera_id = $1 AND user_id IN \
         (SELECT invitee_id FROM shares WHERE camera_id = $1 AND accepted_at IS NULL)",
    )
    .bind(&camera)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM shares WHERE camera_id = $1 AND accepted_at IS NULL")
        .bind(&camera)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO certificates (camera_id, epoch, body, signature) VALUES ($1, $2, $3, $4)",
    )
    .bind(&camera)
    .bind(epoch + 1)
    .bind(&req.certificate.body)
    .bind(&req.certificate.signature)
    .execute(&mut **tx)
    .await?;
    let updated = sqlx::query(
        "UPDATE cameras SET epoch = $1, certificate_body = $2, certificate_sig = $3, rotation_needed = 0, \
         name_epoch = $1, name_ct = $4 WHERE id = $5 AND epoch = $6",
    )
    .bind(epoch + 1)
    .bind(&req.certificate.body)
    .bind(&req.certificate.signature)
    .bind(req.name.ciphertext.clone())
    .bind(&camera)
    .bind(epoch)
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::Conflict("the camera was rotated concurrently"));
    }
    Ok(())
}
