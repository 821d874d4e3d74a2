//! Everything Closed Circuit keeps: account and camera metadata in SQL (SQLite by
//! default, PostgreSQL when scaled out) and ciphertext blobs in a [`blobs::BlobStore`].
//!
//! **Architecture invariant:** camera data is reachable only through methods that take
//! an [`authz::Authorized`] proof (users) or an [`authz::Device`] proof (cameras), and
//! only [`authz`] can mint them. Every query for an event filters by camera *and* event.

pub mod access_log;
pub mod accounts;
pub mod authz;
pub mod blobs;
pub mod cache;
pub mod cameras;
mod commit;
mod db;
pub mod events;
mod instance;
pub mod metadata_copy;
pub mod orphans;
pub mod presence;
pub mod retention;
mod rows;
pub mod sessions;
pub mod shared;
pub mod shares;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod time;
pub mod transfers;

use std::sync::Arc;

pub use db::{Backend, Store, StoreOptions};

/// What can go wrong below the HTTP edge; the server maps each to one problem code.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Missing, or not visible to the caller: the two are deliberately indistinguishable.
    #[error("not found")]
    NotFound,
    #[error("no valid session or device token")]
    Unauthenticated,
    #[error("wrong email or password")]
    BadCredentials,
    #[error("a two-factor code is required")]
    SecondFactorRequired,
    #[error("the caller's role does not permit this")]
    Forbidden,
    #[error("the account's storage quota is full")]
    QuotaExceeded,
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("invalid: {0}")]
    Invalid(&'static str),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("blob storage error: {0}")]
    Blob(#[from] std::io::Error),
    /// Not stored because the database could not commit now; retrying is safe.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Shared handle to a blob backend.
pub type Blobs = Arc<dyn blobs::BlobStore>;
