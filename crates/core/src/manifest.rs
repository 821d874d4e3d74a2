//! The event manifest: what a camera signs with its device key for every event, binding
//! the ciphertexts to one camera, one event ID and one content-key epoch (DESIGN I2).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::signed::{Signed, Statement};
use crate::{CameraId, EventId};

/// What the camera saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Motion,
    Person,
    Sound,
}

impl EventKind {
    pub const ALL: [EventKind; 3] = [EventKind::Motion, EventKind::Person, EventKind::Sound];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Motion => "motion",
            EventKind::Person => "person",
            EventKind::Sound => "sound",
        }
    }
}

impl std::str::FromStr for EventKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown event kind {s:?} (expected motion, person or sound)"))
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The signed description of one event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub v: u8,
    pub camera_id: CameraId,
    pub event_id: EventId,
    pub epoch: u32,
    pub kind: EventKind,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u32,
    /// SHA-256 (hex) of the thumbnail *ciphertext*.
    pub thumb_sha256: String,
    pub thumb_size: u64,
    /// SHA-256 (hex) of the clip *ciphertext*.
    pub clip_sha256: String,
    pub clip_size: u64,
}

impl Statement for Manifest {
    const CONTEXT: &'static [u8] = b"closedcircuit event manifest v1";
}

pub type SignedManifest = Signed<Manifest>;

/// Why a manifest does not describe what it claims to.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MismatchError {
    #[error("the manifest belongs to camera {found}, not {expected}")]
    Camera { expected: CameraId, found: CameraId },
    #[error("the manifest belongs to event {found}, not {expected}")]
    Event { expected: EventId, found: EventId },
    #[error("the {0} does not match the hash in the signed manifest")]
    Content(&'static str),
    #[error("unsupported manifest version {0}")]
    Version(u8),
}

impl Manifest {
    pub const VERSION: u8 = 1;

    /// Checks that this manifest is for exactly the camera and event that were asked for.
    pub fn check_identity(&self, camera: CameraId, event: EventId) -> Result<(), MismatchError> {
        if self.v != Self::VERSION {
            return Err(MismatchError::Version(self.v));
        }
        if self.camera_id != camera {
            return Err(MismatchError::Camera {
                expected: camera,
                found: self.camera_id,
            });
        }
        if self.event_id != event {
            return Err(MismatchError::Event {
                expected: event,
                found: self.event_id,
            });
        }
        Ok(())
    }

    pub fn check_thumb(&self, ciphertext: &[u8]) -> Result<(), MismatchError> {
        check_hash(&self.thumb_sha256, self.thumb_size, ciphertext, "thumbnail")
    }

    pub fn check_clip(&self, ciphertext: &[u8]) -> Result<(), MismatchError> {
        check_hash(&self.clip_sha256, self.clip_size, ciphertext, "clip")
    }
}

fn check_hash(
    expected: &str,
    size: u64,
    bytes: &[u8],
    what: &'static str,
) -> Result<(), MismatchError> {
    if bytes.len() as u64 == size && sha256_hex(bytes) == expected {
        Ok(())
    } else {
        Err(MismatchError::Content(what))
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signed::SignatureError;
    use ed25519_dalek::SigningKey;
    use proptest::prelude::*;

    fn manifest() -> Manifest {
        Manifest {
            v: 1,
            camera_id: CameraId::new_v7(),
            event_id: EventId::new_v7(),
            epoch: 1,
            kind: EventKind::Person,
            started_at: Utc::now(),
            duration_ms: 4000,
            thumb_sha256: sha256_hex(b"t"),
            thumb_size: 1,
            clip_sha256: sha256_hex(b"c"),
            clip_size: 1,
        }
    }

    #[test]
    fn verifies_with_the_device_key_only() {
        let device = SigningKey::generate(&mut rand::rngs::OsRng);
        let other = SigningKey::generate(&mut rand::rngs::OsRng);
        let m = manifest();
        let signed = SignedManifest::sign(&m, &device);
        assert_eq!(signed.verify(&device.verifying_key()).ok(), Some(m.clone()));
        assert_eq!(
            signed.verify(&other.verifying_key()).err(),
            Some(SignatureError::Invalid)
        );
        assert!(m.check_identity(m.camera_id, m.event_id).is_ok());
        assert!(m.check_identity(CameraId::new_v7(), m.event_id).is_err());
        assert!(m.check_identity(m.camera_id, EventId::new_v7()).is_err());
        assert!(m.check_thumb(b"t").is_ok() && m.check_thumb(b"x").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_edit_of_the_body_breaks_the_signature(at in 0usize..1000, byte in any::<u8>()) {
            let device = SigningKey::generate(&mut rand::rngs::OsRng);
            let signed = SignedManifest::sign(&manifest(), &device);
            let mut body = signed.body.clone().into_bytes();
            let at = at % body.len();
            prop_assume!(body[at] != byte);
            body[at] = byte;
            let forged = SignedManifest::from_parts(String::from_utf8_lossy(&body).into_owned(), signed.signature.clone());
            prop_assert!(forged.verify(&device.verifying_key()).is_err());
        }

        #[test]
        fn garbage_never_panics(body in ".{0,200}", sig in "[A-Za-z0-9+/=]{0,120}") {
            let device = SigningKey::generate(&mut rand::rngs::OsRng);
            let forged = SignedManifest::from_parts(body, sig);
            prop_assert!(forged.verify(&device.verifying_key()).is_err());
        }
    }
}
