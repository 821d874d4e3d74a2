//! Receiving an event upload: the signed manifest first, then the two ciphertexts,
//! spooled to temporary files while their sizes and hashes are checked against the
//! manifest. Anything wrong is a 4xx and leaves nothing behind (temporary files are
//! deleted when dropped).

use axum::extract::multipart::Field;
use axum::extract::Multipart;
use cc_core::api::{MAX_CLIP_BYTES, MAX_THUMB_BYTES};
use cc_core::envelope::looks_like_age;
use cc_core::keys::verifying_key_from_bytes;
use cc_core::manifest::{Manifest, SignedManifest};
use cc_core::signed::MAX_STATEMENT_LEN;
use cc_core::EventId;
use cc_store::authz::Device;
use cc_store::blobs::{BlobKey, MediaObject};
use sha2::{Digest, Sha256};
use tempfile::TempPath;
use tokio::io::AsyncWriteExt;

use crate::error::ApiError;
use crate::state::AppState;

/// The largest request body the upload route reads.
pub const MAX_UPLOAD_BODY: usize = (MAX_CLIP_BYTES + MAX_THUMB_BYTES + 64 * 1024) as usize;
/// A clip longer than this is not an event.
const MAX_DURATION_MS: u32 = 60 * 60 * 1000;

pub struct Limits {
    pub thumb: u64,
    pub clip: u64,
}

pub enum Received {
    /// The same event (same manifest) is already stored: acknowledge again.
    AlreadyStored,
    New(Box<NewUpload>),
}

/// A verified upload, staged and ready to be made durable.
pub struct NewUpload {
    pub manifest: Manifest,
    pub signed: SignedManifest,
    pub thumb: TempPath,
    pub clip: TempPath,
    pub thumb_key: BlobKey,
    pub clip_key: BlobKey,
}

fn bad(code: &'static str, detail: impl Into<String>) -> ApiError {
    ApiError::bad(code, detail)
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(format!("staging upload: {e}"))
}

/// The key the camera signs with, as its certificate names it.
pub fn device_key(device: &Device) -> Result<ed25519_dalek::VerifyingKey, ApiError> {
    cc_core::b64::decode(device.device_key())
        .ok()
        .and_then(|b| verifying_key_from_bytes(&b))
        .ok_or_else(|| internal("stored device key is malformed"))
}

pub async fn receive(
    state: &AppState,
    device: &Device,
    event: EventId,
    mut multipart: Multipart,
    limits: Limits,
) -> Result<Received, ApiError> {
    let first = multipart
        .next_field()
        .await?
        .ok_or_else(|| bad("upload_incomplete", "the upload has no parts"))?;
    if first.name() != Some("manifest") {
        return Err(bad("upload_malformed", "the first part must be `manifest`"));
    }
    let manifest_bytes = read_small(first, MAX_STATEMENT_LEN + 1024).await?;
    let signed: SignedManifest = serde_json::from_slice(&manifest_bytes).map_err(|e| {
        bad(
            "manifest_malformed",
            format!("the manifest part is not a signed manifest: {e}"),
        )
    })?;
    let manifest = signed
        .verify(&device_key(device)?)
        .map_err(|e| bad("manifest_signature_invalid", e.to_string()))?;
    manifest
        .check_identity(device.camera(), event)
        .map_err(|e| bad("manifest_mismatch", e.to_string()))?;
    if manifest.epoch != device.epoch() {
        return Err(ApiError::stale_epoch(device.epoch(), manifest.epoch));
    }
    if manifest.thumb_size > limits.thumb || manifest.clip_size > limits.clip {
        return Err(ApiError::too_large(
            "upload_too_large",
            "the thumbnail or clip exceeds the size limit",
        ));
    }
    if manifest.duration_ms > MAX_DURATION_MS {
        return Err(bad("manifest_malformed", "duration_ms is out of range"));
    }
    if let Some(existing) = state.store.stored_manifest(device, event).await? {
        return if existing.body == signed.body {
            Ok(Received::AlreadyStored)
        } else {
            Err(ApiError::Conflict(
                "a different event with this ID is already stored",
            ))
        };
    }

    state
        .store
        .check_quota(
            device,
            manifest.thumb_size.saturating_add(manifest.clip_size),
        )
        .await?;
    let (mut thumb, mut clip) = (None, None);
    while let Some(field) = multipart.next_field().await? {
        match field.name() {
            Some("thumb") if thumb.is_none() => {
                thumb = Some(
                    spool(
                        state,
                        field,
                        manifest.thumb_size,
                        &manifest.thumb_sha256,
                        "thumbnail",
                    )
                    .await?,
                );
            }
            Some("clip") if clip.is_none() => {
                clip = Some(
                    spool(
                        state,
                        field,
                        manifest.clip_size,
                        &manifest.clip_sha256,
                        "clip",
                    )
                    .await?,
                );
            }
            other => {
                return Err(bad(
                    "upload_malformed",
                    format!("unexpected or repeated part {:?}", other.unwrap_or("")),
                ))
            }
        }
    }
    let (Some(thumb), Some(clip)) = (thumb, clip) else {
        return Err(bad(
            "upload_incomplete",
            "both `thumb` and `clip` parts are required",
        ));
    };
    Ok(Received::New(Box::new(NewUpload {
        thumb_key: BlobKey::media(
            device.camera(),
            event,
            MediaObject::Thumb,
            &manifest.thumb_sha256,
        ),
        clip_key: BlobKey::media(
            device.camera(),
            event,
            MediaObject::Clip,
            &manifest.clip_sha256,
        ),
        manifest,
        signed,
        thumb,
        clip,
    })))
}

async fn read_small(mut field: Field<'_>, max: usize) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(truncated)? {
        if out.len() + chunk.len() > max {
            return Err(ApiError::too_large(
                "manifest_too_large",
                "the manifest part is too large",
            ));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn truncated(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::too_large("upload_too_large", e.body_text());
    }
    bad(
        "upload_truncated",
        format!("the upload ended early: {}", e.body_text()),
    )
}

/// Streams one part to a temporary file, checking it against the manifest as it goes.
async fn spool(
    state: &AppState,
    mut field: Field<'_>,
    size: u64,
    sha256_hex: &str,
    what: &str,
) -> Result<TempPath, ApiError> {
    let staged = tempfile::Builder::new()
        .prefix("upload-")
        .tempfile_in(state.staging.as_path())
        .map_err(internal)?;
    let (file, path) = staged.into_parts();
    let mut file = tokio::fs::File::from_std(file);
    let mut hasher = Sha256::new();
    let mut head = Vec::with_capacity(32);
    let mut received: u64 = 0;
    while let Some(chunk) = field.chunk().await.map_err(truncated)? {
        received += chunk.len() as u64;
        if received > size {
            return Err(bad(
                "upload_size_mismatch",
                format!("the {what} is larger than its manifest says ({size} bytes)"),
            ));
        }
        if head.len() < 32 {
            head.extend_from_slice(&chunk[..chunk.len().min(32 - head.len())]);
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(internal)?;
    }
    if received < size {
        return Err(bad(
            "upload_truncated",
            format!("the {what} has {received} of the {size} bytes its manifest says"),
        ));
    }
    if !looks_like_age(&head) {
        return Err(bad(
            "upload_not_encrypted",
            format!("the {what} is not an age file; cameras upload ciphertext only"),
        ));
    }
    if hex::encode(hasher.finalize()) != sha256_hex {
        return Err(bad(
            "upload_hash_mismatch",
            format!("the {what} does not match the hash in its signed manifest"),
        ));
    }
    file.flush().await.map_err(internal)?;
    Ok(path)
}
