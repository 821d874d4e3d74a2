//! API-level tests against a real server on a loopback port. Each module attacks one
//! promise: the one door, sessions, uploads, ciphertext only, the API description.

mod common;

mod audit;
mod cancellation;
mod ciphertext_only;
mod live;
mod one_door;
mod openapi;
mod retention;
mod scale_out;
mod sessions;
mod sharing;
mod storms;
mod transfers;
mod uploads;
