//! Handing a camera to a new owner. The owner's client offers it with a transfer
//! statement signed by the owner's key and every epoch's content key encrypted to the
//! new owner; the new owner's client accepts with a rotation to a content key of its
//! own, signed by its own key. The server checks both signatures so a confused client
//! cannot hand a camera to the wrong key, but the camera and the members check them
//! again themselves ([`cc_core::transfer::follow`]): the server's word is not needed.

use std::collections::BTreeSet;

use cc_core::api::{Grant, RotateRequest, SealedName, TransferOffer, TransferRequest};
use cc_core::certificate::SignedCertificate;
use cc_core::transfer::SignedTransfer;
use cc_core::{CameraId, UserId};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::authz::{role_str, Authorized, Device, Own, Session};
use crate::shares::{check_grant, commit_rotation, end_membership, signing_key, CurrentEpoch};
use crate::time::{from_ms, now_ms};
use crate::{rows, Result, Store, StoreError};

fn signed_transfer(row: &AnyRow) -> Result<SignedTransfer> {
    Ok(SignedTransfer::from_parts(
        row.try_get("body")?,
        row.try_get("signature")?,
    ))
}

/// Accepted transfers of `camera`, oldest first: the chain from the first owner's key
/// to the current one.
pub(crate) async fn chain(pool: &sqlx::AnyPool, camera: CameraId) -> Result<Vec<SignedTransfer>> {
    sqlx::query(
        "SELECT body, signature FROM transfers WHERE camera_id = $1 AND accepted_at IS NOT NULL ORDER BY epoch",
    )
    .bind(camera.to_string())
    .fetch_all(pool)
    .await?
    .iter()
    .map(signed_transfer)
    .collect()
}

/// Makes `user` the owner in the membership tables, ending any earlier role's interval.
async fn make_owner(tx: &mut Transaction<'_, Any>, camera: &str, user: &str) -> Result<()> {
    let now = now_ms();
    let owner = role_str(cc_core::api::Role::Owner);
    sqlx::query("DELETE FROM members WHERE camera_id = $1 AND user_id = $2")
        .bind(camera)
        .bind(user)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE membership_history SET until_at = $1 WHERE camera_id = $2 AND user_id = $3 AND until_at IS NULL")
        .bind(now)
        .bind(camera)
        .bind(user)
        .execute(&mut **tx)
        .await?;
    sqlx::query("INSERT INTO members (camera_id, user_id, role, since) VALUES ($1, $2, $3, $4)")
        .bind(camera)
        .bind(user)
        .bind(owner)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO membership_history (camera_id, user_id, role, from_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(camera)
    .bind(user)
    .bind(owner)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Offers the camera to another account (owner only). A new offer replaces a pending
    /// one. The statement must be signed by the owner's key, name the recipient's key
    /// and the next epoch; the grants must cover every epoch so far, once each.
    pub async fn offer_transfer(
        &self,
        auth: &Authorized<Own>,
        req: &TransferRequest,
    ) -> Result<()> {
        let camera = auth.camera().to_string();
        let row = sqlx::query(
            "SELECT k.epoch, u.signing_key FROM cameras k JOIN users u ON u.id = k.owner_id WHERE k.id = $1",
        )
        .bind(&camera)
        .fetch_one(&self.pool)
        .await?;
        let epoch: i64 = row.try_get("epoch")?;
        let owner_b64: String = row.try_get("signing_key")?;
        let statement = req
            .transfer
            .verify(&signing_key(&owner_b64)?)
            .map_err(|_| StoreError::Invalid("the transfer is not signed by the camera owner"))?;
        if statement.camera_id != auth.camera()
            || statement.from_key != owner_b64
            || i64::from(statement.epoch) != epoch + 1
        {
            return Err(StoreError::Invalid(
                "the transfer must name this camera, its owner's key and the next epoch",
            ));
        }
        if statement.to_user == auth.user() {
            return Err(StoreError::Invalid("you already own this camera"));
        }
        let recipient_key: String = sqlx::query("SELECT signing_key FROM users WHERE id = $1")
            .bind(statement.to_user.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?
            .try_get("signing_key")?;
        if recipient_key != statement.to_key {
            return Err(StoreError::Invalid(
                "the transfer names a key that is not the recipient's",
            ));
        }
        let epochs: BTreeSet<i64> = req.grants.iter().map(|g| i64::from(g.epoch)).collect();
        if epochs.len() != req.grants.len() || epochs != (1..=epoch).collect() {
            return Err(StoreError::Invalid(
                "grants must cover every epoch of the camera once",
            ));
        }
        for grant in &req.grants {
            check_grant(&grant.grant)?;
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM transfers WHERE camera_id = $1 AND accepted_at IS NULL")
            .bind(&camera)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO transfers (camera_id, epoch, from_user_id, to_user_id, body, signature, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&camera)
        .bind(epoch + 1)
        .bind(auth.user().to_string())
        .bind(statement.to_user.to_string())
        .bind(&req.transfer.body)
        .bind(&req.transfer.signature)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        for grant in &req.grants {
            sqlx::query(
                "INSERT INTO transfer_grants (camera_id, transfer_epoch, epoch, grant_ct) VALUES ($1, $2, $3, $4)",
            )
            .bind(&camera)
            .bind(epoch + 1)
            .bind(i64::from(grant.epoch))
            .bind(grant.grant.clone())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Withdraws a pending offer (owner only).
    pub async fn cancel_transfer(&self, auth: &Authorized<Own>) -> Result<()> {
        let done =
            sqlx::query("DELETE FROM transfers WHERE camera_id = $1 AND accepted_at IS NULL")
                .bind(auth.camera().to_string())
                .execute(&self.pool)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Cameras offered to the caller, with what their client needs to take them over.
    pub async fn transfer_offers(&self, session: &Session) -> Result<Vec<TransferOffer>> {
        let offers = sqlx::query(
            "SELECT t.camera_id, t.epoch, t.body, t.signature, t.created_at, \
             k.certificate_body, k.certificate_sig, k.name_epoch, k.name_ct, \
             u.id AS f_id, u.email AS f_email, u.age_recipient AS f_age_recipient, u.signing_key AS f_signing_key \
             FROM transfers t JOIN cameras k ON k.id = t.camera_id AND k.epoch + 1 = t.epoch \
             JOIN users u ON u.id = k.owner_id AND u.id = t.from_user_id \
             WHERE t.to_user_id = $1 AND t.accepted_at IS NULL ORDER BY t.created_at",
        )
        .bind(session.user().to_string())
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(offers.len());
        for row in &offers {
            let camera: CameraId = rows::id(row, "camera_id")?;
            let epoch: i64 = row.try_get("epoch")?;
            out.push(TransferOffer {
                camera_id: camera,
                from: crate::shares::user_public(row, "f_")?,
                transfer: signed_transfer(row)?,
                certificate: SignedCertificate::from_parts(
                    row.try_get("certificate_body")?,
                    row.try_get("certificate_sig")?,
                ),
                name: SealedName {
                    epoch: rows::u32_col(row, "name_epoch")?,
                    ciphertext: row.try_get("name_ct")?,
                },
                grants: self.offered_grants(camera, epoch).await?,
                members: self.staying_members(camera, session.user()).await?,
                created_at: from_ms(row.try_get("created_at")?),
            });
        }
        Ok(out)
    }

    async fn offered_grants(&self, camera: CameraId, transfer_epoch: i64) -> Result<Vec<Grant>> {
        sqlx::query(
            "SELECT epoch, grant_ct FROM transfer_grants WHERE camera_id = $1 AND transfer_epoch = $2 ORDER BY epoch",
        )
        .bind(camera.to_string())
        .bind(transfer_epoch)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(Grant {
                epoch: rows::u32_col(r, "epoch")?,
                grant: r.try_get("grant_ct")?,
            })
        })
        .collect()
    }

    /// Active members other than the owner and `recipient`: who keeps access.
    async fn staying_members(
        &self,
        camera: CameraId,
        recipient: UserId,
    ) -> Result<Vec<cc_core::api::UserPublic>> {
        sqlx::query(
            "SELECT u.id, u.email, u.age_recipient, u.signing_key FROM members m JOIN users u ON u.id = m.user_id \
             WHERE m.camera_id = $1 AND m.role <> $2 AND m.user_id <> $3 \
             AND (m.expires_at IS NULL OR m.expires_at > $4) ORDER BY u.email",
        )
        .bind(camera.to_string())
        .bind(role_str(cc_core::api::Role::Owner))
        .bind(recipient.to_string())
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| crate::shares::user_public(r, ""))
        .collect()
    }

    /// Takes over a camera offered to the caller: the previous owner's membership ends,
    /// the caller becomes owner with the offered keys, and the camera moves to the next
    /// epoch under a certificate signed by the caller's key (`req` is a rotation whose
    /// grants cover the members who stay and the caller).
    pub async fn accept_transfer(
        &self,
        session: &Session,
        camera_id: CameraId,
        req: &RotateRequest,
    ) -> Result<()> {
        let camera = camera_id.to_string();
        let me = session.user().to_string();
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT t.epoch, t.from_user_id, k.epoch AS current, k.owner_id, k.device_key, u.signing_key \
             FROM transfers t JOIN cameras k ON k.id = t.camera_id JOIN users u ON u.id = t.to_user_id \
             WHERE t.camera_id = $1 AND t.to_user_id = $2 AND t.accepted_at IS NULL",
        )
        .bind(&camera)
        .bind(&me)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let transfer_epoch: i64 = row.try_get("epoch")?;
        let current = CurrentEpoch {
            epoch: row.try_get("current")?,
            device_key: row.try_get("device_key")?,
        };
        let from: String = row.try_get("from_user_id")?;
        let from_user: UserId = rows::id(&row, "from_user_id")?;
        if current.epoch + 1 != transfer_epoch || row.try_get::<String, _>("owner_id")? != from {
            return Err(StoreError::Conflict(
                "the camera changed since it was offered; ask its owner to offer it again",
            ));
        }
        let new_owner = signing_key(&row.try_get::<String, _>("signing_key")?)?;
        end_membership(&mut tx, camera_id, from_user).await?;
        make_owner(&mut tx, &camera, &me).await?;
        sqlx::query(
            "INSERT INTO grants (camera_id, user_id, epoch, grant_ct) \
             SELECT camera_id, $1, epoch, grant_ct FROM transfer_grants WHERE camera_id = $2 AND transfer_epoch = $3 \
             ON CONFLICT (camera_id, user_id, epoch) DO NOTHING",
        )
        .bind(&me)
        .bind(&camera)
        .bind(transfer_epoch)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE cameras SET owner_id = $1 WHERE id = $2")
            .bind(&me)
            .bind(&camera)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE transfers SET accepted_at = $1 WHERE camera_id = $2 AND epoch = $3")
            .bind(now_ms())
            .bind(&camera)
            .bind(transfer_epoch)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM transfer_grants WHERE camera_id = $1 AND transfer_epoch = $2")
            .bind(&camera)
            .bind(transfer_epoch)
            .execute(&mut *tx)
            .await?;
        commit_rotation(&mut tx, camera_id, &current, &new_owner, req).await?;
        tx.commit().await?;
        self.members.bump(camera_id).await;
        Ok(())
    }

    /// The ownership chain a camera follows from the owner it pinned at pairing.
    pub async fn ownership_chain(&self, device: &Device) -> Result<Vec<SignedTransfer>> {
        chain(&self.devices, device.camera()).await
    }
}
