//! Blobs in an S3-compatible object store, through the `object_store` crate. A put is
//! atomic per object and durable once the store answers it, which is what an
//! acknowledgement needs (DESIGN I5); readers never see a half-written object.

use std::io;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;

use super::{BlobKey, BlobStore, Listed};

/// Where the bucket is and how to sign requests to it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    /// Key prefix inside the bucket, without leading or trailing `/`; may be empty, so
    /// one bucket can hold several installations.
    pub prefix: String,
    /// `http://host:port` for an S3-compatible server; `None`: AWS itself.
    pub endpoint: Option<String>,
    /// `None`: from the environment (`AWS_REGION`), else `us-east-1`.
    pub region: Option<String>,
    /// Static credentials; `None`: the environment's (`AWS_ACCESS_KEY_ID`, …).
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Plain HTTP is refused unless asked for (a server on the same host, tests).
    pub allow_http: bool,
}

impl std::fmt::Debug for S3Config {
    /// The secret key never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "***"),
            )
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

/// Blobs as objects in one bucket, under the same keys [`super::LocalBlobs`] uses.
pub struct S3Blobs {
    store: Arc<dyn ObjectStore>,
}

impl S3Blobs {
    /// Builds the client; no request is made until the first blob operation.
    pub fn new(config: &S3Config) -> io::Result<Self> {
        // HTTPS goes through rustls on ring; a provider installed earlier is kept.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_allow_http(config.allow_http);
        if let Some(region) = &config.region {
            builder = builder.with_region(region);
        }
        if let (Some(id), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
            builder = builder
                .with_access_key_id(id)
                .with_secret_access_key(secret);
        }
        if let Some(endpoint) = &config.endpoint {
            // Path-style addressing: S3-compatible servers rarely have per-bucket hosts.
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
        }
        let store: AmazonS3 = builder.build().map_err(to_io)?;
        let store: Arc<dyn ObjectStore> = match config.prefix.trim_matches('/') {
            "" => Arc::new(store),
            prefix => Arc::new(PrefixStore::new(store, object_path(prefix)?)),
        };
        Ok(Self { store })
    }
}

/// Larger files go up in parts, so a node holding many uploads at once holds a few
/// parts of each in memory, never whole clips.
const SINGLE_PUT_MAX: u64 = 8 * 1024 * 1024;
/// S3 wants parts of at least 5 MiB (but the last).
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts of one upload in flight at once.
const PARTS_IN_FLIGHT: usize = 2;

impl S3Blobs {
    /// A multipart upload: the object appears, whole, only when the upload completes;
    /// a failed one is aborted and leaves nothing readable.
    async fn put_multipart(&self, path: &ObjectPath, staged: &Path) -> io::Result<()> {
        let upload = self.store.put_multipart(path).await.map_err(to_io)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut file = tokio::fs::File::open(staged).await?;
        let mut buf = vec![0u8; 1024 * 1024];
        let sent: io::Result<()> = async {
            loop {
                let n = file.read(&mut buf).await?;
                if n == 0 {
                    return Ok(());
                }
                writer
                    .wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(to_io)?;
                writer.write(&buf[..n]);
            }
        }
        .await;
        match sent {
            Ok(()) => writer.finish().await.map(drop).map_err(to_io),
            Err(e) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(error = %abort, "aborting a failed multipart upload failed");
                }
                Err(e)
            }
        }
    }
}

fn to_io(e: object_store::Error) -> io::Error {
    match e {
        object_store::Error::NotFound { .. } => io::Error::new(io::ErrorKind::NotFound, e),
        other => io::Error::other(other),
    }
}

fn object_path(key: &str) -> io::Result<ObjectPath> {
    ObjectPath::parse(key).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

#[async_trait]
impl BlobStore for S3Blobs {
    async fn put_file(&self, key: &BlobKey, staged: &Path) -> io::Result<()> {
        let path = object_path(key.as_str())?;
        if tokio::fs::metadata(staged).await?.len() <= SINGLE_PUT_MAX {
            let bytes = tokio::fs::read(staged).await?;
            self.store
                .put(&path, PutPayload::from(bytes))
                .await
                .map_err(to_io)?;
        } else {
            self.put_multipart(&path, staged).await?;
        }
        // The staged file is consumed, as a local rename would consume it.
        tokio::fs::remove_file(staged).await
    }

    async fn get_range(&self, key: &BlobKey, range: Range<u64>) -> io::Result<Bytes> {
        let path = object_path(key.as_str())?;
        let meta = self.store.head(&path).await.map_err(to_io)?;
        // Reads past the end are cut short, as a file read would be.
        let end = range.end.min(meta.size);
        if range.start >= end {
            return Ok(Bytes::new());
        }
        self.store
            .get_range(&path, range.start..end)
            .await
            .map_err(to_io)
    }

    async fn delete(&self, key: &BlobKey) -> io::Result<()> {
        match self.store.delete(&object_path(key.as_str())?).await {
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            other => other.map_err(to_io),
        }
    }

    async fn delete_prefix(&self, prefix: &str) -> io::Result<()> {
        let prefix = object_path(prefix)?;
        let locations = self
            .store
            .list(Some(&prefix))
            .map_ok(|meta| meta.location)
            .boxed();
        self.store
            .delete_stream(locations)
            .try_collect::<Vec<_>>()
            .await
            .map_err(to_io)?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> io::Result<Vec<Listed>> {
        let prefix = object_path(prefix)?;
        self.store
            .list(Some(&prefix))
            .map_ok(|meta| Listed {
                key: meta.location.to_string(),
                modified_ms: meta.last_modified.timestamp_millis(),
            })
            .try_collect()
            .await
            .map_err(to_io)
    }
}
