//! Pairing from the owner's side. The owner's client makes a claim code and a fresh
//! content identity, registers only the code's hash, and once a camera presents the
//! code it checks the camera's proof (which the server cannot forge) before signing the
//! camera certificate. Claims in progress are kept in the profile's `claims/` folder so
//! any later command can finish them.

use std::path::PathBuf;

use cc_core::api::{CameraInfo, Claim, CompleteClaimRequest, CreateClaimRequest, PairingRequest};
use cc_core::certificate::{CameraCertificate, SignedCertificate};
use cc_core::claim::ClaimCode;
use cc_core::envelope::Identity;
use cc_core::keys::{verifying_key_from_bytes, UserKeys};
use cc_core::{CameraId, ClaimId, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::error::ClientError;
use crate::files;
use crate::keyring::seal_name;
use crate::profile::Session;

/// The longest camera name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// A claim waiting for its camera, as saved on disk. It holds the claim secret and the
/// camera's future content identity, so the file is private.
#[derive(Serialize, Deserialize)]
struct PendingClaim {
    claim_id: ClaimId,
    user_id: UserId,
    code: String,
    content_identity: String,
    name: String,
    expires_at: DateTime<Utc>,
}

impl Drop for PendingClaim {
    fn drop(&mut self) {
        self.code.zeroize();
        self.content_identity.zeroize();
    }
}

/// A claim just registered with the server.
pub struct StartedClaim {
    pub claim_id: ClaimId,
    pub code: ClaimCode,
    pub expires_at: DateTime<Utc>,
}

/// Where one claim stands.
pub enum ClaimProgress {
    /// No camera has presented the code yet.
    Waiting,
    /// A camera presented the code, proved it, and is now paired.
    Paired(Box<CameraInfo>),
    /// The claim expired or was withdrawn.
    Gone,
}

/// What tidying up the saved claims did.
#[derive(Default)]
pub struct ClaimsTidied {
    /// Cameras that were paired now: (name, camera).
    pub paired: Vec<(String, CameraInfo)>,
    /// Claims whose presented proof was wrong; each was withdrawn.
    pub refused: Vec<(ClaimId, ClientError)>,
    /// Claim files dropped because their claim expired or was withdrawn.
    pub dropped: usize,
}

/// Checks a camera name before anything is made for it.
pub fn check_name(name: &str) -> Result<String, ClientError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ClientError::Invalid("a camera name cannot be empty".into()));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(ClientError::Invalid(format!(
            "a camera name has at most {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(name.to_owned())
}

fn claim_path(session: &Session, claim: ClaimId) -> PathBuf {
    session.dir.claims_dir().join(format!("{claim}.json"))
}

/// Makes a claim code for a camera to be called `name` and registers its hash.
pub async fn start(session: &Session, name: &str) -> Result<StartedClaim, ClientError> {
    let name = check_name(name)?;
    let code = ClaimCode::generate(&session.keys.verifying_key());
    let claim = session
        .api
        .create_claim(&CreateClaimRequest {
            secret_hash: code.secret_hash(),
        })
        .await?;
    let pending = PendingClaim {
        claim_id: claim.claim_id,
        user_id: session.profile.user_id,
        code: code.text(),
        content_identity: Identity::generate().to_secret_string(),
        name,
        expires_at: claim.expires_at,
    };
    files::create_private_dir(&session.dir.claims_dir())?;
    files::write_json(&claim_path(session, claim.claim_id), &pending)?;
    Ok(StartedClaim {
        claim_id: claim.claim_id,
        code,
        expires_at: claim.expires_at,
    })
}

/// Checks one claim once, completing the pairing when a camera has presented the code.
pub async fn poll(session: &Session, claim_id: ClaimId) -> Result<ClaimProgress, ClientError> {
    let path = claim_path(session, claim_id);
    let Some(pending) = files::read_json::<PendingClaim>(&path, "claim file")? else {
        return Ok(ClaimProgress::Gone);
    };
    let open = session.api.claims().await?;
    match open.iter().find(|c| c.claim_id == claim_id) {
        None => {
            files::remove(&path)?;
            Ok(ClaimProgress::Gone)
        }
        Some(Claim { pairing: None, .. }) => Ok(ClaimProgress::Waiting),
        Some(Claim {
            pairing: Some(pairing),
            ..
        }) => finish(session, &pending, pairing)
            .await
            .map(|camera| ClaimProgress::Paired(Box::new(camera))),
    }
}

/// Completes every saved claim of this user that a camera has presented, and drops the
/// files of claims that expired or were withdrawn.
pub async fn tidy(session: &Session) -> Result<ClaimsTidied, ClientError> {
    let mut tidied = ClaimsTidied::default();
    let saved = saved_claims(session)?;
    if saved.is_empty() {
        return Ok(tidied);
    }
    let open = session.api.claims().await?;
    for (path, pending) in saved {
        match open.iter().find(|c| c.claim_id == pending.claim_id) {
            None => {
                files::remove(&path)?;
                tidied.dropped += 1;
            }
            Some(Claim { pairing: None, .. }) => {}
            Some(Claim {
                pairing: Some(pairing),
                ..
            }) => match finish(session, &pending, pairing).await {
                Ok(camera) => tidied.paired.push((pending.name.clone(), camera)),
                Err(e @ ClientError::PairingProofMismatch) => {
                    tidied.refused.push((pending.claim_id, e));
                }
                Err(e) => return Err(e),
            },
        }
    }
    Ok(tidied)
}

/// This user's saved claims, with their paths.
fn saved_claims(session: &Session) -> Result<Vec<(PathBuf, PendingClaim)>, ClientError> {
    let dir = session.dir.claims_dir();
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ClientError::io("cannot read", dir, e)),
    };
    let mut claims = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| ClientError::io("cannot read", &dir, e))?
            .path();
        if path.extension().is_some_and(|ext| ext == "json") {
            if let Some(pending) = files::read_json::<PendingClaim>(&path, "claim file")? {
                if pending.user_id == session.profile.user_id {
                    claims.push((path, pending));
                }
            }
        }
    }
    Ok(claims)
}

/// Verifies the camera's proof and completes the pairing; a wrong proof withdraws the
/// claim, since someone other than the camera has presented it.
async fn finish(
    session: &Session,
    pending: &PendingClaim,
    pairing: &PairingRequest,
) -> Result<CameraInfo, ClientError> {
    let path = claim_path(session, pending.claim_id);
    let code = ClaimCode::parse(&pending.code)?;
    let content = Identity::parse(&pending.content_identity)?;
    let request = match completion(&session.keys, &code, &content, &pending.name, pairing) {
        Ok((_, request)) => request,
        Err(e) => {
            if matches!(e, ClientError::PairingProofMismatch) {
                let _ = session.api.delete_claim(pending.claim_id).await;
                files::remove(&path)?;
            }
            return Err(e);
        }
    };
    let camera = session
        .api
        .complete_claim(pending.claim_id, &request)
        .await?;
    files::remove(&path)?;
    Ok(camera)
}

/// Builds the completion of a pairing: checks the camera's MAC over its device key, then
/// signs the certificate, writes the owner's grant and seals the name.
pub fn completion(
    keys: &UserKeys,
    code: &ClaimCode,
    content: &Identity,
    name: &str,
    pairing: &PairingRequest,
) -> Result<(CameraId, CompleteClaimRequest), ClientError> {
    let device_key = cc_core::b64::decode(&pairing.device_key)
        .ok()
        .and_then(|bytes| verifying_key_from_bytes(&bytes))
        .ok_or(ClientError::PairingProofMismatch)?;
    code.verify_pairing_mac(&device_key, &pairing.mac)
        .map_err(|_| ClientError::PairingProofMismatch)?;
    let camera_id = CameraId::new_v7();
    let certificate = CameraCertificate {
        v: 1,
        camera_id,
        device_key: cc_core::b64::encode(device_key.as_bytes()),
        epoch: 1,
        content_recipient: content.recipient().to_string(),
        owner_key: cc_core::b64::encode(keys.verifying_key().as_bytes()),
        issued_at: Utc::now(),
    };
    let secret = zeroize::Zeroizing::new(content.to_secret_string());
    let request = CompleteClaimRequest {
        certificate: SignedCertificate::sign(&certificate, &keys.signing),
        grant: keys.recipient().encrypt(secret.as_bytes())?,
        name: seal_name(&content.recipient(), 1, name)?,
    };
    Ok((camera_id, request))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::{open_grant, open_name};
    use ed25519_dalek::SigningKey;

    fn presented(code: &ClaimCode, device: &SigningKey) -> PairingRequest {
        PairingRequest {
            secret_hash: code.secret_hash(),
            device_key: cc_core::b64::encode(device.verifying_key().as_bytes()),
            mac: code.pairing_mac(&device.verifying_key()),
        }
    }

    #[test]
    fn an_honest_camera_gets_a_certificate_its_owner_signed() -> Result<(), ClientError> {
        let keys = UserKeys::generate();
        let code = ClaimCode::generate(&keys.verifying_key());
        let content = Identity::generate();
        let device = SigningKey::generate(&mut rand::rngs::OsRng);
        let (camera_id, done) =
            completion(&keys, &code, &content, "Porch", &presented(&code, &device))?;
        let cert = done
            .certificate
            .verify_owner(&keys.verifying_key())
            .map_err(|e| ClientError::Invalid(e.to_string()))?;
        assert_eq!(cert.camera_id, camera_id);
        assert_eq!(
            cert.device_key().ok(),
            Some(device.verifying_key()),
            "the certificate names the presented device key"
        );
        assert_eq!(cert.content_recipient().ok(), Some(content.recipient()));
        let grant = cc_core::api::Grant {
            epoch: 1,
            grant: done.grant,
        };
        let opened = open_grant(&keys.identity, &grant)?;
        assert_eq!(open_name(&opened, &done.name)?, "Porch");
        Ok(())
    }

    #[test]
    fn a_proof_for_another_key_or_code_is_refused() {
        let keys = UserKeys::generate();
        let code = ClaimCode::generate(&keys.verifying_key());
        let content = Identity::generate();
        let device = SigningKey::generate(&mut rand::rngs::OsRng);
        let mut swapped = presented(&code, &device);
        swapped.device_key = cc_core::b64::encode(
            SigningKey::generate(&mut rand::rngs::OsRng)
                .verifying_key()
                .as_bytes(),
        );
        assert!(matches!(
            completion(&keys, &code, &content, "x", &swapped),
            Err(ClientError::PairingProofMismatch)
        ));
        let other_code = ClaimCode::generate(&keys.verifying_key());
        assert!(matches!(
            completion(
                &keys,
                &code,
                &content,
                "x",
                &presented(&other_code, &device)
            ),
            Err(ClientError::PairingProofMismatch)
        ));
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(check_name("  Garage ").ok().as_deref(), Some("Garage"));
        assert!(check_name("   ").is_err());
        assert!(check_name(&"x".repeat(MAX_NAME_CHARS + 1)).is_err());
    }
}
