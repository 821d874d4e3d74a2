//! A user's keys and how they are kept: made on the client, stored on the server only
//! wrapped under a key derived from the password (Argon2id) and again under a printable
//! recovery key. The server gets a separate *auth key* derived from the same password,
//! which proves the password without unwrapping anything.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use data_encoding::BASE32_NOPAD;
use ed25519_dalek::{SigningKey, VerifyingKey};
use hkdf::Hkdf;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::envelope::{Identity, Recipient};

/// Argon2id cost parameters. They live with the account so they can be raised later,
/// and every client (CLI, browser) derives the same keys from them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Iterations.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Default for KdfParams {
    fn default() -> Self {
        Self {
            m_kib: 64 * 1024,
            t: 3,
            p: 1,
        }
    }
}

impl KdfParams {
    /// Refuse parameters too weak to protect a password, or so large they are a
    /// denial of service against the client (a hostile server could send them).
    pub fn is_reasonable(&self) -> bool {
        (8 * 1024..=1024 * 1024).contains(&self.m_kib)
            && (1..=16).contains(&self.t)
            && (1..=8).contains(&self.p)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key derivation parameters are out of range")]
    BadKdfParams,
    #[error("wrong password or recovery key")]
    WrongSecret,
    #[error("stored key material is malformed")]
    Malformed,
    #[error("the recovery key is not in the expected format")]
    BadRecoveryKey,
}

/// Keys derived from the password: one wraps the user's keys, one proves the password.
pub struct PasswordKeys {
    pub kek: Zeroizing<[u8; 32]>,
    pub auth_key: Zeroizing<[u8; 32]>,
}

/// Derives the key-encryption key and the auth key from a password.
pub fn derive_password_keys(
    password: &str,
    salt: &[u8],
    params: KdfParams,
) -> Result<PasswordKeys, KeyError> {
    if !params.is_reasonable() {
        return Err(KeyError::BadKdfParams);
    }
    let argon_params = Params::new(params.m_kib, params.t, params.p, Some(32))
        .map_err(|_| KeyError::BadKdfParams)?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params);
    let mut master = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(password.as_bytes(), salt, master.as_mut())
        .map_err(|_| KeyError::BadKdfParams)?;
    Ok(PasswordKeys {
        kek: expand(master.as_ref(), b"closedcircuit kek v1"),
        auth_key: expand(master.as_ref(), b"closedcircuit auth v1"),
    })
}

fn expand(ikm: &[u8], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's output limit, so expansion cannot fail.
    let _ = Hkdf::<Sha256>::new(None, ikm).expand(info, out.as_mut());
    out
}

pub fn random_salt() -> [u8; 16] {
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    salt
}

/// A user's private keys: the age identity that unwraps camera grants, and the
/// Ed25519 key that signs camera certificates and key rotations.
#[derive(Clone)]
pub struct UserKeys {
    pub identity: Identity,
    pub signing: SigningKey,
}

#[derive(Serialize, Deserialize)]
struct UserKeysText {
    age_identity: String,
    #[serde(with = "crate::b64")]
    signing_seed: Vec<u8>,
}

const WRAP_AAD: &[u8] = b"closedcircuit user keys v1";

impl UserKeys {
    pub fn generate() -> Self {
        Self {
            identity: Identity::generate(),
            signing: SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    pub fn recipient(&self) -> Recipient {
        self.identity.recipient()
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    fn to_text(&self) -> Zeroizing<Vec<u8>> {
        let text = UserKeysText {
            age_identity: self.identity.to_secret_string(),
            signing_seed: self.signing.to_bytes().to_vec(),
        };
        Zeroizing::new(serde_json::to_vec(&text).unwrap_or_default())
    }

    fn from_text(bytes: &[u8]) -> Result<Self, KeyError> {
        let text: UserKeysText = serde_json::from_slice(bytes).map_err(|_| KeyError::Malformed)?;
        let seed: [u8; 32] = text
            .signing_seed
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Malformed)?;
        Ok(Self {
            identity: Identity::parse(&text.age_identity).map_err(|_| KeyError::Malformed)?,
            signing: SigningKey::from_bytes(&seed),
        })
    }

    /// Seals the keys under a 32-byte wrapping key: `nonce(24) || XChaCha20-Poly1305`.
    pub fn wrap(&self, key: &[u8; 32]) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new(key.into());
        let mut nonce = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut nonce);
        let plain = self.to_text();
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: WRAP_AAD,
                },
            )
            .unwrap_or_default();
        [nonce.as_slice(), &sealed].concat()
    }

    pub fn unwrap(wrapped: &[u8], key: &[u8; 32]) -> Result<Self, KeyError> {
        if wrapped.len() < 24 + 16 {
            return Err(KeyError::Malformed);
        }
        let (nonce, sealed) = wrapped.split_at(24);
        let cipher = XChaCha20Poly1305::new(key.into());
        let plain = cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: WRAP_AAD,
                },
            )
            .map_err(|_| KeyError::WrongSecret)?;
        Self::from_text(&Zeroizing::new(plain))
    }

    /// The file the standard `age` tool reads as an identity (`age -d -i FILE`).
    pub fn export_identity(&self) -> String {
        format!(
            "# Closed Circuit identity. Anyone holding this file can read your cameras.\n# public key: {}\n{}\n",
            self.recipient(),
            self.identity.to_secret_string()
        )
    }
}

/// A printable key, shown once at sign-up, that unwraps the user's keys when the
/// password is lost.
pub struct RecoveryKey(Zeroizing<[u8; 32]>);

impl RecoveryKey {
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::thread_rng().fill_bytes(bytes.as_mut());
        Self(bytes)
    }

    /// Groups of four base32 characters, e.g. `ABCD-EFGH-…`.
    pub fn display(&self) -> String {
        let text = BASE32_NOPAD.encode(self.0.as_ref());
        text.as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("-")
    }

    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let cleaned: String = text
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let bytes = BASE32_NOPAD
            .decode(cleaned.as_bytes())
            .map_err(|_| KeyError::BadRecoveryKey)?;
        let array: [u8; 32] = bytes.try_into().map_err(|_| KeyError::BadRecoveryKey)?;
        Ok(Self(Zeroizing::new(array)))
    }

    pub fn wrapping_key(&self) -> Zeroizing<[u8; 32]> {
        expand(self.0.as_ref(), b"closedcircuit recovery v1")
    }
}

/// A short, human-comparable fingerprint of a signing key (16 base32 characters).
pub fn fingerprint(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    BASE32_NOPAD.encode(&digest[..10])
}

pub fn verifying_key_from_bytes(bytes: &[u8]) -> Option<VerifyingKey> {
    let array: [u8; 32] = bytes.try_into().ok()?;
    VerifyingKey::from_bytes(&array).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> KdfParams {
        KdfParams {
            m_kib: 8 * 1024,
            t: 1,
            p: 1,
        }
    }

    #[test]
    fn password_unwraps_and_wrong_password_does_not() -> Result<(), KeyError> {
        let salt = random_salt();
        let keys = UserKeys::generate();
        let right = derive_password_keys("correct horse", &salt, fast())?;
        let wrapped = keys.wrap(&right.kek);
        let again = UserKeys::unwrap(&wrapped, &right.kek)?;
        assert_eq!(again.recipient(), keys.recipient());
        assert_eq!(again.verifying_key(), keys.verifying_key());
        let wrong = derive_password_keys("battery staple", &salt, fast())?;
        assert!(matches!(
            UserKeys::unwrap(&wrapped, &wrong.kek),
            Err(KeyError::WrongSecret)
        ));
        assert_ne!(*right.kek, *right.auth_key);
        Ok(())
    }

    #[test]
    fn recovery_key_survives_its_printed_form() -> Result<(), KeyError> {
        let keys = UserKeys::generate();
        let recovery = RecoveryKey::generate();
        let wrapped = keys.wrap(&recovery.wrapping_key());
        let typed = recovery.display().to_lowercase().replace('-', " ");
        let parsed = RecoveryKey::parse(&typed)?;
        let again = UserKeys::unwrap(&wrapped, &parsed.wrapping_key())?;
        assert_eq!(again.recipient(), keys.recipient());
        Ok(())
    }

    #[test]
    fn hostile_kdf_params_are_refused() {
        let huge = KdfParams {
            m_kib: u32::MAX,
            t: 1,
            p: 1,
        };
        assert!(derive_password_keys("x", &random_salt(), huge).is_err());
    }
}
