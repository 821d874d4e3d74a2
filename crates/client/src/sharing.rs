//! Sharing cameras: inviting people (re-encrypting the camera's content keys to them on
//! this machine), accepting invitations (pinning the owner's key), listing members, and
//! removing them, after which the owner's client rotates the camera to a new content key
//! the removed member never gets.

use cc_core::api::{
    CameraInfo, Grant, Invitation, InviteRequest, MemberGrant, Role, RotateRequest, ShareInfo,
    ShareStatus, UserPublic,
};
use cc_core::certificate::{CameraCertificate, SignedCertificate};
use cc_core::envelope::{Identity, Recipient};
use cc_core::phrase::{verification_phrase, PartyKeys};
use cc_core::{CameraId, UserId};
use chrono::{DateTime, Utc};

use crate::error::ClientError;
use crate::keyring::{open_grant, seal_name, Keyring};
use crate::profile::Session;
use crate::trust::{verify_camera, Pins};

/// The verification phrase between the logged-in user and `other`: both read it out (in
/// person or on a call) to be sure their clients use each other's keys.
pub fn phrase_with(session: &Session, other: &UserPublic) -> String {
    let my_recipient = session.keys.recipient().to_string();
    let my_signing = cc_core::b64::encode(session.keys.verifying_key().as_bytes());
    verification_phrase(
        &PartyKeys {
            age_recipient: &my_recipient,
            signing_key: &my_signing,
        },
        &PartyKeys {
            age_recipient: &other.age_recipient,
            signing_key: &other.signing_key,
        },
    )
}

/// Another account's public keys, by email.
pub async fn lookup(session: &Session, email: &str) -> Result<UserPublic, ClientError> {
    session.api.lookup_user(email.trim()).await
}

/// What to share with an invitee.
pub struct InviteOptions {
    pub role: Role,
    /// Share every earlier epoch too (all recorded history), not just the current one.
    pub history: bool,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Invites `invitee` to `camera`: opens the caller's own grants and encrypts the content
/// keys again to the invitee. Returns the epochs shared.
pub async fn invite(
    session: &Session,
    camera: CameraId,
    invitee: &UserPublic,
    options: &InviteOptions,
) -> Result<Vec<u32>, ClientError> {
    let info = session
        .api
        .camera(camera)
        .await
        .map_err(|e| e.about_camera(camera))?;
    let mut pins = Pins::load(session.dir.pins_path())?;
    verify_camera(&info, &session.keys.verifying_key(), &mut pins)?;
    pins.save()?;
    let recipient = Recipient::parse(&invitee.age_recipient)?;
    let own = session.api.grants(camera).await?;
    let grants = reencrypt_grants(
        &session.keys.identity,
        &own,
        &recipient,
        info.epoch,
        options.history,
    )?;
    if !grants.iter().any(|g| g.epoch == info.epoch) {
        return Err(ClientError::NoGrant {
            camera,
            epoch: info.epoch,
        });
    }
    let epochs = grants.iter().map(|g| g.epoch).collect();
    session
        .api
        .invite(
            camera,
            &InviteRequest {
                user_id: invitee.user_id,
                role: options.role,
                expires_at: options.expires_at,
                grants,
            },
        )
        .await
        .map_err(|e| e.about_camera(camera))?;
    Ok(epochs)
}

/// Opens `own` grants with `user` and encrypts each content key again to `to`: only the
/// `current` epoch, or every epoch up to it with `history`.
pub fn reencrypt_grants(
    user: &Identity,
    own: &[Grant],
    to: &Recipient,
    current: u32,
    history: bool,
) -> Result<Vec<Grant>, ClientError> {
    let mut out: Vec<Grant> = Vec::new();
    for grant in own {
        let wanted = if history {
            grant.epoch <= current
        } else {
            grant.epoch == current
        };
        if !wanted || out.iter().any(|g| g.epoch == grant.epoch) {
            continue;
        }
        let content = open_grant(user, grant)?;
        let secret = zeroize::Zeroizing::new(content.to_secret_string());
        out.push(Grant {
            epoch: grant.epoch,
            grant: to.encrypt(secret.as_bytes())?,
        });
    }
    out.sort_by_key(|g| g.epoch);
    Ok(out)
}

/// Invitations addressed to the caller.
pub async fn invitations(session: &Session) -> Result<Vec<Invitation>, ClientError> {
    session.api.invitations().await
}

/// Accepts an invitation, pinning the owner's signing key for the camera first: from now
/// on only certificates signed by that key are believed, whatever the server says.
pub async fn accept(session: &Session, invitation: &Invitation) -> Result<(), ClientError> {
    let camera = invitation.camera_id;
    let mut pins = Pins::load(session.dir.pins_path())?;
    pins.pin(camera, &invitation.owner.signing_key)?;
    session
        .api
        .accept_invitation(camera)
        .await
        .map_err(|e| e.about_camera(camera))?;
    pins.save()
}

/// Members and pending invitations of a camera.
pub async fn shares(session: &Session, camera: CameraId) -> Result<Vec<ShareInfo>, ClientError> {
    session
        .api
        .shares(camera)
        .await
        .map_err(|e| e.about_camera(camera))
}

/// The outcome of removing someone from a camera.
pub struct Revoked {
    pub user: UserPublic,
    /// When the caller owns the camera: the rotation to a new content key, with the new
    /// epoch. The removal itself stands even when the rotation failed (`camera list`
    /// tries again).
    pub rotation: Option<Result<u32, ClientError>>,
}

/// Removes `email` from `camera`; the owner's client then rotates the content key.
pub async fn revoke(
    session: &Session,
    camera: CameraId,
    email: &str,
) -> Result<Revoked, ClientError> {
    let user = lookup(session, email).await?;
    session
        .api
        .revoke_share(camera, user.user_id)
        .await
        .map_err(|e| e.about_camera(camera))?;
    let info = session
        .api
        .camera(camera)
        .await
        .map_err(|e| e.about_camera(camera))?;
    let rotation = if info.role == Role::Owner {
        Some(rotate(session, &info).await)
    } else {
        None
    };
    Ok(Revoked { user, rotation })
}

/// Rotates an owned camera to a new content key: a certificate for the next epoch signed
/// here, a grant for every remaining active member (the owner included), and the name
/// sealed again. Returns the new epoch.
pub async fn rotate(session: &Session, info: &CameraInfo) -> Result<u32, ClientError> {
    let camera = info.camera_id;
    let mut pins = Pins::load(session.dir.pins_path())?;
    let current = verify_camera(info, &session.keys.verifying_key(), &mut pins)?;
    pins.save()?;
    let name = Keyring::new()
        .camera_name(&session.api, &session.keys.identity, camera, &info.name)
        .await?;
    let epoch = info
        .epoch
        .checked_add(1)
        .ok_or_else(|| ClientError::Invalid(format!("camera {camera} has no next epoch")))?;
    let content = Identity::generate();
    let certificate = CameraCertificate {
        v: 1,
        camera_id: camera,
        device_key: current.device_key.clone(),
        epoch,
        content_recipient: content.recipient().to_string(),
        owner_key: cc_core::b64::encode(session.keys.verifying_key().as_bytes()),
        issued_at: Utc::now(),
    };
    let members: Vec<UserPublic> = shares(session, camera)
        .await?
        .into_iter()
        .filter(|m| m.status == ShareStatus::Active)
        .map(|m| m.user)
        .collect();
    let me = (session.profile.user_id, session.keys.recipient());
    let request = RotateRequest {
        certificate: SignedCertificate::sign(&certificate, &session.keys.signing),
        grants: rotation_grants(&content, &members, me)?,
        name: seal_name(&content.recipient(), epoch, &name)?,
    };
    session
        .api
        .rotate(camera, &request)
        .await
        .map_err(|e| e.about_camera(camera))?;
    Ok(epoch)
}

/// The new content key encrypted to the owner `me` and to every one of `members` (the
/// active ones: pending invitees and anyone no longer listed get nothing), once each.
pub fn rotation_grants(
    content: &Identity,
    members: &[UserPublic],
    me: (UserId, Recipient),
) -> Result<Vec<MemberGrant>, ClientError> {
    let secret = zeroize::Zeroizing::new(content.to_secret_string());
    let mut grants = vec![MemberGrant {
        user_id: me.0,
        grant: me.1.encrypt(secret.as_bytes())?,
    }];
    for member in members {
        if grants.iter().any(|g| g.user_id == member.user_id) {
            continue;
        }
        let recipient = Recipient::parse(&member.age_recipient)?;
        grants.push(MemberGrant {
            user_id: member.user_id,
            grant: recipient.encrypt(secret.as_bytes())?,
        });
    }
    Ok(grants)
}

/// A camera rotated because a member was removed without the owner's client present.
pub struct Rotation {
    pub camera: CameraId,
    pub result: Result<u32, ClientError>,
}

/// Rotates every owned camera the server flags with `rotation_needed` (a member removed
/// by an admin, or a guest whose access expired).
pub async fn rotate_pending(session: &Session) -> Result<Vec<Rotation>, ClientError> {
    let mut done = Vec::new();
    for info in session.api.cameras().await? {
        if info.role == Role::Owner && info.rotation_needed {
            done.push(Rotation {
                camera: info.camera_id,
                result: rotate(session, &info).await,
            });
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(user: &Identity, content: &Identity, epoch: u32) -> Result<Grant, ClientError> {
        Ok(Grant {
            epoch,
            grant: user
                .recipient()
                .encrypt(content.to_secret_string().as_bytes())?,
        })
    }

    fn share(status: ShareStatus) -> (Identity, ShareInfo) {
        let id = Identity::generate();
        let info = ShareInfo {
            camera_id: CameraId::new_v7(),
            user: UserPublic {
                user_id: UserId::new_v7(),
                email: "x@example.org".into(),
                age_recipient: id.recipient().to_string(),
                signing_key: String::new(),
            },
            role: Role::Viewer,
            status,
            since: Utc::now(),
            expires_at: None,
        };
        (id, info)
    }

    #[test]
    fn invitees_get_the_current_epoch_or_all_history() -> Result<(), ClientError> {
        let me = Identity::generate();
        let friend = Identity::generate();
        let contents = [Identity::generate(), Identity::generate()];
        let own = vec![grant(&me, &contents[0], 1)?, grant(&me, &contents[1], 2)?];

        let current = reencrypt_grants(&me, &own, &friend.recipient(), 2, false)?;
        assert_eq!(current.len(), 1);
        assert_eq!(current[0].epoch, 2);
        let opened = open_grant(&friend, &current[0])?;
        assert_eq!(opened.recipient(), contents[1].recipient());
        assert!(open_grant(&me, &current[0]).is_err());

        let all = reencrypt_grants(&me, &own, &friend.recipient(), 2, true)?;
        assert_eq!(all.iter().map(|g| g.epoch).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(
            open_grant(&friend, &all[0])?.recipient(),
            contents[0].recipient()
        );
        Ok(())
    }

    #[test]
    fn rotation_grants_go_to_the_members_and_the_owner_once_each() -> Result<(), ClientError> {
        let content = Identity::generate();
        let owner = Identity::generate();
        let owner_id = UserId::new_v7();
        let (active_key, active) = share(ShareStatus::Active);
        let (_, pending) = share(ShareStatus::Pending);
        let mut owner_row = share(ShareStatus::Active).1;
        owner_row.user.user_id = owner_id;
        let members = [owner_row.user, active.user.clone()];
        let grants = rotation_grants(&content, &members, (owner_id, owner.recipient()))?;
        assert_eq!(grants.len(), 2);
        let find = |user: UserId| grants.iter().find(|g| g.user_id == user);
        let to_grant = |g: &MemberGrant| Grant {
            epoch: 2,
            grant: g.grant.clone(),
        };
        let mine = find(owner_id).ok_or(ClientError::Invalid("no owner grant".into()))?;
        assert_eq!(
            open_grant(&owner, &to_grant(mine))?.recipient(),
            content.recipient()
        );
        let theirs =
            find(active.user.user_id).ok_or(ClientError::Invalid("no member grant".into()))?;
        assert_eq!(
            open_grant(&active_key, &to_grant(theirs))?.recipient(),
            content.recipient()
        );
        assert!(find(pending.user.user_id).is_none());
        Ok(())
    }
}
