//! Whose word a client takes for a camera's keys. A camera's certificate must be signed
//! by its owner: for our own cameras that is our own key; for cameras shared with us the
//! owner's key is pinned the first time we see it, and a later change is refused loudly.
//! Nothing the server says can swap a camera's device key or content key unnoticed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use cc_core::api::{CameraInfo, Role};
use cc_core::certificate::CameraCertificate;
use cc_core::keys::verifying_key_from_bytes;
use cc_core::CameraId;
use ed25519_dalek::VerifyingKey;

use crate::error::ClientError;
use crate::files;

/// Owner keys (base64) pinned per camera, kept in the profile's `pins.json`.
#[derive(Debug)]
pub struct Pins {
    path: PathBuf,
    keys: BTreeMap<CameraId, String>,
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
        self.owner_key(camera, owner_key).map(drop)
    }

    /// The owner key to trust for `camera`: pinned on first sight, then held to.
    fn owner_key(&mut self, camera: CameraId, presented: &str) -> Result<String, ClientError> {
        match self.keys.get(&camera) {
            Some(pinned) if pinned != presented => Err(ClientError::OwnerKeyChanged {
                camera,
                pinned: pinned.clone(),
                presented: presented.to_owned(),
            }),
            Some(pinned) => Ok(pinned.clone()),
            None => {
                self.keys.insert(camera, presented.to_owned());
                self.changed = true;
                Ok(presented.to_owned())
            }
        }
    }
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
        *me
    } else {
        let key = pins.owner_key(camera, &info.owner_signing_key)?;
        cc_core::b64::decode(&key)
            .ok()
            .and_then(|bytes| verifying_key_from_bytes(&bytes))
            .ok_or_else(|| untrusted("its owner key is not a valid Ed25519 key".to_owned()))?
    };
    let cert = info
        .certificate
        .verify_owner(&owner)
        .map_err(|e| untrusted(format!("its certificate does not verify: {e}")))?;
    if cert.camera_id != camera {
        return Err(untrusted(format!(
            "its certificate is for camera {}",
            cert.camera_id
        )));
    }
    Ok(cert)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cc_core::api::SealedName;
    use cc_core::certificate::SignedCertificate;
    use cc_core::envelope::Identity;
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
}
