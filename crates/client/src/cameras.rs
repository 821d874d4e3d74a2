//! The cameras a user is a member of, with their names decrypted and their certificates
//! checked, plus renaming and removal.

use cc_core::api::{CameraInfo, RenameCameraRequest};
use cc_core::certificate::CameraCertificate;
use cc_core::CameraId;

use crate::claims::check_name;
use crate::error::ClientError;
use crate::keyring::{seal_name, Keyring};
use crate::profile::Session;
use crate::trust::{verify_camera, Pins};

/// A camera as the user sees it. Problems with one camera (a certificate that does not
/// verify, a name that cannot be opened) are kept with it rather than hiding the others.
pub struct CameraView {
    pub info: CameraInfo,
    pub name: Result<String, String>,
    pub certificate: Result<CameraCertificate, String>,
}

impl CameraView {
    /// The name to show: the decrypted one, or a marker saying why there is none.
    pub fn display_name(&self) -> String {
        match (&self.certificate, &self.name) {
            (Err(_), _) => "(untrusted camera)".to_owned(),
            (Ok(_), Ok(name)) => name.clone(),
            (Ok(_), Err(_)) => "(name unreadable)".to_owned(),
        }
    }
}

/// Checks a camera's certificate and opens its name.
pub async fn view(
    session: &Session,
    keyring: &mut Keyring,
    pins: &mut Pins,
    info: CameraInfo,
) -> CameraView {
    let certificate =
        verify_camera(&info, &session.keys.verifying_key(), pins).map_err(|e| e.to_string());
    let name = keyring
        .camera_name(
            &session.api,
            &session.keys.identity,
            info.camera_id,
            &info.name,
        )
        .await
        .map_err(|e| e.to_string());
    CameraView {
        info,
        name,
        certificate,
    }
}

/// Every camera of the user (or just `only`), verified and named.
pub async fn list(
    session: &Session,
    keyring: &mut Keyring,
    only: Option<CameraId>,
) -> Result<Vec<CameraView>, ClientError> {
    let infos = match only {
        Some(camera) => vec![session
            .api
            .camera(camera)
            .await
            .map_err(|e| e.about_camera(camera))?],
        None => session.api.cameras().await?,
    };
    let mut pins = Pins::load(session.dir.pins_path())?;
    let mut views = Vec::with_capacity(infos.len());
    for info in infos {
        views.push(view(session, keyring, &mut pins, info).await);
    }
    pins.save()?;
    Ok(views)
}

/// Renames a camera: the new name is sealed to the content recipient of the camera's
/// current, verified certificate.
pub async fn rename(
    session: &Session,
    camera: CameraId,
    name: &str,
) -> Result<CameraInfo, ClientError> {
    let name = check_name(name)?;
    let info = session
        .api
        .camera(camera)
        .await
        .map_err(|e| e.about_camera(camera))?;
    let mut pins = Pins::load(session.dir.pins_path())?;
    let cert = verify_camera(&info, &session.keys.verifying_key(), &mut pins)?;
    pins.save()?;
    if cert.epoch != info.epoch {
        return Err(ClientError::UntrustedCamera {
            camera,
            reason: format!(
                "its certificate is for epoch {} but the camera is at epoch {}",
                cert.epoch, info.epoch
            ),
        });
    }
    let recipient = cert
        .content_recipient()
        .map_err(|e| ClientError::UntrustedCamera {
            camera,
            reason: e.to_string(),
        })?;
    let sealed = seal_name(&recipient, info.epoch, &name)?;
    session
        .api
        .rename_camera(camera, &RenameCameraRequest { name: sealed })
        .await
}

/// Removes a camera with all its events (the server allows this to the owner only).
pub async fn remove(session: &Session, camera: CameraId) -> Result<(), ClientError> {
    session
        .api
        .remove_camera(camera)
        .await
        .map_err(|e| e.about_camera(camera))
}
