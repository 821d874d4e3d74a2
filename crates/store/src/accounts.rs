//! Accounts and logins. The server stores an Argon2id hash of the client-derived auth
//! key and the user's keys only in wrapped form; it never sees the password.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use cc_core::api::{LoginRequest, LoginResponse, Me, SignupRequest};
use cc_core::keys::KdfParams;
use cc_core::{SessionId, UserId};
use chrono::Duration;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::time::{from_ms, now_ms};
use crate::{authz, rows, Result, Store, StoreError};

/// Normalised email, the login name.
pub fn normalize_email(email: &str) -> Result<String> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(email)
    } else {
        Err(StoreError::Invalid("email address is not valid"))
    }
}

fn hasher() -> Argon2<'static> {
    // The auth key is already the output of a slow KDF on the client; this second,
    // lighter hash means a stolen database does not hand out login credentials.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

async fn hash_auth_key(auth_key: Vec<u8>) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        hasher()
            .hash_password(&auth_key, &salt)
            .map(|h| h.to_string())
            .map_err(|_| StoreError::Invalid("auth key cannot be hashed"))
    })
    .await
    .map_err(|e| StoreError::Corrupt(e.to_string()))?
}

async fn verify_auth_key(auth_key: Vec<u8>, phc: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc)
            .map(|hash| hasher().verify_password(&auth_key, &hash).is_ok())
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A syntactically valid hash of nothing, verified for unknown emails so that a login
/// attempt takes as long whether or not the account exists.
const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2ZbLzXw8kR8+7rOe2fU5iC4n7Qm8JqZ2mH3xL6cV9aY";

impl Store {
    pub async fn create_user(&self, req: &SignupRequest) -> Result<UserId> {
        let email = normalize_email(&req.email)?;
        if !req.kdf.is_reasonable() || req.salt.len() < 16 || req.auth_key.len() != 32 {
            return Err(StoreError::Invalid(
                "key derivation inputs are out of range",
            ));
        }
        if cc_core::envelope::Recipient::parse(&req.age_recipient).is_err()
            || cc_core::b64::decode(&req.signing_key)
                .ok()
                .and_then(|b| cc_core::keys::verifying_key_from_bytes(&b))
                .is_none()
        {
            return Err(StoreError::Invalid("public keys are not well-formed"));
        }
        if req.wrapped_keys.len() > 4096 || req.recovery_wrapped_keys.len() > 4096 {
            return Err(StoreError::Invalid("wrapped keys are too large"));
        }
        let auth_hash = hash_auth_key(req.auth_key.clone()).await?;
        let id = UserId::new_v7();
        let inserted = sqlx::query(
            "INSERT INTO users (id, email, salt, kdf_m_kib, kdf_t, kdf_p, auth_hash, age_recipient, \
             signing_key, wrapped_keys, recovery_wrapped_keys, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (email) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(&email)
        .bind(req.salt.clone())
        .bind(i64::from(req.kdf.m_kib))
        .bind(i64::from(req.kdf.t))
        .bind(i64::from(req.kdf.p))
        .bind(auth_hash)
        .bind(req.age_recipient.trim())
        .bind(req.signing_key.trim())
        .bind(req.wrapped_keys.clone())
        .bind(req.recovery_wrapped_keys.clone())
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Conflict(
                "an account with this email already exists",
            ));
        }
        Ok(id)
    }

    /// The salt and KDF parameters for an email, or `None` when there is no such account.
    pub async fn prelogin(&self, email: &str) -> Result<Option<(Vec<u8>, KdfParams)>> {
        let email = normalize_email(email)?;
        let row = sqlx::query("SELECT salt, kdf_m_kib, kdf_t, kdf_p FROM users WHERE email = $1")
            .bind(email)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok((
                r.try_get::<Vec<u8>, _>("salt")?,
                KdfParams {
                    m_kib: rows::u32_col(&r, "kdf_m_kib")?,
                    t: rows::u32_col(&r, "kdf_t")?,
                    p: rows::u32_col(&r, "kdf_p")?,
                },
            ))
        })
        .transpose()
    }

    /// Checks the auth key and opens a session.
    pub async fn login(
        &self,
        req: &LoginRequest,
        ip: &str,
        ttl: Duration,
    ) -> Result<LoginResponse> {
        let (email, auth_key, client) = (&req.email, &req.auth_key, &req.client);
        let email = normalize_email(email).map_err(|_| StoreError::BadCredentials)?;
        let row = sqlx::query("SELECT id, auth_hash, wrapped_keys FROM users WHERE email = $1")
            .bind(email)
            .fetch_optional(&self.pool)
            .await?;
        let (phc, found) = match &row {
            Some(r) => (r.try_get::<String, _>("auth_hash")?, true),
            None => (DECOY_HASH.to_owned(), false),
        };
        let ok = verify_auth_key(auth_key.to_vec(), phc).await;
        let Some(row) = row.filter(|_| ok && found) else {
            return Err(StoreError::BadCredentials);
        };
        let user: UserId = rows::id(&row, "id")?;
        if !self
            .second_factor_ok(&user.to_string(), req.totp.as_deref())
            .await?
        {
            return Err(StoreError::SecondFactorRequired);
        }
        let (token, session_id, expires_at) = self.issue_session(user, client, ip, ttl).await?;
        Ok(LoginResponse {
            token,
            session_id,
            user_id: user,
            expires_at: from_ms(expires_at),
            wrapped_keys: row.try_get("wrapped_keys")?,
        })
    }

    /// Checks a client-derived auth key against the stored hash (for step-up).
    pub(crate) async fn auth_key_matches(&self, user: &str, auth_key: &[u8]) -> Result<bool> {
        let row = sqlx::query("SELECT auth_hash FROM users WHERE id = $1")
            .bind(user)
            .fetch_one(&self.pool)
            .await?;
        Ok(verify_auth_key(auth_key.to_vec(), row.try_get("auth_hash")?).await)
    }

    pub async fn me(&self, session: &authz::Session) -> Result<Me> {
        let row = sqlx::query("SELECT email, age_recipient, signing_key FROM users WHERE id = $1")
            .bind(session.user().to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::Unauthenticated)?;
        Ok(Me {
            user_id: session.user(),
            email: row.try_get("email")?,
            age_recipient: row.try_get("age_recipient")?,
            signing_key: row.try_get("signing_key")?,
            session_id: session.id(),
        })
    }

    async fn issue_session(
        &self,
        user: UserId,
        client: &str,
        ip: &str,
        ttl: Duration,
    ) -> Result<(String, SessionId, i64)> {
        let token = authz::new_token(authz::USER_TOKEN_PREFIX);
        let id = SessionId::new_v7();
        let now = now_ms();
        let expires = now.saturating_add(ttl.num_milliseconds());
        let client: String = client
            .chars()
            .filter(|c| !c.is_control())
            .take(100)
            .collect();
        sqlx::query(
            "INSERT INTO sessions (id, user_id, token_hash, client, ip, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7)",
        )
        .bind(id.to_string())
        .bind(user.to_string())
        .bind(token_hash(&token))
        .bind(client)
        .bind(ip)
        .bind(now)
        .bind(expires)
        .execute(&self.pool)
        .await?;
        Ok((token, id, expires))
    }
}

/// How tokens are stored: SHA-256, hex. Tokens are 256-bit random, so no slow hash is needed.
pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decoy_hash_parses() {
        assert!(PasswordHash::new(DECOY_HASH).is_ok());
    }

    proptest! {
        #[test]
        fn email_normaliser_never_panics_and_is_idempotent(s in ".{0,300}") {
            if let Ok(e) = normalize_email(&s) {
                prop_assert_eq!(normalize_email(&e).ok(), Some(e));
            }
        }
    }
}
