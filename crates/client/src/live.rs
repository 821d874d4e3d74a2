//! Watching a camera live. Each segment the server relays is checked before it is shown:
//! the device's signature (key from the owner-signed certificate), the camera it names,
//! its hash, that it was captured just now and comes after the last one shown; then it
//! is decrypted with the member's grant for its epoch. A segment that fails is reported,
//! never shown.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use cc_core::api::LiveFrame;
use cc_core::envelope::Identity;
use cc_core::live::{LiveCheck, LiveSegment};
use cc_core::CameraId;
use chrono::{DateTime, Utc};
use ed25519_dalek::VerifyingKey;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;

use crate::cameras;
use crate::error::ClientError;
use crate::keyring::Keyring;
use crate::profile::Session;
use crate::sse::{SseMessage, SseParser};

/// A camera sends a segment every half second or so; this much silence means it stopped
/// (or the connection died) and the view should say so.
const SILENCE: Duration = Duration::from_secs(20);

/// Largest SSE message accepted: a segment's base64 plus its statement.
const MAX_MESSAGE: usize = 1024 * 1024;

/// A decrypted, verified live segment.
pub struct LiveImage {
    pub seq: u64,
    pub captured_at: DateTime<Utc>,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

/// What happened next on a live view.
pub enum LiveEvent {
    Image(LiveImage),
    /// A segment that did not check out, with the reason; nothing of it is shown.
    Rejected(String),
    /// The server skipped this many segments because we fell behind.
    Lagged(u64),
    /// Nothing arrived for a while: the camera is offline or not streaming.
    Silent(Duration),
}

/// An open live view of one camera.
pub struct LiveViewer<'a> {
    session: &'a Session,
    camera: CameraId,
    name: String,
    device_key: VerifyingKey,
    keyring: Keyring,
    identities: HashMap<u32, Identity>,
    check: LiveCheck,
    parser: SseParser,
    body: Option<BoxStream<'static, reqwest::Result<Bytes>>>,
    pending: VecDeque<SseMessage>,
}

impl<'a> LiveViewer<'a> {
    /// Checks the camera's certificate, then opens its live view (which asks the camera
    /// to start streaming).
    pub async fn open(session: &'a Session, camera: CameraId) -> Result<Self, ClientError> {
        let mut keyring = Keyring::new();
        let view = cameras::list(session, &mut keyring, Some(camera))
            .await?
            .into_iter()
            .next()
            .ok_or(ClientError::CameraNotFound(camera))?;
        let name = view.display_name();
        let certificate = view
            .certificate
            .map_err(|reason| ClientError::UntrustedCamera { camera, reason })?;
        let device_key = certificate
            .device_key()
            .map_err(|e| ClientError::UntrustedCamera {
                camera,
                reason: e.to_string(),
            })?;
        let response = session
            .api
            .live_stream(camera)
            .await
            .map_err(|e| e.about_camera(camera))?;
        Ok(Self {
            session,
            camera,
            name,
            device_key,
            keyring,
            identities: HashMap::new(),
            check: LiveCheck::default(),
            parser: SseParser::new(MAX_MESSAGE),
            body: Some(response.bytes_stream().boxed()),
            pending: VecDeque::new(),
        })
    }

    /// The camera's name, decrypted.
    pub fn camera_name(&self) -> &str {
        &self.name
    }

    /// The next thing to show; `None` when the server ended the view (the camera was
    /// removed, access ended, or the server went away).
    pub async fn next(&mut self) -> Result<Option<LiveEvent>, ClientError> {
        loop {
            if let Some(message) = self.pending.pop_front() {
                match message.event.as_str() {
                    "segment" => return Ok(Some(self.open_segment(&message.data).await)),
                    "lagged" => {
                        let missed = message.data.trim().parse().unwrap_or_default();
                        return Ok(Some(LiveEvent::Lagged(missed)));
                    }
                    _ => continue,
                }
            }
            let Some(body) = self.body.as_mut() else {
                return Ok(None);
            };
            match tokio::time::timeout(SILENCE, body.next()).await {
                Ok(Some(Ok(chunk))) => {
                    let messages = self
                        .parser
                        .push(&chunk)
                        .map_err(|e| ClientError::Invalid(e.to_string()))?;
                    self.pending.extend(messages);
                }
                Ok(Some(Err(_)) | None) => {
                    self.body = None;
                    return Ok(None);
                }
                Err(_) => return Ok(Some(LiveEvent::Silent(SILENCE))),
            }
        }
    }

    async fn open_segment(&mut self, data: &str) -> LiveEvent {
        let frame = match serde_json::from_str::<LiveFrame>(data) {
            Ok(frame) => frame,
            Err(e) => return LiveEvent::Rejected(format!("not a live segment: {e}")),
        };
        let (segment, ciphertext) = match verify_frame(
            &frame,
            self.camera,
            &self.device_key,
            &mut self.check,
            Utc::now(),
        ) {
            Ok(checked) => checked,
            Err(reason) => return LiveEvent::Rejected(reason),
        };
        let identity = match self.identity(segment.epoch).await {
            Ok(identity) => identity,
            Err(e) => return LiveEvent::Rejected(e.to_string()),
        };
        match identity.decrypt(&ciphertext) {
            Ok(bytes) => LiveEvent::Image(LiveImage {
                seq: segment.seq,
                captured_at: segment.captured_at,
                media_type: segment.media_type,
                bytes,
            }),
            Err(e) => LiveEvent::Rejected(format!("the segment does not decrypt: {e}")),
        }
    }

    /// The content identity of one epoch, opened once from the member's grant.
    async fn identity(&mut self, epoch: u32) -> Result<&Identity, ClientError> {
        if !self.identities.contains_key(&epoch) {
            let identity = self
                .keyring
                .content_identity(
                    &self.session.api,
                    &self.session.keys.identity,
                    self.camera,
                    epoch,
                )
                .await?;
            self.identities.insert(epoch, identity);
        }
        self.identities.get(&epoch).ok_or(ClientError::NoGrant {
            camera: self.camera,
            epoch,
        })
    }
}

/// Everything about a relayed frame that can be checked before decrypting: the device's
/// signature, then [`LiveCheck`] (camera, media type, hash, freshness, order).
pub fn verify_frame(
    frame: &LiveFrame,
    camera: CameraId,
    device_key: &VerifyingKey,
    check: &mut LiveCheck,
    now: DateTime<Utc>,
) -> Result<(LiveSegment, Vec<u8>), String> {
    let segment = frame
        .segment
        .verify(device_key)
        .map_err(|e| format!("the segment's signature does not verify: {e}"))?;
    let ciphertext = cc_core::b64::decode(&frame.ciphertext)
        .map_err(|_| "the segment's ciphertext is not base64".to_owned())?;
    check
        .accept(&segment, camera, &ciphertext, now)
        .map_err(|e| e.to_string())?;
    Ok((segment, ciphertext))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cc_core::live::SignedSegment;
    use ed25519_dalek::SigningKey;

    fn frame(camera: CameraId, seq: u64, device: &SigningKey) -> LiveFrame {
        let ciphertext = Identity::generate()
            .recipient()
            .encrypt(b"frame")
            .unwrap_or_default();
        let segment = LiveSegment::describe(camera, 1, "s", seq, "image/bmp", &ciphertext);
        LiveFrame {
            segment: SignedSegment::sign(&segment, device),
            ciphertext: cc_core::b64::encode(&ciphertext),
        }
    }

    #[test]
    fn a_lying_relay_is_caught() {
        let (camera, other) = (CameraId::new_v7(), CameraId::new_v7());
        let device = SigningKey::generate(&mut rand::rngs::OsRng);
        let stranger = SigningKey::generate(&mut rand::rngs::OsRng);
        let key = device.verifying_key();
        let mut check = LiveCheck::default();
        let now = Utc::now();
        let first = frame(camera, 1, &device);
        assert!(verify_frame(&first, camera, &key, &mut check, now).is_ok());
        // The same segment again: a replay.
        assert!(verify_frame(&first, camera, &key, &mut check, now).is_err());
        // Another camera's segment, even one signed by this very device key.
        assert!(verify_frame(&frame(other, 2, &device), camera, &key, &mut check, now).is_err());
        // A segment signed by another device.
        assert!(verify_frame(&frame(camera, 3, &stranger), camera, &key, &mut check, now).is_err());
        // Ciphertext swapped under a valid statement.
        let mut swapped = frame(camera, 4, &device);
        swapped.ciphertext = frame(camera, 4, &device).ciphertext;
        assert!(verify_frame(&swapped, camera, &key, &mut check, now).is_err());
        // Hours later it is no longer live.
        let later = now + chrono::Duration::hours(2);
        assert!(verify_frame(&frame(camera, 5, &device), camera, &key, &mut check, later).is_err());
        assert!(verify_frame(&frame(camera, 6, &device), camera, &key, &mut check, now).is_ok());
    }
}
