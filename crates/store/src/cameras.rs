//! Claims, pairing and cameras. The server stores what the owner's client signed and
//! encrypted; it checks shapes and signatures but cannot make or read any of it.

use cc_core::api::{
    CameraInfo, Claim, CompleteClaimRequest, Grant, PairingRequest, PairingResult, SealedName,
};
use cc_core::certificate::SignedCertificate;
use cc_core::envelope::looks_like_age;
use cc_core::keys::verifying_key_from_bytes;
use cc_core::{CameraId, ClaimId, PairingId};
use chrono::Duration;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::accounts::token_hash;
use crate::authz::{self, Authorized, Manage, Own, Session, View};
use crate::blobs::BlobKey;
use crate::time::{from_ms, now_ms};
use crate::{rows, Result, Store, StoreError};

/// How long a claim code can be presented by a camera.
pub const CLAIM_TTL: Duration = Duration::minutes(15);
/// A camera seen this recently counts as online.
const ONLINE_WINDOW_MS: i64 = 120_000;
const MAX_SEALED_LEN: usize = 4096;

/// What a camera learns when it polls its pairing.
pub enum PairingPoll {
    Pending,
    Ready(PairingResult),
}

fn claim_from_row(row: &AnyRow) -> Result<Claim> {
    let pairing = match (
        row.try_get::<Option<String>, _>("device_key")?,
        row.try_get::<Option<Vec<u8>>, _>("mac")?,
    ) {
        (Some(device_key), Some(mac)) => Some(PairingRequest {
            secret_hash: row.try_get("secret_hash")?,
            device_key,
            mac,
        }),
        _ => None,
    };
    Ok(Claim {
        claim_id: rows::id(row, "id")?,
        expires_at: from_ms(row.try_get("expires_at")?),
        pairing,
    })
}

fn valid_secret_hash(hash: &str) -> bool {
    hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())
}

fn check_sealed(bytes: &[u8]) -> Result<()> {
    if bytes.len() > MAX_SEALED_LEN || !looks_like_age(bytes) {
        return Err(StoreError::Invalid("expected a small age-encrypted value"));
    }
    Ok(())
}

impl Store {
    pub async fn create_claim(&self, session: &Session, secret_hash: &str) -> Result<Claim> {
        if !valid_secret_hash(secret_hash) {
            return Err(StoreError::Invalid("secret_hash must be 64 hex characters"));
        }
        let id = ClaimId::new_v7();
        let expires = now_ms() + CLAIM_TTL.num_milliseconds();
        let done = sqlx::query(
            "INSERT INTO claims (id, owner_id, secret_hash, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (secret_hash) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(session.user().to_string())
        .bind(secret_hash.to_ascii_lowercase())
        .bind(expires)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(
                "this claim code is already registered",
            ));
        }
        Ok(Claim {
            claim_id: id,
            expires_at: from_ms(expires),
            pairing: None,
        })
    }

    /// The user's claims that are neither expired nor completed.
    pub async fn open_claims(&self, session: &Session) -> Result<Vec<Claim>> {
        sqlx::query(
            "SELECT id, secret_hash, expires_at, device_key, mac FROM claims \
             WHERE owner_id = $1 AND camera_id IS NULL AND expires_at > $2 ORDER BY id",
        )
        .bind(session.user().to_string())
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(claim_from_row)
        .collect()
    }

    pub async fn delete_claim(&self, session: &Session, claim: ClaimId) -> Result<()> {
        let done =
            sqlx::query("DELETE FROM claims WHERE id = $1 AND owner_id = $2 AND camera_id IS NULL")
                .bind(claim.to_string())
                .bind(session.user().to_string())
                .execute(&self.pool)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// A camera presents a claim code: records its device key and MAC for the owner
    /// to check. A code can be presented once.
    pub async fn present_pairing(&self, req: &PairingRequest) -> Result<PairingId> {
        if !valid_secret_hash(&req.secret_hash) || req.mac.len() != 32 {
            return Err(StoreError::Invalid("malformed pairing request"));
        }
        let key_ok = cc_core::b64::decode(&req.device_key)
            .ok()
            .and_then(|b| verifying_key_from_bytes(&b))
            .is_some();
        if !key_ok {
            return Err(StoreError::Invalid(
                "device_key is not an Ed25519 public key",
            ));
        }
        let pairing = PairingId::new_random();
        let done = sqlx::query(
            "UPDATE claims SET pairing_id = $1, device_key = $2, mac = $3 \
             WHERE secret_hash = $4 AND expires_at > $5 AND pairing_id IS NULL",
        )
        .bind(pairing.to_string())
        .bind(&req.device_key)
        .bind(req.mac.clone())
        .bind(req.secret_hash.to_ascii_lowercase())
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(pairing)
    }

    /// The owner's client completes pairing with a certificate it signed, its own grant
    /// and the sealed camera name.
    pub async fn complete_claim(
        &self,
        session: &Session,
        claim: ClaimId,
        req: &CompleteClaimRequest,
    ) -> Result<CameraInfo> {
        let row = sqlx::query(
            "SELECT c.device_key, u.signing_key FROM claims c JOIN users u ON u.id = c.owner_id \
             WHERE c.id = $1 AND c.owner_id = $2 AND c.camera_id IS NULL AND c.expires_at > $3",
        )
        .bind(claim.to_string())
        .bind(session.user().to_string())
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        let device_key: Option<String> = row.try_get("device_key")?;
        let device_key = device_key.ok_or(StoreError::Conflict(
            "no camera has presented this claim yet",
        ))?;
        let owner_key: String = row.try_get("signing_key")?;
        let owner = cc_core::b64::decode(&owner_key)
            .ok()
            .and_then(|b| verifying_key_from_bytes(&b))
            .ok_or_else(|| StoreError::Corrupt("owner signing key".into()))?;
        let cert = req
            .certificate
            .verify_owner(&owner)
            .map_err(|_| StoreError::Invalid("certificate is not signed by the account's key"))?;
        if cert.device_key != device_key || cert.epoch != 1 || req.name.epoch != 1 {
            return Err(StoreError::Invalid(
                "certificate does not match the presented camera",
            ));
        }
        check_sealed(&req.grant)?;
        check_sealed(&req.name.ciphertext)?;
        let camera = cert.camera_id;
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO cameras (id, owner_id, epoch, name_epoch, name_ct, certificate_body, \
             certificate_sig, device_key, paired_at) VALUES ($1, $2, 1, 1, $3, $4, $5, $6, $7) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(camera.to_string())
        .bind(session.user().to_string())
        .bind(req.name.ciphertext.clone())
        .bind(&req.certificate.body)
        .bind(&req.certificate.signature)
        .bind(&device_key)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Conflict("camera ID already in use"));
        }
        sqlx::query(
            "INSERT INTO members (camera_id, user_id, role, since) VALUES ($1, $2, 'owner', $3)",
        )
        .bind(camera.to_string())
        .bind(session.user().to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO grants (camera_id, user_id, epoch, grant_ct) VALUES ($1, $2, 1, $3)",
        )
        .bind(camera.to_string())
        .bind(session.user().to_string())
        .bind(req.grant.clone())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO certificates (camera_id, epoch, body, signature) VALUES ($1, 1, $2, $3)",
        )
        .bind(camera.to_string())
        .bind(&req.certificate.body)
        .bind(&req.certificate.signature)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO membership_history (camera_id, user_id, role, from_at) VALUES ($1, $2, 'owner', $3)",
        )
        .bind(camera.to_string())
        .bind(session.user().to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE claims SET camera_id = $1 WHERE id = $2")
            .bind(camera.to_string())
            .bind(claim.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.members.bump(camera).await;
        let auth = authz::check::<View>(self, session, camera).await?;
        self.camera_info(&auth).await
    }

    /// A camera polls its pairing; once completed, the device token is issued exactly once.
    pub async fn poll_pairing(&self, pairing: PairingId) -> Result<PairingPoll> {
        let row = sqlx::query(
            "SELECT c.id AS claim_id, c.camera_id, c.token_issued, c.expires_at, \
             k.certificate_body, k.certificate_sig \
             FROM claims c LEFT JOIN cameras k ON k.id = c.camera_id WHERE c.pairing_id = $1",
        )
        .bind(pairing.to_string())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        let camera: Option<CameraId> = rows::opt_id(&row, "camera_id")?;
        let issued: i64 = row.try_get("token_issued")?;
        let expires: i64 = row.try_get("expires_at")?;
        let Some(camera) = camera else {
            return if expires > now_ms() {
                Ok(PairingPoll::Pending)
            } else {
                Err(StoreError::NotFound)
            };
        };
        if issued != 0 {
            return Err(StoreError::NotFound);
        }
        let certificate = SignedCertificate::from_parts(
            row.try_get::<Option<String>, _>("certificate_body")?
                .unwrap_or_default(),
            row.try_get::<Option<String>, _>("certificate_sig")?
                .unwrap_or_default(),
        );
        let claim_id: String = row.try_get("claim_id")?;
        let token = authz::new_token(authz::DEVICE_TOKEN_PREFIX);
        let mut tx = self.pool.begin().await?;
        let claimed =
            sqlx::query("UPDATE claims SET token_issued = 1 WHERE id = $1 AND token_issued = 0")
                .bind(claim_id)
                .execute(&mut *tx)
                .await?;
        if claimed.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("UPDATE cameras SET device_token_hash = $1, last_seen_at = $2 WHERE id = $3")
            .bind(token_hash(&token))
            .bind(now_ms())
            .bind(camera.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(PairingPoll::Ready(PairingResult {
            camera_id: camera,
            certificate,
            device_token: token,
        }))
    }

    pub async fn camera_info(&self, auth: &Authorized<View>) -> Result<CameraInfo> {
        let row = sqlx::query(
            "SELECT k.id, k.epoch, k.name_epoch, k.name_ct, k.certificate_body, k.certificate_sig, \
             k.paired_at, k.last_seen_at, k.last_event_at, k.rotation_needed, u.signing_key \
             FROM cameras k JOIN users u ON u.id = k.owner_id WHERE k.id = $1",
        )
        .bind(auth.camera().to_string())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        let last_seen = row
            .try_get::<Option<i64>, _>("last_seen_at")?
            .max(self.presence.last_seen(auth.camera()));
        let last_event: Option<i64> = row.try_get("last_event_at")?;
        Ok(CameraInfo {
            camera_id: rows::id(&row, "id")?,
            name: SealedName {
                epoch: rows::u32_col(&row, "name_epoch")?,
                ciphertext: row.try_get("name_ct")?,
            },
            role: auth.role(),
            epoch: rows::u32_col(&row, "epoch")?,
            certificate: SignedCertificate::from_parts(
                row.try_get("certificate_body")?,
                row.try_get("certificate_sig")?,
            ),
            owner_signing_key: row.try_get("signing_key")?,
            online: last_seen.is_some_and(|t| now_ms() - t < ONLINE_WINDOW_MS),
            last_event_at: last_event.map(from_ms),
            paired_at: from_ms(row.try_get("paired_at")?),
            rotation_needed: row.try_get::<i64, _>("rotation_needed")? != 0,
            transfers: crate::transfers::chain(&self.pool, auth.camera()).await?,
        })
    }

    pub async fn rename_camera(&self, auth: &Authorized<Manage>, name: &SealedName) -> Result<()> {
        check_sealed(&name.ciphertext)?;
        sqlx::query("UPDATE cameras SET name_epoch = $1, name_ct = $2 WHERE id = $3 AND epoch = $1")
            .bind(i64::from(name.epoch))
            .bind(name.ciphertext.clone())
            .bind(auth.camera().to_string())
            .execute(&self.pool)
            .await
            .map_err(StoreError::from)
            .and_then(|done| match done.rows_affected() {
                0 => Err(StoreError::Invalid(
                    "name must be sealed to the camera's current epoch",
                )),
                _ => Ok(()),
            })
    }

    /// Deletes the camera, its memberships, grants, events and blobs.
    pub async fn remove_camera(&self, auth: &Authorized<Own>) -> Result<()> {
        let camera = auth.camera().to_string();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE membership_history SET until_at = $1 WHERE camera_id = $2 AND until_at IS NULL",
        )
        .bind(now_ms())
        .bind(&camera)
        .execute(&mut *tx)
        .await?;
        for sql in [
            "DELETE FROM events WHERE camera_id = $1",
            "DELETE FROM shares WHERE camera_id = $1",
            "DELETE FROM certificates WHERE camera_id = $1",
            "DELETE FROM grants WHERE camera_id = $1",
            "DELETE FROM members WHERE camera_id = $1",
            "DELETE FROM claims WHERE camera_id = $1",
            "DELETE FROM cameras WHERE id = $1",
        ] {
            sqlx::query(sql).bind(&camera).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.members.bump(auth.camera()).await;
        self.blobs
            .delete_prefix(&BlobKey::camera_prefix(auth.camera()))
            .await?;
        Ok(())
    }

    /// The caller's own grants for the camera, one per epoch.
    pub async fn grants(&self, auth: &Authorized<View>) -> Result<Vec<Grant>> {
        sqlx::query("SELECT epoch, grant_ct FROM grants WHERE camera_id = $1 AND user_id = $2 ORDER BY epoch")
            .bind(auth.camera().to_string())
            .bind(auth.user().to_string())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                Ok(Grant {
                    epoch: rows::u32_col(row, "epoch")?,
                    grant: row.try_get("grant_ct")?,
                })
            })
            .collect()
    }
}
