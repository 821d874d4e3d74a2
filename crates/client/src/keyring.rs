//! Camera content keys, opened from the user's grants. Each grant is an age file holding
//! one epoch's content identity, encrypted to the user; the keyring fetches a camera's
//! grants once and opens them on demand.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use cc_core::api::{Grant, SealedName};
use cc_core::envelope::Identity;
use cc_core::CameraId;

use crate::api::Api;
use crate::error::ClientError;

/// The user's grants per camera, fetched lazily.
#[derive(Default)]
pub struct Keyring {
    grants: HashMap<CameraId, Vec<Grant>>,
}

impl Keyring {
    pub fn new() -> Self {
        Self::default()
    }

    /// The user's grant (still encrypted) for one epoch of a camera.
    pub async fn grant(
        &mut self,
        api: &Api,
        camera: CameraId,
        epoch: u32,
    ) -> Result<Grant, ClientError> {
        let grants = match self.grants.entry(camera) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(unknown) => unknown.insert(api.grants(camera).await?),
        };
        grants
            .iter()
            .find(|g| g.epoch == epoch)
            .cloned()
            .ok_or(ClientError::NoGrant { camera, epoch })
    }

    /// The content identity of one epoch of a camera.
    pub async fn content_identity(
        &mut self,
        api: &Api,
        user: &Identity,
        camera: CameraId,
        epoch: u32,
    ) -> Result<Identity, ClientError> {
        let grant = self.grant(api, camera, epoch).await?;
        open_grant(user, &grant)
    }

    /// Decrypts a camera's sealed name.
    pub async fn camera_name(
        &mut self,
        api: &Api,
        user: &Identity,
        camera: CameraId,
        name: &SealedName,
    ) -> Result<String, ClientError> {
        let content = self.content_identity(api, user, camera, name.epoch).await?;
        open_name(&content, name)
    }
}

/// Opens a grant with the user's identity.
pub fn open_grant(user: &Identity, grant: &Grant) -> Result<Identity, ClientError> {
    let secret = zeroize::Zeroizing::new(user.decrypt(&grant.grant)?);
    let text = std::str::from_utf8(&secret)
        .map_err(|_| ClientError::Invalid("a camera grant does not hold an age identity".into()))?;
    Ok(Identity::parse(text)?)
}

/// Decrypts a sealed camera name with the epoch's content identity.
pub fn open_name(content: &Identity, name: &SealedName) -> Result<String, ClientError> {
    let bytes = content.decrypt(&name.ciphertext)?;
    String::from_utf8(bytes)
        .map_err(|_| ClientError::Invalid("a camera name is not valid UTF-8".into()))
}

/// Seals a camera name to the epoch's content recipient, so only members read it.
pub fn seal_name(
    recipient: &cc_core::envelope::Recipient,
    epoch: u32,
    name: &str,
) -> Result<SealedName, ClientError> {
    Ok(SealedName {
        epoch,
        ciphertext: recipient.encrypt(name.as_bytes())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_and_names_open_with_the_right_keys_only() -> Result<(), ClientError> {
        let user = Identity::generate();
        let content = Identity::generate();
        let grant = Grant {
            epoch: 1,
            grant: user
                .recipient()
                .encrypt(content.to_secret_string().as_bytes())?,
        };
        let opened = open_grant(&user, &grant)?;
        assert_eq!(opened.recipient(), content.recipient());
        assert!(open_grant(&Identity::generate(), &grant).is_err());

        let name = seal_name(&content.recipient(), 1, "Front door")?;
        assert_eq!(open_name(&opened, &name)?, "Front door");
        assert!(open_name(&Identity::generate(), &name).is_err());
        Ok(())
    }
}
