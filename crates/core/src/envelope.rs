//! Media and key envelopes: every thumbnail, clip, grant and camera name is an age file
//! (age-encryption.org/v1, X25519 recipients), so owners can audit their own data with
//! the standard `age` tool.

use std::str::FromStr;

use age::secrecy::ExposeSecret;
use age::x25519;

/// Why an envelope could not be opened or made.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("not a valid age recipient")]
    BadRecipient,
    #[error("not a valid age identity")]
    BadIdentity,
    #[error("encryption failed")]
    Encrypt,
    #[error("this key cannot decrypt the file, or the file is damaged")]
    Decrypt,
}

/// The secret half of an X25519 age key pair (a user's identity, or a camera content key).
#[derive(Clone)]
pub struct Identity(x25519::Identity);

/// The public half: anyone may encrypt to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient(x25519::Recipient);

impl Identity {
    pub fn generate() -> Self {
        Self(x25519::Identity::generate())
    }

    pub fn recipient(&self) -> Recipient {
        Recipient(self.0.to_public())
    }

    /// The `AGE-SECRET-KEY-1…` text form, as the `age` tool reads it.
    pub fn to_secret_string(&self) -> String {
        self.0.to_string().expose_secret().to_owned()
    }

    pub fn parse(text: &str) -> Result<Self, EnvelopeError> {
        x25519::Identity::from_str(text.trim())
            .map(Self)
            .map_err(|_| EnvelopeError::BadIdentity)
    }

    pub fn decrypt(&self, ciphertext: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
        age::decrypt(&self.0, ciphertext).map_err(|_| EnvelopeError::Decrypt)
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Identity(<secret>)")
    }
}

impl Recipient {
    pub fn parse(text: &str) -> Result<Self, EnvelopeError> {
        x25519::Recipient::from_str(text.trim())
            .map(Self)
            .map_err(|_| EnvelopeError::BadRecipient)
    }

    pub fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
        age::encrypt(&self.0, plaintext).map_err(|_| EnvelopeError::Encrypt)
    }
}

impl std::fmt::Display for Recipient {
    /// The `age1…` text form.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// True when `bytes` start like an age file; a cheap sanity check at upload time.
pub fn looks_like_age(bytes: &[u8]) -> bool {
    bytes.starts_with(b"age-encryption.org/v1\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn text_forms_round_trip() {
        let id = Identity::generate();
        let again = Identity::parse(&id.to_secret_string()).map(|i| i.recipient());
        assert_eq!(again.ok(), Some(id.recipient()));
        let r = Recipient::parse(&id.recipient().to_string()).ok();
        assert_eq!(r, Some(id.recipient()));
    }

    #[test]
    fn another_identity_cannot_decrypt() {
        let alice = Identity::generate();
        let mallory = Identity::generate();
        let ct = alice.recipient().encrypt(b"front door").unwrap_or_default();
        assert!(looks_like_age(&ct));
        assert!(mallory.decrypt(&ct).is_err());
        assert_eq!(alice.decrypt(&ct).ok().as_deref(), Some(&b"front door"[..]));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn any_payload_round_trips(data in proptest::collection::vec(any::<u8>(), 0..70_000)) {
            let id = Identity::generate();
            let ct = id.recipient().encrypt(&data).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(id.decrypt(&ct).ok(), Some(data));
        }

        #[test]
        fn truncated_or_flipped_ciphertext_never_decrypts(cut in 0usize..400, flip in 0usize..400) {
            let id = Identity::generate();
            let ct = id.recipient().encrypt(&[7u8; 300]).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let cut = cut.min(ct.len() - 1);
            prop_assert!(id.decrypt(&ct[..cut]).is_err());
            let mut flipped = ct.clone();
            let at = flip % flipped.len();
            flipped[at] ^= 0x01;
            prop_assert!(id.decrypt(&flipped).is_err());
        }
    }
}
