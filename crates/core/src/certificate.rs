//! The camera certificate: the owner's signature binding a camera ID to its device key
//! and to the recipient its media is encrypted to. Clients trust a camera's manifests
//! only through a certificate signed by the owner's key, so the server cannot swap keys.

use chrono::{DateTime, Utc};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::envelope::Recipient;
use crate::keys::verifying_key_from_bytes;
use crate::signed::{SignatureError, Signed, Statement};
use crate::CameraId;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CameraCertificate {
    pub v: u8,
    pub camera_id: CameraId,
    /// The camera's Ed25519 device key (base64), which signs its manifests.
    pub device_key: String,
    /// The content-key epoch this certificate introduces.
    pub epoch: u32,
    /// The age recipient (`age1…`) the camera encrypts this epoch's media to.
    pub content_recipient: String,
    /// The owner's Ed25519 key (base64) that signed this certificate.
    pub owner_key: String,
    pub issued_at: DateTime<Utc>,
}

impl Statement for CameraCertificate {
    const CONTEXT: &'static [u8] = b"closedcircuit camera certificate v1";
}

pub type SignedCertificate = Signed<CameraCertificate>;

#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("the certificate names key material that is not well-formed")]
    BadKey,
    #[error("the certificate is signed by a key other than the camera owner's")]
    WrongOwner,
}

impl CameraCertificate {
    pub fn device_key(&self) -> Result<VerifyingKey, CertificateError> {
        let bytes = crate::b64::decode(&self.device_key).map_err(|_| CertificateError::BadKey)?;
        verifying_key_from_bytes(&bytes).ok_or(CertificateError::BadKey)
    }

    pub fn content_recipient(&self) -> Result<Recipient, CertificateError> {
        Recipient::parse(&self.content_recipient).map_err(|_| CertificateError::BadKey)
    }
}

impl SignedCertificate {
    /// Verifies that `owner` signed this certificate and that it names `owner` inside.
    pub fn verify_owner(
        &self,
        owner: &VerifyingKey,
    ) -> Result<CameraCertificate, CertificateError> {
        let cert = self.verify(owner)?;
        if cert.owner_key != crate::b64::encode(owner.as_bytes()) {
            return Err(CertificateError::WrongOwner);
        }
        cert.device_key()?;
        cert.content_recipient()?;
        Ok(cert)
    }
}
