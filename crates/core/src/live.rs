//! Live view: short segments (a frame or a few seconds of video) that a camera encrypts to
//! its content recipient and signs, like an event, while someone is watching. The server
//! relays them without storing them; the viewer's client checks each one before showing it.
//!
//! A segment binds its ciphertext to one camera, one epoch, one live stream and a place in
//! it (`seq`) at a capture time. A server that relays another camera's segment, an old
//! segment again, or segments out of order is caught by [`LiveCheck`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::manifest::sha256_hex;
use crate::signed::{Signed, Statement};
use crate::CameraId;

/// Largest segment ciphertext a camera may send; a few hundred kilobytes is a frame of
/// a 1080p JPEG or a second of low-bitrate video.
pub const MAX_SEGMENT_BYTES: usize = 512 * 1024;

/// How far a segment's capture time may be from the viewer's (or the server's) clock: more
/// than this and it is not live but a replay, or the clocks are wrong.
pub const MAX_SKEW: Duration = Duration::from_secs(30);

/// The signed description of one live segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveSegment {
    pub v: u8,
    pub camera_id: CameraId,
    pub epoch: u32,
    /// Random per live session of the camera (hex), so `seq` orders segments within it.
    pub stream: String,
    pub seq: u64,
    pub captured_at: DateTime<Utc>,
    /// What the plaintext is (`image/bmp`, `image/jpeg`, `video/webm`, …).
    pub media_type: String,
    /// SHA-256 (hex) of the ciphertext.
    pub sha256: String,
    pub size: u64,
}

impl Statement for LiveSegment {
    const CONTEXT: &'static [u8] = b"closedcircuit live segment v1";
}

pub type SignedSegment = Signed<LiveSegment>;

/// Why a segment is not the live view of the camera that was asked for.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LiveError {
    #[error("unsupported live segment version {0}")]
    Version(u8),
    #[error("the segment belongs to camera {found}, not {expected}")]
    Camera { expected: CameraId, found: CameraId },
    #[error("the ciphertext does not match the hash in the signed segment")]
    Content,
    #[error("the segment was captured {0} s away from now: not live")]
    NotLive(i64),
    #[error("segment {seq} came after {last}: replayed or out of order")]
    Replayed { seq: u64, last: u64 },
    #[error("the media type is not one a camera sends")]
    MediaType,
}

impl LiveSegment {
    pub const VERSION: u8 = 1;
    /// Media types a camera may declare; a viewer never hands anything else to a decoder.
    pub const MEDIA_TYPES: [&'static str; 4] =
        ["image/bmp", "image/jpeg", "image/png", "video/webm"];

    /// The description of `ciphertext` as the `seq`-th segment of `stream`, captured now
    /// (to the millisecond, the precision JSON round trips keep).
    pub fn describe(
        camera_id: CameraId,
        epoch: u32,
        stream: &str,
        seq: u64,
        media_type: &str,
        ciphertext: &[u8],
    ) -> Self {
        let now = Utc::now();
        Self {
            v: Self::VERSION,
            camera_id,
            epoch,
            stream: stream.to_owned(),
            seq,
            captured_at: DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now),
            media_type: media_type.to_owned(),
            sha256: sha256_hex(ciphertext),
            size: ciphertext.len() as u64,
        }
    }

    /// Checks what any party can check without keys: the version, the camera, the media
    /// type, the ciphertext's hash and that it was captured close to `now`.
    pub fn check(
        &self,
        camera: CameraId,
        ciphertext: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), LiveError> {
        if self.v != Self::VERSION {
            return Err(LiveError::Version(self.v));
        }
        if self.camera_id != camera {
            return Err(LiveError::Camera {
                expected: camera,
                found: self.camera_id,
            });
        }
        if !Self::MEDIA_TYPES.contains(&self.media_type.as_str()) {
            return Err(LiveError::MediaType);
        }
        if ciphertext.len() as u64 != self.size || sha256_hex(ciphertext) != self.sha256 {
            return Err(LiveError::Content);
        }
        let skew = (now - self.captured_at).num_seconds();
        if skew.unsigned_abs() > MAX_SKEW.as_secs() {
            return Err(LiveError::NotLive(skew));
        }
        Ok(())
    }
}

/// What a viewer remembers of the stream it is watching, so a segment can be shown only
/// once and only in order: a segment of a new stream starts it over, anything at or
/// below the last sequence number of the current stream is refused.
#[derive(Debug, Default)]
pub struct LiveCheck {
    last: Option<(String, u64)>,
}

impl LiveCheck {
    /// Checks `segment` (already signature-verified) for `camera` and, if it is new,
    /// remembers it.
    pub fn accept(
        &mut self,
        segment: &LiveSegment,
        camera: CameraId,
        ciphertext: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), LiveError> {
        segment.check(camera, ciphertext, now)?;
        if let Some((stream, last)) = &self.last {
            if *stream == segment.stream && segment.seq <= *last {
                return Err(LiveError::Replayed {
                    seq: segment.seq,
                    last: *last,
                });
            }
        }
        self.last = Some((segment.stream.clone(), segment.seq));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use proptest::prelude::*;

    fn segment(camera: CameraId, seq: u64, ciphertext: &[u8]) -> LiveSegment {
        LiveSegment::describe(camera, 1, "a1", seq, "image/bmp", ciphertext)
    }

    #[test]
    fn a_segment_is_shown_once_in_order_for_its_own_camera() {
        let camera = CameraId::new_v7();
        let mut check = LiveCheck::default();
        let now = Utc::now();
        assert_eq!(
            check.accept(&segment(camera, 1, b"x"), camera, b"x", now),
            Ok(())
        );
        assert!(matches!(
            check.accept(&segment(camera, 1, b"x"), camera, b"x", now),
            Err(LiveError::Replayed { .. })
        ));
        assert_eq!(
            check.accept(&segment(camera, 2, b"y"), camera, b"y", now),
            Ok(())
        );
        let other = CameraId::new_v7();
        assert!(matches!(
            check.accept(&segment(other, 3, b"z"), camera, b"z", now),
            Err(LiveError::Camera { .. })
        ));
        assert_eq!(
            check.accept(&segment(camera, 3, b"z"), camera, b"zz", now),
            Err(LiveError::Content)
        );
        let mut restarted = segment(camera, 1, b"w");
        restarted.stream = "b2".into();
        assert_eq!(check.accept(&restarted, camera, b"w", now), Ok(()));
    }

    #[test]
    fn old_segments_and_unknown_media_types_are_refused() {
        let camera = CameraId::new_v7();
        let mut old = segment(camera, 1, b"x");
        old.captured_at = Utc::now() - chrono::Duration::minutes(5);
        assert!(matches!(
            old.check(camera, b"x", Utc::now()),
            Err(LiveError::NotLive(_))
        ));
        let mut html = segment(camera, 1, b"x");
        html.media_type = "text/html".into();
        assert_eq!(
            html.check(camera, b"x", Utc::now()),
            Err(LiveError::MediaType)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_edit_of_a_signed_segment_breaks_it(at in 0usize..1000, byte in any::<u8>()) {
            let device = SigningKey::generate(&mut rand::rngs::OsRng);
            let signed = SignedSegment::sign(&segment(CameraId::new_v7(), 7, b"c"), &device);
            let mut body = signed.body.clone().into_bytes();
            let at = at % body.len();
            prop_assume!(body[at] != byte);
            body[at] = byte;
            let forged = SignedSegment::from_parts(String::from_utf8_lossy(&body).into_owned(), signed.signature.clone());
            prop_assert!(forged.verify(&device.verifying_key()).is_err());
        }

        #[test]
        fn sequence_numbers_never_go_back(seqs in proptest::collection::vec(0u64..20, 1..40)) {
            let camera = CameraId::new_v7();
            let mut check = LiveCheck::default();
            let mut shown: Vec<u64> = Vec::new();
            for seq in seqs {
                if check.accept(&segment(camera, seq, b"c"), camera, b"c", Utc::now()).is_ok() {
                    shown.push(seq);
                }
            }
            prop_assert!(shown.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
