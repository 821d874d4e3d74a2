//! Handing a camera to a new owner. The owner's client signs a transfer statement naming
//! the recipient's key and encrypts every epoch's content key to them, so the recordings
//! go with the camera. The recipient's client checks the statement against the owner's
//! key (whose verification phrase they compare), then rotates the camera to a content
//! key of its own under a certificate it signs; the previous owner keeps nothing after
//! that epoch. The camera and the other members follow the signed statement to the new
//! key on their own.

use cc_core::api::{Role, RotateRequest, TransferOffer, TransferRequest, UserPublic};
use cc_core::certificate::{CameraCertificate, SignedCertificate};
use cc_core::envelope::{Identity, Recipient};
use cc_core::keys::verifying_key_from_bytes;
use cc_core::transfer::{OwnershipTransfer, SignedTransfer};
use cc_core::CameraId;
use chrono::Utc;

use crate::error::ClientError;
use crate::keyring::{open_grant, open_name, seal_name};
use crate::profile::Session;
use crate::sharing::{reencrypt_grants, rotation_grants};
use crate::trust::{verify_camera, Pins};

/// Offers `camera` (which the caller owns) to `to`. Returns how many key epochs of
/// recordings go with it.
pub async fn offer(
    session: &Session,
    camera: CameraId,
    to: &UserPublic,
) -> Result<usize, ClientError> {
    let info = session
        .api
        .camera(camera)
        .await
        .map_err(|e| e.about_camera(camera))?;
    if info.role != Role::Owner {
        return Err(ClientError::Invalid(format!(
            "only the owner can transfer camera {camera}"
        )));
    }
    if to.user_id == session.profile.user_id {
        return Err(ClientError::Invalid(format!(
            "you already own camera {camera}"
        )));
    }
    let mut pins = Pins::load(session.dir.pins_path())?;
    verify_camera(&info, &session.keys.verifying_key(), &mut pins)?;
    let recipient = Recipient::parse(&to.age_recipient)?;
    let own = session.api.grants(camera).await?;
    let grants = reencrypt_grants(&session.keys.identity, &own, &recipient, info.epoch, true)?;
    let epoch = info
        .epoch
        .checked_add(1)
        .ok_or_else(|| ClientError::Invalid(format!("camera {camera} has no next epoch")))?;
    let statement = OwnershipTransfer {
        v: 1,
        camera_id: camera,
        from_key: cc_core::b64::encode(session.keys.verifying_key().as_bytes()),
        to_user: to.user_id,
        to_key: to.signing_key.clone(),
        epoch,
        issued_at: Utc::now(),
    };
    let request = TransferRequest {
        transfer: SignedTransfer::sign(&statement, &session.keys.signing),
        grants,
    };
    session
        .api
        .offer_transfer(camera, &request)
        .await
        .map_err(|e| e.about_camera(camera))?;
    Ok(request.grants.len())
}

/// Withdraws a pending offer.
pub async fn cancel(session: &Session, camera: CameraId) -> Result<(), ClientError> {
    session
        .api
        .cancel_transfer(camera)
        .await
        .map_err(|e| e.about_camera(camera))
}

/// Cameras offered to the caller.
pub async fn offers(session: &Session) -> Result<Vec<TransferOffer>, ClientError> {
    session.api.transfer_offers().await
}

/// What accepting an offer checked and produced.
pub struct Accepted {
    pub name: String,
    pub epoch: u32,
}

/// Takes over an offered camera: checks that its current owner signed both the transfer
/// to the caller's key and the current certificate, opens the offered keys, and rotates
/// the camera to a new content key for the caller and the members who stay.
pub async fn accept(session: &Session, offer: &TransferOffer) -> Result<Accepted, ClientError> {
    let camera = offer.camera_id;
    let me = cc_core::b64::encode(session.keys.verifying_key().as_bytes());
    let (statement, current) = check_offer(offer, &me)?;
    let untrusted = |reason: &str| ClientError::UntrustedCamera {
        camera,
        reason: reason.to_owned(),
    };
    let current_grant = offer
        .grants
        .iter()
        .find(|g| g.epoch == current.epoch)
        .ok_or(ClientError::NoGrant {
            camera,
            epoch: current.epoch,
        })?;
    let content = open_grant(&session.keys.identity, current_grant)?;
    if content.recipient().to_string() != current.content_recipient {
        return Err(untrusted(
            "the offered key is not the one its certificate names",
        ));
    }
    let name_key = match offer.name.epoch {
        epoch if epoch == current.epoch => content,
        epoch => {
            let grant = offer
                .grants
                .iter()
                .find(|g| g.epoch == epoch)
                .ok_or(ClientError::NoGrant { camera, epoch })?;
            open_grant(&session.keys.identity, grant)?
        }
    };
    let name = open_name(&name_key, &offer.name)?;
    let next = Identity::generate();
    let certificate = CameraCertificate {
        v: 1,
        camera_id: camera,
        device_key: current.device_key.clone(),
        epoch: statement.epoch,
        content_recipient: next.recipient().to_string(),
        owner_key: me,
        issued_at: Utc::now(),
    };
    let request = RotateRequest {
        certificate: SignedCertificate::sign(&certificate, &session.keys.signing),
        grants: rotation_grants(
            &next,
            &offer.members,
            (session.profile.user_id, session.keys.recipient()),
        )?,
        name: seal_name(&next.recipient(), statement.epoch, &name)?,
    };
    session
        .api
        .accept_transfer(camera, &request)
        .await
        .map_err(|e| e.about_camera(camera))?;
    Ok(Accepted {
        name,
        epoch: statement.epoch,
    })
}

/// The offer's statement and current certificate, both signed by the offering owner,
/// naming this camera, the caller's key (`me`) and the epoch after the current one.
fn check_offer(
    offer: &TransferOffer,
    me: &str,
) -> Result<(OwnershipTransfer, CameraCertificate), ClientError> {
    let camera = offer.camera_id;
    let untrusted = |reason: String| ClientError::UntrustedCamera { camera, reason };
    let from = cc_core::b64::decode(&offer.from.signing_key)
        .ok()
        .and_then(|bytes| verifying_key_from_bytes(&bytes))
        .ok_or_else(|| untrusted("the offering owner's key is malformed".into()))?;
    let statement = offer
        .transfer
        .verify(&from)
        .map_err(|e| untrusted(format!("the transfer does not verify: {e}")))?;
    if statement.camera_id != camera || statement.to_key != me {
        return Err(untrusted(
            "the transfer names another camera or another recipient key".into(),
        ));
    }
    let current = offer
        .certificate
        .verify_owner(&from)
        .map_err(|e| untrusted(format!("its certificate does not verify: {e}")))?;
    if current.camera_id != camera || current.epoch.checked_add(1) != Some(statement.epoch) {
        return Err(untrusted(
            "the transfer and the certificate do not belong together".into(),
        ));
    }
    Ok((statement, current))
}

#[cfg(test)]
mod tests {
    use cc_core::api::SealedName;
    use cc_core::keys::UserKeys;
    use cc_core::UserId;

    use super::*;

    fn offer(owner: &UserKeys, to: &UserKeys, to_key_signer: &UserKeys) -> TransferOffer {
        let camera = CameraId::new_v7();
        let cert = CameraCertificate {
            v: 1,
            camera_id: camera,
            device_key: cc_core::b64::encode(to.verifying_key().as_bytes()),
            epoch: 4,
            content_recipient: Identity::generate().recipient().to_string(),
            owner_key: cc_core::b64::encode(owner.verifying_key().as_bytes()),
            issued_at: Utc::now(),
        };
        let statement = OwnershipTransfer {
            v: 1,
            camera_id: camera,
            from_key: cert.owner_key.clone(),
            to_user: UserId::new_v7(),
            to_key: cc_core::b64::encode(to_key_signer.verifying_key().as_bytes()),
            epoch: 5,
            issued_at: Utc::now(),
        };
        TransferOffer {
            camera_id: camera,
            from: UserPublic {
                user_id: UserId::new_v7(),
                email: "owner@example.org".into(),
                age_recipient: owner.recipient().to_string(),
                signing_key: cert.owner_key.clone(),
            },
            transfer: SignedTransfer::sign(&statement, &owner.signing),
            certificate: SignedCertificate::sign(&cert, &owner.signing),
            name: SealedName {
                epoch: 4,
                ciphertext: Vec::new(),
            },
            grants: Vec::new(),
            members: Vec::new(),
            created_at: Utc::now(),
        }
    }

    fn key_of(keys: &UserKeys) -> String {
        cc_core::b64::encode(keys.verifying_key().as_bytes())
    }

    #[test]
    fn an_offer_signed_by_its_owner_for_my_key_is_taken() -> Result<(), ClientError> {
        let (owner, me) = (UserKeys::generate(), UserKeys::generate());
        let (statement, current) = check_offer(&offer(&owner, &me, &me), &key_of(&me))?;
        assert_eq!((statement.epoch, current.epoch), (5, 4));
        Ok(())
    }

    #[test]
    fn an_offer_for_another_key_or_from_another_signer_is_refused() {
        let (owner, me, server) = (
            UserKeys::generate(),
            UserKeys::generate(),
            UserKeys::generate(),
        );
        let for_server = offer(&owner, &me, &server);
        assert!(check_offer(&for_server, &key_of(&me)).is_err());

        let mut forged = offer(&owner, &me, &me);
        forged.from.signing_key = key_of(&server);
        assert!(check_offer(&forged, &key_of(&me)).is_err());

        let mut other_camera = offer(&owner, &me, &me);
        other_camera.camera_id = CameraId::new_v7();
        assert!(check_offer(&other_camera, &key_of(&me)).is_err());
    }
}
