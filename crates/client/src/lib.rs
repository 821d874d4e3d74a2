//! The Closed Circuit client: everything a user's device or a camera does, with all the
//! cryptography on this side. The server only ever sees public keys, hashes, wrapped key
//! material and ciphertext.
//!
//! Users: [`account`] (sign-up, login), [`claims`] (pairing a camera), [`cameras`],
//! [`events`] (verified listing and opening), [`sharing`] (invitations, members, key
//! rotation), [`watch`] (notices of new events), [`live`] (live view). Cameras:
//! [`agent`] with its [`media`] sources, and [`live_camera`], its side of live view. Underneath: [`api`] (HTTP), [`profile`] and
//! [`files`] (private local state), [`trust`] (whose keys to believe), [`keyring`]
//! (camera content keys), [`sse`] and [`backoff`].

pub mod account;
pub mod agent;
pub mod api;
pub mod backoff;
pub mod cameras;
pub mod claims;
pub mod error;
pub mod events;
pub mod files;
pub mod keyring;
pub mod live;
pub mod live_camera;
pub mod media;
pub mod profile;
pub mod sharing;
pub mod sse;
pub mod transfer;
pub mod trust;
pub mod watch;

pub use error::ClientError;
pub use profile::{ProfileDir, Session};
