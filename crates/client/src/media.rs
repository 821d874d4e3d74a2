//! What a camera agent records, before encryption: a synthetic source (generated images
//! and clips carrying a known marker, so tests can prove the server stores only
//! ciphertext) or real image and video files. Also file-type sniffing, so decrypted
//! media gets a sensible extension.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use cc_core::api::{MAX_CLIP_BYTES, MAX_THUMB_BYTES};
use cc_core::live::MAX_SEGMENT_BYTES;
use cc_core::{CameraId, EventId};
use tokio::process::Command;

use crate::error::ClientError;

/// The text every synthetic thumbnail and clip carries, followed by a space and the
/// event ID. No byte sequence of it may ever reach the server's storage in the clear.
pub const SYNTHETIC_MARKER: &str = "CLOSEDCIRCUIT-SYNTHETIC-MARKER";

/// The marker as embedded in one event's media.
pub fn synthetic_marker(event: EventId) -> String {
    format!("{SYNTHETIC_MARKER} {event}")
}

/// The marker as embedded in one live-view frame of a synthetic camera.
pub fn live_marker(camera: CameraId, seq: u64) -> String {
    format!("{SYNTHETIC_MARKER} live {camera} {seq}")
}

/// Room left for the age header and framing when a plaintext must fit a ciphertext limit.
const ENCRYPTION_OVERHEAD: u64 = 64 * 1024;
const FFMPEG_TIMEOUT: Duration = Duration::from_secs(60);

/// One event's media, in the clear.
pub struct Media {
    pub thumb: Vec<u8>,
    pub clip: Vec<u8>,
    pub duration_ms: u32,
}

/// A file extension for decrypted media, from its first bytes.
pub fn sniff_extension(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "jpg"
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        "png"
    } else if bytes.len() >= 26 && bytes.starts_with(b"BM") {
        "bmp"
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        "gif"
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        "webp"
    } else if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        if &bytes[8..12] == b"qt  " {
            "mov"
        } else {
            "mp4"
        }
    } else if bytes.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        "webm"
    } else {
        "bin"
    }
}

/// A small, valid 24-bit BMP: a colour gradient shifted by `seed`, with `marker` stored
/// between the headers and the pixels (where viewers skip it).
pub fn synthetic_bmp(width: u16, height: u16, seed: u8, marker: &[u8]) -> Vec<u8> {
    let (w, h) = (usize::from(width), usize::from(height));
    let row = (w * 3).div_ceil(4) * 4;
    let pixels = row * h;
    let offset = 54 + marker.len();
    let size = offset + pixels;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(b"BM");
    out.extend_from_slice(&u32_le(size));
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&u32_le(offset));
    out.extend_from_slice(&40u32.to_le_bytes());
    out.extend_from_slice(&i32::from(width).to_le_bytes());
    out.extend_from_slice(&i32::from(height).to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&24u16.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&u32_le(pixels));
    out.extend_from_slice(&2835u32.to_le_bytes());
    out.extend_from_slice(&2835u32.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(marker);
    for y in 0..h {
        let start = out.len();
        for x in 0..w {
            let blue = scale(y, h).wrapping_add(seed);
            let green = scale(x + y, w + h);
            let red = scale(x, w).wrapping_sub(seed);
            out.extend_from_slice(&[blue, green, red]);
        }
        out.resize(start + row, 0);
    }
    out
}

fn u32_le(n: usize) -> [u8; 4] {
    u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes()
}

/// `i` of `n` as a byte, 0..=255.
fn scale(i: usize, n: usize) -> u8 {
    u8::try_from(i * 255 / n.max(1)).unwrap_or(u8::MAX)
}

/// The synthetic clip: a real two-second test-pattern WebM (VP8, 320×180), so browsers
/// and players can decode what a simulated camera sends without any encoder installed.
const SYNTHETIC_WEBM: &[u8] = include_bytes!("../assets/synthetic-clip.webm");

/// The EBML IDs of a Matroska file's header, its Segment and a Void element.
const EBML_HEADER: [u8; 4] = [0x1A, 0x45, 0xDF, 0xA3];
const SEGMENT: [u8; 4] = [0x18, 0x53, 0x80, 0x67];
const VOID: u8 = 0xEC;

/// Reads an EBML variable-length size: (its length in bytes, its value).
fn ebml_size(bytes: &[u8]) -> Option<(usize, u64)> {
    let first = *bytes.first()?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 {
        return None;
    }
    let mut value = u64::from(first) & (0xFF >> len);
    for b in bytes.get(1..len)? {
        value = (value << 8) | u64::from(*b);
    }
    Some((len, value))
}

/// Where the 8-byte size of the Segment sits, when the Segment runs to the end of the file.
fn segment_size_field(webm: &[u8]) -> Option<usize> {
    if webm.get(..4)? != EBML_HEADER {
        return None;
    }
    let (len, size) = ebml_size(webm.get(4..)?)?;
    let segment = 4 + len + usize::try_from(size).ok()?;
    let field = segment + 4;
    let (len, size) = ebml_size(webm.get(field..)?)?;
    let runs_to_end = usize::try_from(size).is_ok_and(|s| field + len + s == webm.len());
    (webm.get(segment..field)? == SEGMENT && len == 8 && runs_to_end).then_some(field)
}

/// Appends a Void element holding the marker inside the WebM's Segment (its size grows
/// to match), so the file stays valid Matroska and players skip the marker.
fn with_void_element(webm: &[u8], marker: &[u8]) -> Vec<u8> {
    let mut void = vec![VOID, 0x01, 0, 0, 0, 0, 0, 0, 0];
    void[3..].copy_from_slice(&(marker.len() as u64).to_be_bytes()[2..]);
    void.extend_from_slice(marker);
    let mut out = webm.to_vec();
    if let Some(field) = segment_size_field(webm) {
        if let Some((_, size)) = ebml_size(&webm[field..]) {
            let grown = (size + void.len() as u64).to_be_bytes();
            out[field + 1..field + 8].copy_from_slice(&grown[1..]);
        }
    }
    out.extend_from_slice(&void);
    out
}

/// Whether `ffmpeg` can be run.
pub async fn ffmpeg_available() -> bool {
    Command::new("ffmpeg")
        .arg("-version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .status()
        .await
        .is_ok_and(|status| status.success())
}

/// Runs ffmpeg with `args` and returns what it wrote to stdout.
async fn ffmpeg(args: &[&str]) -> Result<Vec<u8>, ClientError> {
    let failed = |detail: String| ClientError::Invalid(format!("ffmpeg failed: {detail}"));
    let run = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(FFMPEG_TIMEOUT, run)
        .await
        .map_err(|_| failed("timed out".into()))?
        .map_err(|e| failed(e.to_string()))?;
    if !output.status.success() || output.stdout.is_empty() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(failed(stderr.trim().chars().take(300).collect()));
    }
    Ok(output.stdout)
}

/// The first frame of a video, as JPEG.
async fn first_frame(path: &Path) -> Result<Vec<u8>, ClientError> {
    let input = path.to_string_lossy();
    ffmpeg(&[
        "-i",
        &input,
        "-frames:v",
        "1",
        "-f",
        "image2pipe",
        "-vcodec",
        "mjpeg",
        "-",
    ])
    .await
}

/// What kind of file a source file is, by its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Image,
    Video,
}

impl FileKind {
    pub fn of(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "jpg" | "jpeg" | "png" | "bmp" | "gif" | "webp" => Some(Self::Image),
            "mp4" | "webm" | "mkv" | "mov" => Some(Self::Video),
            _ => None,
        }
    }
}

struct SourceFile {
    path: PathBuf,
    kind: FileKind,
    /// A video's first frame, extracted once.
    thumb: Option<Vec<u8>>,
}

/// Where an agent's events come from.
pub struct Source(SourceKind);

enum SourceKind {
    /// Generated images and the sample clip, each carrying the event's marker.
    Synthetic { count: u8 },
    /// Image and video files, used in turn.
    Files {
        files: Vec<SourceFile>,
        next: usize,
        ffmpeg: bool,
    },
}

impl Source {
    /// The synthetic source: generated thumbnails and the embedded sample clip.
    pub fn synthetic() -> Self {
        Source(SourceKind::Synthetic { count: 0 })
    }

    /// A source cycling through `paths`, which are checked now rather than mid-run.
    pub async fn files(paths: Vec<PathBuf>) -> Result<Self, ClientError> {
        if paths.is_empty() {
            return Err(ClientError::Invalid("no source files given".into()));
        }
        let mut files = Vec::with_capacity(paths.len());
        for path in paths {
            let kind = FileKind::of(&path).ok_or_else(|| {
                ClientError::Invalid(format!(
                    "{}: not a supported image (jpg, png, bmp, gif, webp) or video (mp4, webm, mkv, mov)",
                    path.display()
                ))
            })?;
            let meta = tokio::fs::metadata(&path)
                .await
                .map_err(|e| ClientError::io("cannot read", &path, e))?;
            if meta.len() + ENCRYPTION_OVERHEAD > MAX_CLIP_BYTES {
                return Err(ClientError::Invalid(format!(
                    "{}: larger than the {} MiB an event may carry",
                    path.display(),
                    MAX_CLIP_BYTES / (1024 * 1024)
                )));
            }
            files.push(SourceFile {
                path,
                kind,
                thumb: None,
            });
        }
        Ok(Source(SourceKind::Files {
            files,
            next: 0,
            ffmpeg: ffmpeg_available().await,
        }))
    }

    /// The media of the next event.
    pub async fn next(&mut self, event: EventId) -> Result<Media, ClientError> {
        match &mut self.0 {
            SourceKind::Synthetic { count } => {
                *count = count.wrapping_add(23);
                let marker = synthetic_marker(event);
                let thumb = synthetic_bmp(64, 36, *count, marker.as_bytes());
                let clip = with_void_element(SYNTHETIC_WEBM, marker.as_bytes());
                Ok(Media {
                    thumb,
                    clip,
                    duration_ms: 2000,
                })
            }
            SourceKind::Files {
                files,
                next,
                ffmpeg,
            } => {
                let index = *next % files.len().max(1);
                *next = index + 1;
                let Some(file) = files.get_mut(index) else {
                    return Err(ClientError::Invalid("no source files given".into()));
                };
                let bytes = tokio::fs::read(&file.path)
                    .await
                    .map_err(|e| ClientError::io("cannot read", &file.path, e))?;
                let thumb = match file.kind {
                    FileKind::Image
                        if (bytes.len() as u64) + ENCRYPTION_OVERHEAD <= MAX_THUMB_BYTES =>
                    {
                        bytes.clone()
                    }
                    FileKind::Image => synthetic_bmp(64, 36, 0, b""),
                    FileKind::Video => video_thumb(file, *ffmpeg).await,
                };
                Ok(Media {
                    thumb,
                    clip: bytes,
                    duration_ms: 0,
                })
            }
        }
    }
}

impl Source {
    /// One live-view frame and its media type. The synthetic source draws a picture
    /// carrying the marker, the camera and the frame's number; a file source shows the
    /// picture of its first file (a video's first frame), or a plain one if that is not a
    /// JPEG, PNG or BMP small enough to relay.
    pub async fn live_frame(
        &mut self,
        camera: CameraId,
        seq: u64,
    ) -> Result<(&'static str, Vec<u8>), ClientError> {
        let (files, ffmpeg) = match &mut self.0 {
            SourceKind::Synthetic { .. } => {
                let marker = live_marker(camera, seq);
                let shade = u8::try_from(seq % 256).unwrap_or_default();
                return Ok((
                    "image/bmp",
                    synthetic_bmp(160, 90, shade, marker.as_bytes()),
                ));
            }
            SourceKind::Files { files, ffmpeg, .. } => (files, *ffmpeg),
        };
        let Some(file) = files.first_mut() else {
            return Err(ClientError::Invalid("no source files given".into()));
        };
        let picture = match file.kind {
            FileKind::Video => video_thumb(file, ffmpeg).await,
            FileKind::Image => match &file.thumb {
                Some(picture) => picture.clone(),
                None => {
                    let bytes = tokio::fs::read(&file.path)
                        .await
                        .map_err(|e| ClientError::io("cannot read", &file.path, e))?;
                    file.thumb = Some(bytes.clone());
                    bytes
                }
            },
        };
        let media_type = match sniff_extension(&picture) {
            "jpg" => "image/jpeg",
            "png" => "image/png",
            "bmp" => "image/bmp",
            _ => "",
        };
        if media_type.is_empty()
            || picture.len() as u64 + ENCRYPTION_OVERHEAD > MAX_SEGMENT_BYTES as u64
        {
            return Ok(("image/bmp", synthetic_bmp(160, 90, 0, b"")));
        }
        Ok((media_type, picture))
    }
}

/// A video's first frame when ffmpeg can extract it, else a plain generated image.
async fn video_thumb(file: &mut SourceFile, ffmpeg: bool) -> Vec<u8> {
    if file.thumb.is_none() && ffmpeg {
        match first_frame(&file.path).await {
            Ok(frame) if (frame.len() as u64) + ENCRYPTION_OVERHEAD <= MAX_THUMB_BYTES => {
                file.thumb = Some(frame);
            }
            Ok(_) => tracing::warn!(
                "{}: first frame too large for a thumbnail",
                file.path.display()
            ),
            Err(e) => tracing::warn!("{}: {e}", file.path.display()),
        }
    }
    file.thumb
        .clone()
        .unwrap_or_else(|| synthetic_bmp(64, 36, 0, b""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn synthetic_bmp_is_a_valid_bitmap_with_the_marker() {
        let marker = b"CLOSEDCIRCUIT-SYNTHETIC-MARKER x";
        let bmp = synthetic_bmp(64, 36, 7, marker);
        assert_eq!(sniff_extension(&bmp), "bmp");
        let field =
            |at: usize| u32::from_le_bytes([bmp[at], bmp[at + 1], bmp[at + 2], bmp[at + 3]]);
        assert_eq!(field(2) as usize, bmp.len());
        assert_eq!(field(10) as usize, 54 + marker.len());
        assert_eq!(field(14), 40);
        assert_eq!((field(18), field(22)), (64, 36));
        assert_eq!(bmp.len(), 54 + marker.len() + 64 * 3 * 36);
        assert!(contains(&bmp, marker));
        let odd = synthetic_bmp(5, 3, 0, b"");
        assert_eq!(odd.len(), 54 + 16 * 3, "rows are padded to four bytes");
    }

    #[tokio::test]
    async fn synthetic_media_carries_the_event_marker() -> Result<(), ClientError> {
        let mut source = Source::synthetic();
        let event = EventId::new_v7();
        let media = source.next(event).await?;
        let marker = synthetic_marker(event);
        assert!(contains(&media.thumb, marker.as_bytes()));
        assert!(contains(&media.clip, marker.as_bytes()));
        assert_eq!(sniff_extension(&media.clip), "webm");
        let field = segment_size_field(SYNTHETIC_WEBM);
        assert!(
            field.is_some(),
            "the sample's Segment runs to the end of the file"
        );
        assert_eq!(
            segment_size_field(&media.clip),
            field,
            "the marker sits inside the Segment, whose size grew to hold it"
        );
        Ok(())
    }

    #[tokio::test]
    async fn file_sources_are_checked_up_front_and_cycled() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let a = dir.path().join("a.png");
        let b = dir.path().join("b.JPG");
        std::fs::write(&a, b"\x89PNG\r\n\x1a\nA")?;
        std::fs::write(&b, b"\xFF\xD8\xFFB")?;
        assert!(Source::files(vec![dir.path().join("c.txt")]).await.is_err());
        assert!(Source::files(vec![dir.path().join("missing.png")])
            .await
            .is_err());
        let mut source = Source::files(vec![a, b]).await?;
        let mut clips = Vec::new();
        for _ in 0..3 {
            let media = source.next(EventId::new_v7()).await?;
            assert_eq!(media.thumb, media.clip);
            clips.push(sniff_extension(&media.clip));
        }
        assert_eq!(clips, vec!["png", "jpg", "png"]);
        Ok(())
    }

    #[test]
    fn sniffs_common_formats() {
        assert_eq!(sniff_extension(b"\xFF\xD8\xFF\xE0rest"), "jpg");
        assert_eq!(sniff_extension(b"\x89PNG\r\n\x1a\n...."), "png");
        assert_eq!(sniff_extension(b"\0\0\0\x20ftypisom...."), "mp4");
        assert_eq!(sniff_extension(b"\0\0\0\x14ftypqt  ...."), "mov");
        assert_eq!(sniff_extension(b"\x1A\x45\xDF\xA3...."), "webm");
        assert_eq!(sniff_extension(b"GIF89a..."), "gif");
        assert_eq!(sniff_extension(b"RIFF\0\0\0\0WEBPVP8 "), "webp");
        assert_eq!(sniff_extension(b"BM"), "bin");
        assert_eq!(sniff_extension(b""), "bin");
        assert_eq!(sniff_extension(b"hello world"), "bin");
    }

    proptest! {
        #[test]
        fn sniffing_never_panics_and_is_a_known_extension(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let ext = sniff_extension(&bytes);
            prop_assert!(["jpg", "png", "bmp", "gif", "webp", "mp4", "mov", "webm", "bin"].contains(&ext));
        }

        #[test]
        fn a_known_magic_wins_over_any_tail(tail in proptest::collection::vec(any::<u8>(), 0..64)) {
            let jpeg = [&[0xFF, 0xD8, 0xFF][..], &tail].concat();
            prop_assert_eq!(sniff_extension(&jpeg), "jpg");
            let bmp = synthetic_bmp(2, 2, 0, &tail);
            prop_assert_eq!(sniff_extension(&bmp), "bmp");
        }
    }
}
