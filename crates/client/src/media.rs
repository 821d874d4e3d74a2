//! What a camera agent records, before encryption: a synthetic source (generated images
//! and clips carrying a known marker, so tests can prove the server stores only
//! ciphertext) or real image and video files. Also file-type sniffing, so decrypted
//! media gets a sensible extension.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use cc_core::api::{MAX_CLIP_BYTES, MAX_THUMB_BYTES};
use cc_core::EventId;
use tokio::process::Command;

use crate::error::ClientError;

/// The text every synthetic thumbnail and clip carries, followed by a space and the
/// event ID. No byte sequence of it may ever reach the server's storage in the clear.
pub const SYNTHETIC_MARKER: &str = "CLOSEDCIRCUIT-SYNTHETIC-MARKER";

/// The marker as embedded in one event's media.
pub fn synthetic_marker(event: EventId) -> String {
    format!("{SYNTHETIC_MARKER} {event}")
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

/// Size of a synthetic clip when no real video can be made.
const RAW_CLIP_BYTES: usize = 128 * 1024;

/// A synthetic clip without a video encoder: the marker, then bytes that vary per event,
/// then the marker again.
fn raw_clip(event: EventId, marker: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(RAW_CLIP_BYTES + 2 * marker.len() + 64);
    out.extend_from_slice(b"Closed Circuit synthetic clip\n");
    out.extend_from_slice(marker);
    out.push(b'\n');
    let mut state = event.uuid().as_u128() as u64 | 1;
    while out.len() < RAW_CLIP_BYTES {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.extend_from_slice(marker);
    out
}

/// Appends an MP4 `free` box holding the marker; players skip `free` boxes.
fn with_free_box(mut mp4: Vec<u8>, marker: &[u8]) -> Vec<u8> {
    mp4.extend_from_slice(&u32_le(8 + marker.len()));
    mp4.extend_from_slice(b"free");
    mp4.extend_from_slice(marker);
    mp4
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

/// A 2-second test-pattern MP4 with the marker in its comment, made once per run.
async fn ffmpeg_test_clip() -> Result<Vec<u8>, ClientError> {
    let comment = format!("comment={SYNTHETIC_MARKER}");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=duration=2:size=640x360:rate=25",
        "-c:v",
        "mpeg4",
        "-q:v",
        "2",
        "-metadata",
        &comment,
        "-movflags",
        "frag_keyframe+empty_moov",
        "-f",
        "mp4",
        "pipe:1",
    ])
    .await
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
    /// Generated media with the marker; `video` is a real MP4 when ffmpeg is available.
    Synthetic { video: Option<Vec<u8>>, count: u8 },
    /// Image and video files, used in turn.
    Files {
        files: Vec<SourceFile>,
        next: usize,
        ffmpeg: bool,
    },
}

impl Source {
    /// The synthetic source; renders a real test clip once if ffmpeg is on PATH.
    pub async fn synthetic() -> Self {
        let video = if ffmpeg_available().await {
            match ffmpeg_test_clip().await {
                Ok(clip) => Some(clip),
                Err(e) => {
                    tracing::warn!("using raw synthetic clips: {e}");
                    None
                }
            }
        } else {
            None
        };
        Source(SourceKind::Synthetic { video, count: 0 })
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
            SourceKind::Synthetic { video, count } => {
                *count = count.wrapping_add(23);
                let marker = synthetic_marker(event);
                let thumb = synthetic_bmp(64, 36, *count, marker.as_bytes());
                let clip = match video {
                    Some(mp4) => with_free_box(mp4.clone(), marker.as_bytes()),
                    None => raw_clip(event, marker.as_bytes()),
                };
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
        let mut source = Source(SourceKind::Synthetic {
            video: None,
            count: 0,
        });
        let event = EventId::new_v7();
        let media = source.next(event).await?;
        let marker = synthetic_marker(event);
        assert!(contains(&media.thumb, marker.as_bytes()));
        assert!(contains(&media.clip, marker.as_bytes()));
        assert!((64 * 1024..=256 * 1024).contains(&media.clip.len()));

        let mut video = Source(SourceKind::Synthetic {
            video: Some(b"\0\0\0\x18ftypisom\0\0\0\0isomiso2".to_vec()),
            count: 0,
        });
        let clip = video.next(event).await?.clip;
        assert_eq!(sniff_extension(&clip), "mp4");
        assert!(contains(&clip, marker.as_bytes()));
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
