//! Ciphertext blob storage. The default keeps files under the data directory and makes
//! every write durable (temp file, fsync, rename, fsync of the directory) before an
//! upload is acknowledged (DESIGN I5).

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
        format!("cameras/{camera}")
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
            file.seek(SeekFrom::Start(range.start))?;
            let len = range.end.saturating_sub(range.start);
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
        blobs.delete_prefix(&BlobKey::camera_prefix(camera)).await?;
        assert!(blobs.get_range(&key, 0..1).await.is_err());
        Ok(())
    }
}
