//! Ciphertext blob storage. The default keeps files under the data directory and makes
//! every write durable (temp file, fsync, rename, fsync of the directory) before an
//! upload is acknowledged (DESIGN I5). [`S3Blobs`] keeps them in an S3-compatible object
//! store for nodes that share nothing else on disk.

mod s3;

pub use s3::{S3Blobs, S3Config};

use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use cc_core::{CameraId, EventId};

/// Where one blob lives. Built only from typed IDs and a content hash, so a key can
/// never escape its camera's prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobKey(String);

/// The prefix every media blob lives under.
pub const MEDIA_ROOT: &str = "cameras";

/// One stored blob, as a listing reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// The key as stored; [`BlobKey::parse_media`] turns it back into a typed key.
    pub key: String,
    /// Last write, in milliseconds since the Unix epoch.
    pub modified_ms: i64,
}

/// Which of an event's two media objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaObject {
    Thumb,
    Clip,
}

impl MediaObject {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaObject::Thumb => "thumb",
            MediaObject::Clip => "clip",
        }
    }
}

impl BlobKey {
    /// Content-addressed, so concurrent retries of one event never overwrite each other
    /// with different bytes.
    pub fn media(camera: CameraId, event: EventId, object: MediaObject, sha256_hex: &str) -> Self {
        let hash: String = sha256_hex.chars().filter(char::is_ascii_hexdigit).collect();
        Self(format!(
            "{}/{event}/{hash}.{}",
            Self::camera_prefix(camera),
            object.as_str()
        ))
    }

    pub fn camera_prefix(camera: CameraId) -> String {
        format!("{MEDIA_ROOT}/{camera}")
    }

    /// Reads back a key that [`BlobKey::media`] made (as a listing returns it): its
    /// camera and event, and the key itself. Anything else is `None`.
    pub fn parse_media(text: &str) -> Option<(CameraId, EventId, Self)> {
        let mut parts = text.split('/');
        let (root, camera, event, file) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if root != MEDIA_ROOT || parts.next().is_some() {
            return None;
        }
        let camera: CameraId = camera.parse().ok()?;
        let event: EventId = event.parse().ok()?;
        let (hash, object) = file.split_once('.')?;
        let object = match object {
            "thumb" => MediaObject::Thumb,
            "clip" => MediaObject::Clip,
            _ => return None,
        };
        let key = Self::media(camera, event, object, hash);
        (key.as_str() == text).then_some((camera, event, key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A blob backend. Implementations must make `put_file` durable before returning.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Moves a fully written, staged file into place under `key`, durably.
    async fn put_file(&self, key: &BlobKey, staged: &Path) -> io::Result<()>;
    /// Reads `range` (end exclusive) of a blob.
    async fn get_range(&self, key: &BlobKey, range: Range<u64>) -> io::Result<Bytes>;
    /// Deletes one blob; a missing one is not an error.
    async fn delete(&self, key: &BlobKey) -> io::Result<()>;
    /// Deletes every blob under `prefix` (a camera's, when it is removed).
    async fn delete_prefix(&self, prefix: &str) -> io::Result<()>;
    /// Every blob under `prefix`, for the orphan sweeper.
    async fn list(&self, prefix: &str) -> io::Result<Vec<Listed>>;
}

/// Blobs as files below a root directory.
pub struct LocalBlobs {
    root: PathBuf,
}

impl LocalBlobs {
    pub fn new(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        Ok(Self { root })
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }
}

/// fsyncs a directory so a rename inside it survives a crash.
fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[async_trait]
impl BlobStore for LocalBlobs {
    async fn put_file(&self, key: &BlobKey, staged: &Path) -> io::Result<()> {
        let target = self.path(key.as_str());
        let staged = staged.to_owned();
        tokio::task::spawn_blocking(move || {
            std::fs::File::open(&staged)?.sync_all()?;
            let parent = target
                .parent()
                .ok_or_else(|| io::Error::other("blob key has no parent"))?;
            std::fs::create_dir_all(parent)?;
            std::fs::rename(&staged, &target)?;
            sync_dir(parent)
        })
        .await
        .map_err(io::Error::other)?
    }

    async fn get_range(&self, key: &BlobKey, range: Range<u64>) -> io::Result<Bytes> {
        let path = self.path(key.as_str());
        tokio::task::spawn_blocking(move || {
            let mut file = std::fs::File::open(path)?;
            let size = file.metadata()?.len();
            file.seek(SeekFrom::Start(range.start))?;
            // Reads past the end are cut short, and never size a buffer beyond the file.
            let len = range.end.min(size).saturating_sub(range.start);
            let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
            file.take(len).read_to_end(&mut buf)?;
            Ok(Bytes::from(buf))
        })
        .await
        .map_err(io::Error::other)?
    }

    async fn delete(&self, key: &BlobKey) -> io::Result<()> {
        match tokio::fs::remove_file(self.path(key.as_str())).await {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    async fn delete_prefix(&self, prefix: &str) -> io::Result<()> {
        let path = self.path(prefix);
        match tokio::fs::remove_dir_all(&path).await {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    async fn list(&self, prefix: &str) -> io::Result<Vec<Listed>> {
        let root = self.root.clone();
        let start = self.path(prefix);
        tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            let mut pending = vec![start];
            while let Some(dir) = pending.pop() {
                let entries = match std::fs::read_dir(&dir) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    other => other?,
                };
                for entry in entries {
                    let entry = entry?;
                    let kind = entry.file_type()?;
                    if kind.is_dir() {
                        pending.push(entry.path());
                    } else if kind.is_file() {
                        let path = entry.path();
                        let Some(key) = path
                            .strip_prefix(&root)
                            .ok()
                            .and_then(|p| p.to_str())
                            .map(|p| p.replace(std::path::MAIN_SEPARATOR, "/"))
                        else {
                            continue;
                        };
                        let modified = entry.metadata()?.modified()?;
                        let modified_ms = modified
                            .duration_since(std::time::UNIX_EPOCH)
                            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                            .unwrap_or(0);
                        found.push(Listed { key, modified_ms });
                    }
                }
            }
            Ok(found)
        })
        .await
        .map_err(io::Error::other)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_then_ranged_reads_then_delete() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let blobs = LocalBlobs::new(dir.path().join("blobs"))?;
        let staged = dir.path().join("staged");
        std::fs::write(&staged, b"0123456789")?;
        let camera = CameraId::new_v7();
        let key = BlobKey::media(camera, EventId::new_v7(), MediaObject::Clip, "ab../cd");
        assert!(!key.as_str().contains(".."));
        blobs.put_file(&key, &staged).await?;
        assert!(!staged.exists());
        assert_eq!(&blobs.get_range(&key, 2..5).await?[..], b"234");
        assert_eq!(&blobs.get_range(&key, 8..100).await?[..], b"89");
        let listed = blobs.list(MEDIA_ROOT).await?;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].key, key.as_str());
        let parsed = BlobKey::parse_media(&listed[0].key).map(|(_, _, k)| k);
        assert_eq!(parsed.as_ref(), Some(&key));
        blobs.delete_prefix(&BlobKey::camera_prefix(camera)).await?;
        assert!(blobs.get_range(&key, 0..1).await.is_err());
        assert!(blobs.list(MEDIA_ROOT).await?.is_empty());
        Ok(())
    }

    #[test]
    fn only_keys_this_module_makes_parse() {
        let (camera, event) = (CameraId::new_v7(), EventId::new_v7());
        let key = BlobKey::media(camera, event, MediaObject::Thumb, "00ff");
        assert_eq!(
            BlobKey::parse_media(key.as_str()),
            Some((camera, event, key.clone()))
        );
        for bad in [
            format!("{}/x", key.as_str()),
            format!("other/{camera}/{event}/00ff.thumb"),
            format!("cameras/{camera}/{event}/00ff.txt"),
            format!("cameras/{camera}/{event}/0g.thumb"),
            format!("cameras/{camera}/not-an-id/00ff.clip"),
        ] {
            assert_eq!(BlobKey::parse_media(&bad), None, "{bad}");
        }
    }
}
