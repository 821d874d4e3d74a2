//! Sessions, two-factor login (TOTP with recovery codes) and step-up verification: the
//! switch a vendor can flip during an incident so video plays only after a fresh check.

use cc_core::api::{SecuritySettings, SessionInfo};
use cc_core::SessionId;
use data_encoding::BASE32_NOPAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;
use totp_rs::{Algorithm, TOTP};

use crate::authz::Session;
use crate::time::{from_ms, now_ms};
use crate::{rows, Result, Store, StoreError};

/// A step-up lasts this long on a session.
const STEP_UP_TTL_MS: i64 = 12 * 60 * 60 * 1000;
const RECOVERY_CODES: usize = 10;

fn totp(secret: Vec<u8>) -> Result<TOTP> {
    TOTP::new(Algorithm::SHA1, 6, 1, 30, secret)
        .map_err(|_| StoreError::Corrupt("TOTP secret".into()))
}

fn code_hash(code: &str) -> String {
    let normalized: String = code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_lowercase();
    hex::encode(Sha256::digest(normalized.as_bytes()))
}

impl Store {
    /// The user's live sessions, newest first.
    pub async fn sessions(&self, session: &Session) -> Result<Vec<SessionInfo>> {
        sqlx::query(
            "SELECT id, client, ip, created_at, last_seen_at, expires_at FROM sessions \
             WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 ORDER BY created_at DESC",
        )
        .bind(session.user().to_string())
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            let id: SessionId = rows::id(row, "id")?;
            Ok(SessionInfo {
                session_id: id,
                client: row.try_get("client")?,
                ip: row.try_get("ip")?,
                created_at: from_ms(row.try_get("created_at")?),
                last_seen_at: from_ms(row.try_get("last_seen_at")?),
                expires_at: from_ms(row.try_get("expires_at")?),
                current: id == session.id(),
            })
        })
        .collect()
    }

    /// Ends one of the user's own sessions.
    pub async fn revoke_session(&self, session: &Session, target: SessionId) -> Result<()> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
        )
        .bind(now_ms())
        .bind(target.to_string())
        .bind(session.user().to_string())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Makes a new TOTP secret (not active until confirmed with a code).
    pub async fn totp_setup(&self, session: &Session) -> Result<(String, String)> {
        let mut secret = vec![0u8; 20];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let row = sqlx::query(
            "UPDATE users SET totp_secret = $1 WHERE id = $2 AND totp_enabled = 0 RETURNING email",
        )
        .bind(secret.clone())
        .bind(session.user().to_string())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::Conflict("two-factor login is already on"))?;
        let email: String = row.try_get("email")?;
        let text = BASE32_NOPAD.encode(&secret);
        let url = format!("otpauth://totp/Closed%20Circuit:{email}?secret={text}&issuer=Closed%20Circuit&digits=6&period=30");
        Ok((text, url))
    }

    /// Confirms the authenticator with a code and turns two-factor login on; returns
    /// fresh recovery codes (shown once, stored hashed).
    pub async fn totp_enable(&self, session: &Session, code: &str) -> Result<Vec<String>> {
        let row = sqlx::query("SELECT totp_secret FROM users WHERE id = $1 AND totp_enabled = 0")
            .bind(session.user().to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::Conflict("two-factor login is already on"))?;
        let secret: Option<Vec<u8>> = row.try_get("totp_secret")?;
        let secret = secret.ok_or(StoreError::Invalid("start two-factor setup first"))?;
        if !totp(secret)?.check_current(code.trim()).unwrap_or(false) {
            return Err(StoreError::Invalid(
                "the code does not match; check the device clock",
            ));
        }
        let codes: Vec<String> = (0..RECOVERY_CODES)
            .map(|_| {
                let mut b = [0u8; 5];
                rand::rngs::OsRng.fill_bytes(&mut b);
                BASE32_NOPAD.encode(&b).to_lowercase()
            })
            .collect();
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE users SET totp_enabled = 1 WHERE id = $1")
            .bind(session.user().to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(session.user().to_string())
            .execute(&mut *tx)
            .await?;
        for code in &codes {
            sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                .bind(session.user().to_string())
                .bind(code_hash(code))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(codes)
    }

    /// Whether `code` is the user's current TOTP code or an unused recovery code (which
    /// it then uses up). Accounts without two-factor login always pass.
    pub(crate) async fn second_factor_ok(&self, user: &str, code: Option<&str>) -> Result<bool> {
        let row = sqlx::query("SELECT totp_secret, totp_enabled FROM users WHERE id = $1")
            .bind(user)
            .fetch_one(&self.pool)
            .await?;
        if row.try_get::<i64, _>("totp_enabled")? == 0 {
            return Ok(true);
        }
        let Some(code) = code.map(str::trim).filter(|c| !c.is_empty()) else {
            return Ok(false);
        };
        let secret: Option<Vec<u8>> = row.try_get("totp_secret")?;
        if let Some(secret) = secret {
            if totp(secret)?.check_current(code).unwrap_or(false) {
                return Ok(true);
            }
        }
        let used = sqlx::query(
            "UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
        )
        .bind(now_ms())
        .bind(user)
        .bind(code_hash(code))
        .execute(&self.pool)
        .await?;
        Ok(used.rows_affected() == 1)
    }

    pub async fn security_settings(&self, session: &Session) -> Result<SecuritySettings> {
        let row = sqlx::query("SELECT require_step_up, totp_enabled FROM users WHERE id = $1")
            .bind(session.user().to_string())
            .fetch_one(&self.pool)
            .await?;
        Ok(SecuritySettings {
            require_step_up: row.try_get::<i64, _>("require_step_up")? != 0,
            totp_enabled: row.try_get::<i64, _>("totp_enabled")? != 0,
        })
    }

    /// Whether this session must step up before it may watch video (clips use the
    /// same answer through `media_location`).
    pub async fn step_up_needed(&self, session: &Session) -> Result<bool> {
        let row = sqlx::query(
            "SELECT u.require_step_up, s.step_up_at FROM users u JOIN sessions s ON s.user_id = u.id \
             WHERE u.id = $1 AND s.id = $2",
        )
        .bind(session.user().to_string())
        .bind(session.id().to_string())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        Ok(step_up_needed(
            row.try_get("require_step_up")?,
            row.try_get("step_up_at")?,
        ))
    }

    pub async fn set_require_step_up(&self, session: &Session, on: bool) -> Result<()> {
        sqlx::query("UPDATE users SET require_step_up = $1 WHERE id = $2")
            .bind(i64::from(on))
            .bind(session.user().to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Marks the session as freshly verified, after the caller checked a proof.
    pub(crate) async fn mark_stepped_up(&self, session: &Session) -> Result<()> {
        sqlx::query("UPDATE sessions SET step_up_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(session.id().to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Step-up with a TOTP/recovery code or the password-derived auth key.
    pub async fn step_up(
        &self,
        session: &Session,
        auth_key: Option<&[u8]>,
        totp: Option<&str>,
    ) -> Result<()> {
        let user = session.user().to_string();
        let ok = match (auth_key, totp) {
            (_, Some(code)) => {
                let enabled = self.security_settings(session).await?.totp_enabled;
                enabled && self.second_factor_ok(&user, Some(code)).await?
            }
            (Some(key), None) => self.auth_key_matches(&user, key).await?,
            (None, None) => false,
        };
        if !ok {
            return Err(StoreError::BadCredentials);
        }
        self.mark_stepped_up(session).await
    }
}

/// Whether an account that `required` step-up (stored as 0/1) must step up on a session
/// last verified at `at`.
pub(crate) fn step_up_needed(required: i64, at: Option<i64>) -> bool {
    required != 0 && at.is_none_or(|t| now_ms() - t >= STEP_UP_TTL_MS)
}
