//! Handing a camera to a new owner. The camera and every member trust exactly one owner
//! key, learned at pairing or when accepting a share; a transfer statement signed by
//! that key names the next owner's key and the epoch from which it signs certificates.
//! Following the chain of such statements is the only way an owner key may change, so
//! a server cannot slip its own key in: it would need the current owner's signature.

use chrono::{DateTime, Utc};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::keys::verifying_key_from_bytes;
use crate::signed::{SignatureError, Signed, Statement};
use crate::{CameraId, UserId};

/// "The camera `camera_id` now belongs to `to_user`, whose key is `to_key`, from
/// content-key epoch `epoch` on", signed by the owner key `from_key`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnershipTransfer {
    pub v: u8,
    pub camera_id: CameraId,
    /// The current owner's Ed25519 key (base64), which signs this statement.
    pub from_key: String,
    pub to_user: UserId,
    /// The new owner's Ed25519 key (base64), which signs certificates from `epoch` on.
    pub to_key: String,
    /// The first content-key epoch under the new owner.
    pub epoch: u32,
    pub issued_at: DateTime<Utc>,
}

impl Statement for OwnershipTransfer {
    const CONTEXT: &'static [u8] = b"closedcircuit ownership transfer v1";
}

pub type SignedTransfer = Signed<OwnershipTransfer>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TransferError {
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("a transfer statement names key material that is not well-formed")]
    BadKey,
    #[error("a transfer statement is for camera {0}")]
    OtherCamera(CameraId),
    #[error("a transfer statement is not signed by the camera's owner of that time")]
    NotFromOwner,
    #[error("a transfer statement goes back to epoch {epoch}, not after epoch {after}")]
    OutOfOrder { epoch: u32, after: u32 },
}

impl OwnershipTransfer {
    pub fn to_key(&self) -> Result<VerifyingKey, TransferError> {
        decode_key(&self.to_key)
    }
}

fn decode_key(b64: &str) -> Result<VerifyingKey, TransferError> {
    crate::b64::decode(b64)
        .ok()
        .and_then(|bytes| verifying_key_from_bytes(&bytes))
        .ok_or(TransferError::BadKey)
}

/// An owner key reached by following transfers, and the first epoch it may sign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pub key: VerifyingKey,
    pub since: u32,
}

/// The owner key to trust for `camera` now: starting from `trusted`, the key pinned
/// while the camera was at epoch `since`, each statement in `chain` must be signed by
/// the key reached so far, name this camera, and move to a later epoch. Statements
/// from before `since` are history the holder already followed and are skipped, so a
/// server replaying an old statement cannot move anyone back.
pub fn follow(
    camera: CameraId,
    trusted: VerifyingKey,
    since: u32,
    chain: &[SignedTransfer],
) -> Result<Owner, TransferError> {
    let mut key = trusted;
    let mut after = since;
    for signed in chain {
        let peeked = signed.peek()?;
        if peeked.epoch <= since {
            continue;
        }
        let statement = signed
            .verify(&key)
            .map_err(|_| TransferError::NotFromOwner)?;
        if statement.camera_id != camera {
            return Err(TransferError::OtherCamera(statement.camera_id));
        }
        if statement.from_key != crate::b64::encode(key.as_bytes()) {
            return Err(TransferError::NotFromOwner);
        }
        if statement.epoch <= after {
            return Err(TransferError::OutOfOrder {
                epoch: statement.epoch,
                after,
            });
        }
        key = statement.to_key()?;
        after = statement.epoch;
    }
    Ok(Owner { key, since: after })
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use proptest::prelude::*;

    use super::*;

    fn key() -> SigningKey {
        SigningKey::generate(&mut rand::rngs::OsRng)
    }

    fn statement(
        camera: CameraId,
        from: &SigningKey,
        to: &SigningKey,
        epoch: u32,
    ) -> SignedTransfer {
        let transfer = OwnershipTransfer {
            v: 1,
            camera_id: camera,
            from_key: crate::b64::encode(from.verifying_key().as_bytes()),
            to_user: UserId::new_v7(),
            to_key: crate::b64::encode(to.verifying_key().as_bytes()),
            epoch,
            issued_at: Utc::now(),
        };
        SignedTransfer::sign(&transfer, from)
    }

    #[test]
    fn a_chain_from_the_pinned_owner_moves_the_trust() -> Result<(), TransferError> {
        let camera = CameraId::new_v7();
        let (a, b, c) = (key(), key(), key());
        let chain = [statement(camera, &a, &b, 3), statement(camera, &b, &c, 5)];
        let reached = |key: &SigningKey, since| Owner {
            key: key.verifying_key(),
            since,
        };
        assert_eq!(
            follow(camera, a.verifying_key(), 1, &chain)?,
            reached(&c, 5)
        );
        assert_eq!(
            follow(camera, b.verifying_key(), 3, &chain)?,
            reached(&c, 5)
        );
        assert_eq!(
            follow(camera, c.verifying_key(), 5, &chain)?,
            reached(&c, 5)
        );
        assert_eq!(follow(camera, a.verifying_key(), 1, &[])?, reached(&a, 1));
        Ok(())
    }

    #[test]
    fn a_statement_the_server_signed_itself_is_refused() {
        let camera = CameraId::new_v7();
        let (owner, server) = (key(), key());
        let forged = statement(camera, &server, &server, 2);
        assert_eq!(
            follow(camera, owner.verifying_key(), 1, &[forged]),
            Err(TransferError::NotFromOwner)
        );
    }

    #[test]
    fn a_statement_for_another_camera_is_refused() {
        let (owner, next) = (key(), key());
        let camera = CameraId::new_v7();
        let elsewhere = statement(CameraId::new_v7(), &owner, &next, 2);
        assert!(matches!(
            follow(camera, owner.verifying_key(), 1, &[elsewhere]),
            Err(TransferError::OtherCamera(_))
        ));
    }

    #[test]
    fn an_old_transfer_cannot_move_the_trust_back() -> Result<(), TransferError> {
        let camera = CameraId::new_v7();
        let (a, b) = (key(), key());
        let chain = [statement(camera, &a, &b, 2), statement(camera, &b, &a, 4)];
        // A holder at epoch 4 trusts `a` again; replaying the first statement is ignored.
        let replayed = follow(camera, a.verifying_key(), 4, &chain[..1])?;
        assert_eq!(replayed.key, a.verifying_key());
        let backwards = [statement(camera, &a, &b, 6), statement(camera, &b, &a, 6)];
        assert!(matches!(
            follow(camera, a.verifying_key(), 1, &backwards),
            Err(TransferError::OutOfOrder { .. })
        ));
        Ok(())
    }

    proptest! {
        #[test]
        fn any_flipped_byte_breaks_the_chain(index in 0usize..64, bit in 0u8..8) {
            let camera = CameraId::new_v7();
            let (a, b) = (key(), key());
            let good = statement(camera, &a, &b, 2);
            let mut signature = crate::b64::decode(&good.signature).unwrap_or_default();
            if let Some(byte) = signature.get_mut(index) {
                *byte ^= 1 << bit;
            }
            let bad = SignedTransfer::from_parts(good.body.clone(), crate::b64::encode(&signature));
            prop_assert!(follow(camera, a.verifying_key(), 1, &[bad]).is_err());
        }
    }
}
