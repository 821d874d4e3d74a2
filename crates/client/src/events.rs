//! Listing, verifying and opening events (DESIGN I2). Before anything is shown, the
//! manifest must verify with the device key from the owner-signed certificate, name the
//! camera and event that were asked for, and match the ciphertexts' hashes; a mismatch is
//! an error, never someone else's picture.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cc_core::api::{EventInfo, EventQuery, MAX_CLIP_BYTES, MAX_PAGE, MAX_THUMB_BYTES};
use cc_core::certificate::{CameraCertificate, SignedCertificate};
use cc_core::manifest::{EventKind, Manifest, SignedManifest};
use cc_core::{CameraId, EventId};
use chrono::{DateTime, Utc};

use crate::cameras::{self, CameraView};
use crate::error::ClientError;
use crate::files;
use crate::keyring::{open_grant, Keyring};
use crate::media::sniff_extension;
use crate::profile::Session;

/// An event as listed, with the outcome of verifying its manifest. Failures are shown,
/// not hidden.
pub struct EventView {
    pub info: EventInfo,
    pub camera_name: String,
    pub verified: Result<Manifest, String>,
}

/// Verifies a listed event against its camera's certificate: the device's signature,
/// the camera and event it names, and that the server's metadata says the same (times
/// to the millisecond, the precision the server keeps).
pub fn verify_listed(
    cert: &CameraCertificate,
    camera: CameraId,
    event: EventId,
    info: &EventInfo,
) -> Result<Manifest, String> {
    let device_key = cert.device_key().map_err(|e| e.to_string())?;
    let manifest = info
        .manifest
        .verify(&device_key)
        .map_err(|e| format!("the manifest signature does not verify: {e}"))?;
    manifest
        .check_identity(camera, event)
        .map_err(|e| e.to_string())?;
    let agrees = info.camera_id == camera
        && info.event_id == event
        && info.kind == manifest.kind
        && info.started_at.timestamp_millis() == manifest.started_at.timestamp_millis()
        && info.duration_ms == manifest.duration_ms
        && info.epoch == manifest.epoch
        && info.thumb_size == manifest.thumb_size
        && info.clip_size == manifest.clip_size;
    if !agrees {
        return Err(
            "the server's description of the event differs from the signed manifest".into(),
        );
    }
    Ok(manifest)
}

/// Which events to list.
#[derive(Clone, Debug)]
pub struct ListOptions {
    pub camera: Option<CameraId>,
    pub kind: Option<EventKind>,
    pub since: Option<DateTime<Utc>>,
    pub limit: u32,
}

/// The newest events across the user's cameras, newest first, each verified.
pub async fn list(session: &Session, options: &ListOptions) -> Result<Vec<EventView>, ClientError> {
    let mut keyring = Keyring::new();
    let cameras = cameras::list(session, &mut keyring, options.camera).await?;
    let mut views = Vec::new();
    for camera in &cameras {
        for info in camera_events(session, camera.info.camera_id, options).await? {
            let verified = match &camera.certificate {
                Ok(cert) => verify_listed(cert, camera.info.camera_id, info.event_id, &info),
                Err(e) => Err(e.clone()),
            };
            views.push(EventView {
                info,
                camera_name: camera.display_name(),
                verified,
            });
        }
    }
    views.sort_by(|a, b| {
        (b.info.started_at, b.info.event_id).cmp(&(a.info.started_at, a.info.event_id))
    });
    views.truncate(options.limit as usize);
    Ok(views)
}

/// Up to `options.limit` newest events of one camera, following the cursor.
async fn camera_events(
    session: &Session,
    camera: CameraId,
    options: &ListOptions,
) -> Result<Vec<EventInfo>, ClientError> {
    let wanted = options.limit as usize;
    let mut events = Vec::new();
    let mut before = None;
    while events.len() < wanted {
        let page_size = (wanted - events.len()).min(MAX_PAGE as usize) as u32;
        let page = session
            .api
            .events(
                camera,
                &EventQuery {
                    kind: options.kind,
                    since: options.since,
                    before: before.take(),
                    limit: Some(page_size),
                },
            )
            .await?;
        let empty = page.events.is_empty();
        events.extend(page.events);
        match page.next_cursor {
            Some(cursor) if !empty => before = Some(cursor),
            _ => break,
        }
    }
    events.truncate(wanted);
    Ok(events)
}

/// An event whose signature, identity and hashes all checked out, still encrypted.
pub struct VerifiedEvent {
    pub camera: CameraView,
    pub certificate: SignedCertificate,
    pub signed: SignedManifest,
    pub manifest: Manifest,
    pub thumb: Vec<u8>,
    pub clip: Vec<u8>,
}

/// Finds the event (on the given camera, or on any of the user's cameras), downloads its
/// ciphertexts and verifies everything. Any failure is [`ClientError::Unverified`].
pub async fn fetch_verified(
    session: &Session,
    keyring: &mut Keyring,
    camera: Option<CameraId>,
    event: EventId,
) -> Result<VerifiedEvent, ClientError> {
    let (camera, info) = locate(session, keyring, camera, event).await?;
    let camera_id = camera.info.camera_id;
    let unverified = |reason: String| ClientError::Unverified {
        camera: camera_id,
        event,
        reason,
    };
    let cert = camera.certificate.clone().map_err(unverified)?;
    let manifest = verify_listed(&cert, camera_id, event, &info).map_err(unverified)?;
    if manifest.thumb_size > MAX_THUMB_BYTES || manifest.clip_size > MAX_CLIP_BYTES {
        return Err(unverified(
            "the signed sizes exceed the API's limits".into(),
        ));
    }
    let thumb = session
        .api
        .thumb(camera_id, event, manifest.thumb_size)
        .await?;
    let clip = session
        .api
        .clip(camera_id, event, manifest.clip_size)
        .await?;
    manifest
        .check_thumb(&thumb)
        .and_then(|()| manifest.check_clip(&clip))
        .map_err(|e| unverified(e.to_string()))?;
    Ok(VerifiedEvent {
        certificate: camera.info.certificate.clone(),
        camera,
        signed: info.manifest,
        manifest,
        thumb,
        clip,
    })
}

/// The camera holding the event, and the event's metadata.
async fn locate(
    session: &Session,
    keyring: &mut Keyring,
    camera: Option<CameraId>,
    event: EventId,
) -> Result<(CameraView, EventInfo), ClientError> {
    for view in cameras::list(session, keyring, camera).await? {
        match session.api.event(view.info.camera_id, event).await {
            Ok(info) => return Ok((view, info)),
            Err(e) if e.problem_code() == Some("not_found") && camera.is_none() => continue,
            Err(e) if e.problem_code() == Some("not_found") => {
                return Err(ClientError::EventNotFound(event))
            }
            Err(e) => return Err(e),
        }
    }
    Err(ClientError::EventNotFound(event))
}

/// A verified event, decrypted.
pub struct OpenedEvent {
    pub camera: CameraView,
    pub manifest: Manifest,
    pub thumb: Vec<u8>,
    pub clip: Vec<u8>,
}

/// Fetches, verifies and decrypts an event.
pub async fn open(
    session: &Session,
    camera: Option<CameraId>,
    event: EventId,
) -> Result<OpenedEvent, ClientError> {
    let mut keyring = Keyring::new();
    let verified = fetch_verified(session, &mut keyring, camera, event).await?;
    let camera_id = verified.camera.info.camera_id;
    let content = keyring
        .content_identity(
            &session.api,
            &session.keys.identity,
            camera_id,
            verified.manifest.epoch,
        )
        .await?;
    let undecryptable = |what: &str| ClientError::Unverified {
        camera: camera_id,
        event,
        reason: format!(
            "the {what} cannot be decrypted with your key for epoch {}",
            verified.manifest.epoch
        ),
    };
    let thumb = content
        .decrypt(&verified.thumb)
        .map_err(|_| undecryptable("thumbnail"))?;
    let clip = content
        .decrypt(&verified.clip)
        .map_err(|_| undecryptable("clip"))?;
    Ok(OpenedEvent {
        camera: verified.camera,
        manifest: verified.manifest,
        thumb,
        clip,
    })
}

/// Writes a decrypted event as `<event_id>.thumb.<ext>` and `<event_id>.clip.<ext>`.
pub fn write_opened(dir: &Path, opened: &OpenedEvent) -> Result<Vec<PathBuf>, ClientError> {
    files::create_private_dir(dir)?;
    let event = opened.manifest.event_id;
    let thumb = dir.join(format!("{event}.thumb.{}", sniff_extension(&opened.thumb)));
    let clip = dir.join(format!("{event}.clip.{}", sniff_extension(&opened.clip)));
    files::write_private(&thumb, &opened.thumb)?;
    files::write_private(&clip, &opened.clip)?;
    Ok(vec![thumb, clip])
}

/// Fetches and verifies an event and writes it exactly as stored, for auditing with the
/// standard `age` tool: `thumb.age`, `clip.age`, `grant.age` (the user's grant for the
/// event's epoch), `manifest.json` and `certificate.json` in `dir/<event_id>/`.
pub async fn export_raw(
    session: &Session,
    camera: Option<CameraId>,
    event: EventId,
    dir: &Path,
) -> Result<Vec<PathBuf>, ClientError> {
    let mut keyring = Keyring::new();
    let verified = fetch_verified(session, &mut keyring, camera, event).await?;
    let camera_id = verified.camera.info.camera_id;
    let grant = keyring
        .grant(&session.api, camera_id, verified.manifest.epoch)
        .await?;
    open_grant(&session.keys.identity, &grant).map_err(|_| ClientError::Unverified {
        camera: camera_id,
        event,
        reason: format!(
            "your grant for epoch {} cannot be opened with your key",
            verified.manifest.epoch
        ),
    })?;
    let out = dir.join(event.to_string());
    files::create_private_dir(&out)?;
    let written: Vec<(&str, Vec<u8>)> = vec![
        ("thumb.age", verified.thumb),
        ("clip.age", verified.clip),
        ("grant.age", grant.grant),
        ("manifest.json", pretty_json(&verified.signed)?),
        ("certificate.json", pretty_json(&verified.certificate)?),
    ];
    let mut paths = Vec::with_capacity(written.len());
    for (name, bytes) in written {
        let path = out.join(name);
        files::write_private(&path, &bytes)?;
        paths.push(path);
    }
    Ok(paths)
}

/// Pretty JSON of the signed statements written by [`export_raw`].
fn pretty_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, ClientError> {
    serde_json::to_vec_pretty(value)
        .map_err(|e| ClientError::Invalid(format!("cannot encode JSON: {e}")))
}

/// Verifies events arriving one at a time (e.g. from the live stream), fetching each
/// camera's certificate once.
pub struct StreamVerifier {
    keyring: Keyring,
    cameras: HashMap<CameraId, CameraView>,
}

impl Default for StreamVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamVerifier {
    pub fn new() -> Self {
        Self {
            keyring: Keyring::new(),
            cameras: HashMap::new(),
        }
    }

    /// Verifies one event announced for `info.camera_id`.
    pub async fn verify(&mut self, session: &Session, info: EventInfo) -> EventView {
        let camera_id = info.camera_id;
        if !self.cameras.contains_key(&camera_id) {
            match cameras::list(session, &mut self.keyring, Some(camera_id)).await {
                Ok(views) => {
                    for view in views {
                        self.cameras.insert(view.info.camera_id, view);
                    }
                }
                Err(e) => {
                    return EventView {
                        info,
                        camera_name: "(unknown camera)".into(),
                        verified: Err(format!("cannot look up camera {camera_id}: {e}")),
                    }
                }
            }
        }
        let Some(camera) = self.cameras.get(&camera_id) else {
            return EventView {
                info,
                camera_name: "(unknown camera)".into(),
                verified: Err(format!("camera {camera_id} is not one of yours")),
            };
        };
        let verified = match &camera.certificate {
            Ok(cert) => verify_listed(cert, camera_id, info.event_id, &info),
            Err(e) => Err(e.clone()),
        };
        EventView {
            camera_name: camera.display_name(),
            info,
            verified,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cc_core::envelope::Identity;
    use cc_core::manifest::sha256_hex;
    use ed25519_dalek::SigningKey;

    struct Fixture {
        device: SigningKey,
        cert: CameraCertificate,
        manifest: Manifest,
    }

    fn fixture() -> Fixture {
        let device = SigningKey::generate(&mut rand::rngs::OsRng);
        let camera_id = CameraId::new_v7();
        let cert = CameraCertificate {
            v: 1,
            camera_id,
            device_key: cc_core::b64::encode(device.verifying_key().as_bytes()),
            epoch: 1,
            content_recipient: Identity::generate().recipient().to_string(),
            owner_key: String::new(),
            issued_at: Utc::now(),
        };
        let manifest = Manifest {
            v: 1,
            camera_id,
            event_id: EventId::new_v7(),
            epoch: 1,
            kind: EventKind::Motion,
            started_at: Utc::now(),
            duration_ms: 2000,
            thumb_sha256: sha256_hex(b"t"),
            thumb_size: 1,
            clip_sha256: sha256_hex(b"c"),
            clip_size: 1,
        };
        Fixture {
            device,
            cert,
            manifest,
        }
    }

    fn info(manifest: &Manifest, signer: &SigningKey) -> EventInfo {
        EventInfo {
            event_id: manifest.event_id,
            camera_id: manifest.camera_id,
            kind: manifest.kind,
            started_at: manifest.started_at,
            duration_ms: manifest.duration_ms,
            epoch: manifest.epoch,
            thumb_size: manifest.thumb_size,
            clip_size: manifest.clip_size,
            received_at: Utc::now(),
            manifest: SignedManifest::sign(manifest, signer),
        }
    }

    #[test]
    fn an_honest_event_verifies() {
        let f = fixture();
        let info = info(&f.manifest, &f.device);
        let got = verify_listed(&f.cert, f.manifest.camera_id, f.manifest.event_id, &info);
        assert_eq!(got.ok(), Some(f.manifest));
    }

    #[test]
    fn another_device_or_another_event_does_not_verify() {
        let f = fixture();
        let stranger = SigningKey::generate(&mut rand::rngs::OsRng);
        let forged = info(&f.manifest, &stranger);
        assert!(
            verify_listed(&f.cert, f.manifest.camera_id, f.manifest.event_id, &forged).is_err()
        );

        let honest = info(&f.manifest, &f.device);
        assert!(verify_listed(&f.cert, f.manifest.camera_id, EventId::new_v7(), &honest).is_err());
        assert!(verify_listed(&f.cert, CameraId::new_v7(), f.manifest.event_id, &honest).is_err());
    }

    #[test]
    fn metadata_that_disagrees_with_the_manifest_is_flagged() {
        let f = fixture();
        let mut relabelled = info(&f.manifest, &f.device);
        relabelled.kind = EventKind::Person;
        let got = verify_listed(
            &f.cert,
            f.manifest.camera_id,
            f.manifest.event_id,
            &relabelled,
        );
        assert!(got.is_err());
    }
}
