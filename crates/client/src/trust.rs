//! Whose word a client takes for a camera's keys. A camera's certificate must be signed
//! by its owner: for our own cameras that is our own key; for cameras shared with us the
//! owner's key is pinned the first time we see it, and a later change is refused loudly.
//! Nothing the server says can swap a camera's device key or content key unnoticed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use cc_core::api::{CameraInfo, Role};
use cc_core::certificate::CameraCertificate;
use cc_core::keys::verifying_key_from_bytes;
use cc_core::transfer::{self, SignedTransfer};
use cc_core::CameraId;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::error::ClientError;
use crate::files;

/// The owner key trusted for one camera, and the latest epoch it was seen to sign: a
/// signed transfer from before that epoch is history and cannot move the pin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
enum Pin {
    Key {
        key: String,
        epoch: u32,
    },
    /// A pin written before pins carried an epoch.
    Legacy(String),
}

impl Pin {
    fn key(&self) -> &str {
        match self {
            Pin::Key { key, .. } | Pin::Legacy(key) => key,
        }
    }

    fn epoch(&self) -> u32 {
        match self {
            Pin::Key { epoch, .. } => *epoch,
            Pin::Legacy(_) => 0,
        }
    }
}

/// Owner keys pinned per camera, kept in the profile's `pins.json`.
#[derive(Debug)]
pub struct Pins {
    path: PathBuf,
    keys: BTreeMap<CameraId, Pin>,
    changed: bool,
}

impl Pins {
    pub fn load(path: PathBuf) -> Result<Self, ClientError> {
        let keys = files::read_json(&path, "pins file")?.unwrap_or_default();
        Ok(Self {
            path,
            keys,
            changed: false,
        })
    }

    /// Writes newly pinned keys, if any.
    pub fn save(&mut self) -> Result<(), ClientError> {
        if self.changed {
            files::write_json(&self.path, &self.keys)?;
            self.changed = false;
        }
        Ok(())
    }

    /// Pins `owner_key` for `camera` (as when accepting an invitation); refuses a key
    /// different from one pinned earlier.
    pub fn pin(&mut self, camera: CameraId, owner_key: &str) -> Result<(), ClientError> {
        self.owner_key(camera, owner_key, &[]).map(drop)
    }

    /// The owner key to trust for `camera`: pinned on first sight, then held to unless
    /// a chain of transfers signed by the pinned key leads to the one presented.
    fn owner_key(
        &mut self,
        camera: CameraId,
        presented: &str,
        transfers: &[SignedTransfer],
    ) -> Result<transfer::Owner, ClientError> {
        let changed = |pinned: &str| ClientError::OwnerKeyChanged {
            camera,
            pinned: pinned.to_owned(),
            presented: presented.to_owned(),
        };
        let invalid = || ClientError::UntrustedCamera {
            camera,
            reason: "its owner key is not a valid Ed25519 key".to_owned(),
        };
        match self.keys.get(&camera) {
            None => {
                self.set(camera, presented, 0);
                let key = decode_key(presented).ok_or_else(invalid)?;
                Ok(transfer::Owner { key, since: 0 })
            }
            Some(pin) if pin.key() == presented => {
                let key = decode_key(presented).ok_or_else(invalid)?;
                Ok(transfer::Owner {
                    key,
                    since: pin.epoch(),
                })
            }
            Some(pin) => {
                let pinned = decode_key(pin.key()).ok_or_else(|| changed(pin.key()))?;
                let reached = transfer::follow(camera, pinned, pin.epoch(), transfers)
                    .map_err(|_| changed(pin.key()))?;
                if cc_core::b64::encode(reached.key.as_bytes()) != presented {
                    return Err(changed(pin.key()));
                }
                Ok(reached)
            }
        }
    }

    /// Records that `key` signed `camera`'s certificate of `epoch`.
    fn set(&mut self, camera: CameraId, key: &str, epoch: u32) {
        let pin = Pin::Key {
            key: key.to_owned(),
            epoch,
        };
        if self.keys.get(&camera) != Some(&pin) {
            self.keys.insert(camera, pin);
            self.changed = true;
        }
    }
}

fn decode_key(b64: &str) -> Option<VerifyingKey> {
    verifying_key_from_bytes(&cc_core::b64::decode(b64).ok()?)
}

/// Verifies a camera's certificate and returns it: signed by the right owner, naming
/// this very camera.
pub fn verify_camera(
    info: &CameraInfo,
    me: &VerifyingKey,
    pins: &mut Pins,
) -> Result<CameraCertificate, ClientError> {
    let camera = info.camera_id;
    let untrusted = |reason: String| ClientError::UntrustedCamera { camera, reason };
    let owner = if info.role == Role::Owner {
        transfer::Owner { key: *me, since: 0 }
    } else {
        pins.owner_key(camera, &info.owner_signing_key, &info.transfers)?
    };
    let cert = info
        .certificate
        .verify_owner(&owner.key)
        .map_err(|e| untrusted(format!("its certificate does not verify: {e}")))?;
    if cert.epoch < owner.since {
        return Err(untrusted(format!(
            "its certificate is for epoch {}, before its owner's key took over at epoch {}",
            cert.epoch, owner.since
        )));
    }
    if cert.camera_id != camera {
        return Err(untrusted(format!(
            "its certificate is for camera {}",
            cert.camera_id
        )));
    }
    if info.role != Role::Owner {
        let held = pins.keys.get(&camera).map_or(0, Pin::epoch);
        pins.set(camera, &cert.owner_key, cert.epoch.max(held));
    }
    Ok(cert)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cc_core::api::SealedName;
    use cc_core::certificate::SignedCertificate;
    use cc_core::envelope::Identity;
    use cc_core::transfer::SignedTransfer;
    use chrono::Utc;
    use ed25519_dalek::SigningKey;

    fn key() -> SigningKey {
        SigningKey::generate(&mut rand::rngs::OsRng)
    }

    fn camera(owner: &SigningKey, role: Role) -> CameraInfo {
        let camera_id = CameraId::new_v7();
        let owner_key = cc_core::b64::encode(owner.verifying_key().as_bytes());
        let cert = CameraCertificate {
            v: 1,
            camera_id,
            device_key: cc_core::b64::encode(key().verifying_key().as_bytes()),
            epoch: 1,
            content_recipient: Identity::generate().recipient().to_string(),
            owner_key: owner_key.clone(),
            issued_at: Utc::now(),
        };
        CameraInfo {
            camera_id,
            name: SealedName {
                epoch: 1,
                ciphertext: Vec::new(),
            },
            role,
            epoch: 1,
            certificate: SignedCertificate::sign(&cert, owner),
            owner_signing_key: owner_key,
            online: false,
            last_event_at: None,
            paired_at: Utc::now(),
            rotation_needed: false,
            transfers: Vec::new(),
        }
    }

    fn pins() -> Result<(tempfile::TempDir, Pins), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let pins = Pins::load(dir.path().join("pins.json"))?;
        Ok((dir, pins))
    }

    #[test]
    fn own_cameras_verify_with_our_key_only() -> Result<(), Box<dyn std::error::Error>> {
        let (_dir, mut pins) = pins()?;
        let me = key();
        let info = camera(&me, Role::Owner);
        assert!(verify_camera(&info, &me.verifying_key(), &mut pins).is_ok());
        let forged = camera(&key(), Role::Owner);
        assert!(verify_camera(&forged, &me.verifying_key(), &mut pins).is_err());
        Ok(())
    }

    #[test]
    fn a_certificate_for_another_camera_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let (_dir, mut pins) = pins()?;
        let me = key();
        let mut info = camera(&me, Role::Owner);
        info.camera_id = CameraId::new_v7();
        assert!(matches!(
            verify_camera(&info, &me.verifying_key(), &mut pins),
            Err(ClientError::UntrustedCamera { .. })
        ));
        Ok(())
    }

    #[test]
    fn shared_cameras_pin_the_owner_on_first_sight() -> Result<(), Box<dyn std::error::Error>> {
        let (dir, mut pins) = pins()?;
        let me = key();
        let friend = key();
        let info = camera(&friend, Role::Viewer);
        verify_camera(&info, &me.verifying_key(), &mut pins)?;
        pins.save()?;

        let mut reloaded = Pins::load(dir.path().join("pins.json"))?;
        let mut swapped = camera(&key(), Role::Viewer);
        swapped.camera_id = info.camera_id;
        swapped.certificate = info.certificate.clone();
        assert!(matches!(
            verify_camera(&swapped, &me.verifying_key(), &mut reloaded),
            Err(ClientError::OwnerKeyChanged { .. })
        ));
        assert!(verify_camera(&info, &me.verifying_key(), &mut reloaded).is_ok());
        Ok(())
    }

    fn handover(
        camera: CameraId,
        from: &SigningKey,
        to: &SigningKey,
        epoch: u32,
    ) -> SignedTransfer {
        let statement = transfer::OwnershipTransfer {
            v: 1,
            camera_id: camera,
            from_key: cc_core::b64::encode(from.verifying_key().as_bytes()),
            to_user: cc_core::UserId::new_v7(),
            to_key: cc_core::b64::encode(to.verifying_key().as_bytes()),
            epoch,
            issued_at: Utc::now(),
        };
        SignedTransfer::sign(&statement, from)
    }

    /// `info` as re-issued by `owner` at `epoch`.
    fn reissued(
        info: &CameraInfo,
        owner: &SigningKey,
        epoch: u32,
    ) -> Result<CameraInfo, Box<dyn std::error::Error>> {
        let mut cert = info.certificate.peek()?;
        cert.epoch = epoch;
        cert.owner_key = cc_core::b64::encode(owner.verifying_key().as_bytes());
        Ok(CameraInfo {
            epoch,
            certificate: SignedCertificate::sign(&cert, owner),
            owner_signing_key: cert.owner_key.clone(),
            ..info.clone()
        })
    }

    #[test]
    fn members_follow_a_transfer_signed_by_the_pinned_owner_only(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let (_dir, mut pins) = pins()?;
        let (me, owner, next, server) = (key(), key(), key(), key());
        let info = camera(&owner, Role::Viewer);
        let camera_id = info.camera_id;
        verify_camera(&info, &me.verifying_key(), &mut pins)?;

        let mut smuggled = reissued(&info, &server, 2)?;
        smuggled.transfers = vec![handover(camera_id, &server, &server, 2)];
        assert!(matches!(
            verify_camera(&smuggled, &me.verifying_key(), &mut pins),
            Err(ClientError::OwnerKeyChanged { .. })
        ));

        let mut handed = reissued(&info, &next, 2)?;
        handed.transfers = vec![handover(camera_id, &owner, &next, 2)];
        verify_camera(&handed, &me.verifying_key(), &mut pins)?;

        // The camera went back to its first owner at epoch 4; replaying the first
        // handover to a member who saw that cannot move them to `next` again.
        let mut back = reissued(&info, &owner, 4)?;
        back.transfers = vec![
            handover(camera_id, &owner, &next, 2),
            handover(camera_id, &next, &owner, 4),
        ];
        verify_camera(&back, &me.verifying_key(), &mut pins)?;
        let mut replayed = reissued(&info, &next, 5)?;
        replayed.transfers = vec![handover(camera_id, &owner, &next, 2)];
        assert!(verify_camera(&replayed, &me.verifying_key(), &mut pins).is_err());
        Ok(())
    }
}
