//! Claim codes: how an owner hands a camera a one-time secret out of band (typed or
//! scanned), so that the camera and the owner's client can authenticate each other
//! without trusting the server.
//!
//! The code carries a 128-bit secret and the fingerprint of the owner's signing key.
//! The server only ever learns a hash of the secret; the camera proves it holds the
//! secret with a MAC over its device key, which the server cannot forge.

use data_encoding::BASE32_NOPAD;
use ed25519_dalek::VerifyingKey;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::keys::fingerprint;

const PREFIX: &str = "CC1";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClaimError {
    #[error("this is not a Closed Circuit claim code (expected CC1-…-…)")]
    Malformed,
    #[error("the pairing proof does not match the claim code")]
    BadMac,
}

/// The secret and owner fingerprint a camera needs to pair.
#[derive(Clone, PartialEq, Eq)]
pub struct ClaimCode {
    secret: [u8; 16],
    owner_fingerprint: String,
}

impl std::fmt::Debug for ClaimCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimCode")
            .field("owner_fingerprint", &self.owner_fingerprint)
            .finish_non_exhaustive()
    }
}

impl ClaimCode {
    pub fn generate(owner: &VerifyingKey) -> Self {
        let mut secret = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut secret);
        Self {
            secret,
            owner_fingerprint: fingerprint(owner),
        }
    }

    /// `CC1-<secret>-<owner fingerprint>`, upper-case base32.
    pub fn text(&self) -> String {
        format!(
            "{PREFIX}-{}-{}",
            BASE32_NOPAD.encode(&self.secret),
            self.owner_fingerprint
        )
    }

    pub fn parse(text: &str) -> Result<Self, ClaimError> {
        let upper = text.trim().to_ascii_uppercase();
        let mut parts = upper.split('-');
        let (Some(PREFIX), Some(secret), Some(fp), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ClaimError::Malformed);
        };
        let secret: [u8; 16] = BASE32_NOPAD
            .decode(secret.as_bytes())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(ClaimError::Malformed)?;
        let fp_ok = fp.len() == 16 && BASE32_NOPAD.decode(fp.as_bytes()).is_ok();
        if !fp_ok {
            return Err(ClaimError::Malformed);
        }
        Ok(Self {
            secret,
            owner_fingerprint: fp.to_owned(),
        })
    }

    /// What the server stores and looks claims up by.
    pub fn secret_hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"closedcircuit claim v1\0");
        h.update(self.secret);
        hex::encode(h.finalize())
    }

    fn mac(&self) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(b"closedcircuit pairing v1\0");
        mac
    }

    /// The camera's proof that it was given this code, bound to its device key.
    pub fn pairing_mac(&self, device_key: &VerifyingKey) -> Vec<u8> {
        let mut mac = self.mac();
        mac.update(device_key.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// Checked by the owner's client, in constant time.
    pub fn verify_pairing_mac(
        &self,
        device_key: &VerifyingKey,
        tag: &[u8],
    ) -> Result<(), ClaimError> {
        let mut mac = self.mac();
        mac.update(device_key.as_bytes());
        mac.verify_slice(tag).map_err(|_| ClaimError::BadMac)
    }

    /// Whether `owner` is the key this code was made by.
    pub fn is_owner(&self, owner: &VerifyingKey) -> bool {
        fingerprint(owner) == self.owner_fingerprint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use proptest::prelude::*;

    fn key() -> VerifyingKey {
        SigningKey::generate(&mut rand::rngs::OsRng).verifying_key()
    }

    #[test]
    fn text_round_trips_and_binds_owner_and_device() {
        let owner = key();
        let code = ClaimCode::generate(&owner);
        let parsed = ClaimCode::parse(&code.text().to_lowercase());
        assert_eq!(parsed.as_ref().ok(), Some(&code));
        assert!(code.is_owner(&owner) && !code.is_owner(&key()));
        let device = key();
        let tag = code.pairing_mac(&device);
        assert!(code.verify_pairing_mac(&device, &tag).is_ok());
        assert!(code.verify_pairing_mac(&key(), &tag).is_err());
        let other = ClaimCode::generate(&owner);
        assert!(other.verify_pairing_mac(&device, &tag).is_err());
    }

    proptest! {
        #[test]
        fn parser_never_panics(text in ".{0,80}") {
            let _ = ClaimCode::parse(&text);
        }

        #[test]
        fn parser_accepts_only_well_formed(secret in proptest::array::uniform16(any::<u8>())) {
            let code = ClaimCode { secret, owner_fingerprint: fingerprint(&key()) };
            prop_assert_eq!(ClaimCode::parse(&code.text()).ok(), Some(code.clone()));
            let text = code.text();
            prop_assert!(ClaimCode::parse(&text[..text.len() - 1]).is_err());
        }
    }
}
