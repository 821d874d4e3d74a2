//! Shared vocabulary of Closed Circuit: typed IDs, the wire types of the HTTP API,
//! and every piece of cryptography that runs on a client or a camera.
//!
//! **Architecture invariant:** nothing here talks to the network or a database, and
//! nothing here is needed by the server to read media: the server only ever *verifies*
//! (signatures, hashes), it never decrypts.

pub mod api;
pub mod b64;
pub mod certificate;
pub mod claim;
pub mod envelope;
pub mod ids;
pub mod keys;
pub mod live;
pub mod manifest;
pub mod phrase;
pub mod signed;
pub mod transfer;

pub use ids::{CameraId, ClaimId, EventId, Id, PairingId, SessionId, UserId};
