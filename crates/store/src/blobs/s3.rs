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
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::{BlobKey, BlobStore, Listed};

/// Where the bucket is and how to sign requests to it.
#[derive(Clone, Debug, Default)]
pub struct S3Config {
    /// `http://host:port` for an S3-compatible server; `None`: AWS itself.
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Plain HTTP is refused unless asked for (a server on the same host, tests).
    pub allow_http: bool,
}

/// Blobs as objects in one bucket, under the same keys [`super::LocalBlobs`] uses.
pub struct S3Blobs {
    store: Arc<AmazonS3>,
}

impl S3Blobs {
    /// Builds the client; no request is made until the first blob operation.
    pub fn new(config: &S3Config) -> io::Result<Self> {
        // HTTPS goes through rustls on ring; a provider installed earlier is kept.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(&config.secret_access_key)
            .with_allow_http(config.allow_http);
        if let Some(endpoint) = &config.endpoint {
            // Path-style addressing: S3-compatible servers rarely have per-bucket hosts.
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
        }
        let store = builder.build().map_err(to_io)?;
        Ok(Self {
            store: Arc::new(store),
        })
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
        let bytes = tokio::fs::read(staged).await?;
        self.store
            .put(&object_path(key.as_str())?, PutPayload::from(bytes))
            .await
            .map_err(to_io)?;
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
