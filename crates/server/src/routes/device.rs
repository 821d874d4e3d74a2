//! `/v1/device/…`: what cameras call. Pairing, connecting, and uploading events, which
//! are acknowledged only once their blobs and row are durable (DESIGN I5).

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cc_core::api::{
    ConnectResponse, PairingPending, PairingRequest, PairingStarted, Problem, UploadAck,
    MAX_CLIP_BYTES, MAX_THUMB_BYTES,
};
use cc_core::{EventId, PairingId};
use cc_store::authz::Device;
use cc_store::cameras::PairingPoll;
use cc_store::events::Inserted;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::admission::{handshake_gate, upload_gate, Admission};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, DeviceAuth};
use crate::state::AppState;
use crate::upload;

/// Connects pass the handshake gate; pairing and uploads the upload gate; the
/// long-lived stream is admitted by the connect that precedes it.
pub fn routes(admission: Arc<Admission>) -> OpenApiRouter<AppState> {
    let handshakes = OpenApiRouter::new()
        .routes(routes!(connect))
        .route_layer(from_fn_with_state(admission.clone(), handshake_gate));
    let uploads = OpenApiRouter::new()
        .routes(routes!(present_pairing))
        .routes(routes!(poll_pairing))
        .routes(routes!(upload_event))
        .route_layer(from_fn_with_state(admission, upload_gate))
        .layer(DefaultBodyLimit::max(upload::MAX_UPLOAD_BODY));
    handshakes
        .merge(uploads)
        .routes(routes!(super::device_stream::stream))
}

/// A camera presents a claim code (by hash), its device key and a MAC proving it holds
/// the code. The owner's client checks the MAC; the server cannot forge it.
#[utoipa::path(post, path = "/v1/device/pair", tag = "device",
    request_body = PairingRequest,
    responses((status = 202, body = PairingStarted), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn present_pairing(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<PairingRequest>,
) -> Result<(StatusCode, Json<PairingStarted>), ApiError> {
    let pairing_id = state.store.present_pairing(&req).await?;
    Ok((StatusCode::ACCEPTED, Json(PairingStarted { pairing_id })))
}

/// Polled by the camera until the owner completes pairing; the device token is
/// returned exactly once.
#[utoipa::path(get, path = "/v1/device/pair/{pairing_id}", tag = "device",
    params(("pairing_id" = String, Path, format = Uuid)),
    responses((status = 200, body = cc_core::api::PairingResult), (status = 202, body = PairingPending), (status = 404, body = Problem)))]
async fn poll_pairing(
    State(state): State<AppState>,
    ApiPath(pairing): ApiPath<PairingId>,
) -> Result<Response, ApiError> {
    Ok(match state.store.poll_pairing(pairing).await? {
        PairingPoll::Pending => (
            StatusCode::ACCEPTED,
            Json(PairingPending {
                status: "waiting for the owner to approve".into(),
            }),
        )
            .into_response(),
        PairingPoll::Ready(result) => Json(result).into_response(),
    })
}

/// A camera comes online and learns which content-key epoch to encrypt to.
#[utoipa::path(post, path = "/v1/device/connect", tag = "device",
    responses((status = 200, body = ConnectResponse), (status = 401, body = Problem)))]
async fn connect(
    State(state): State<AppState>,
    DeviceAuth(device): DeviceAuth,
) -> Result<Json<ConnectResponse>, ApiError> {
    state.store.touch_device(&device);
    Ok(Json(device_config(&state, &device).await?))
}

/// What a camera must encrypt under now, and the signed chain to the owner who says so.
pub(super) async fn device_config(
    state: &AppState,
    device: &Device,
) -> Result<ConnectResponse, ApiError> {
    Ok(ConnectResponse {
        camera_id: device.camera(),
        epoch: device.epoch(),
        certificate: state.store.current_certificate(device).await?,
        transfers: state.store.ownership_chain(device).await?,
        server_time: chrono::Utc::now(),
    })
}

/// Uploads one event: multipart parts `manifest` (a SignedManifest, first), `thumb` and
/// `clip` (age ciphertexts). Idempotent on the event ID.
#[utoipa::path(put, path = "/v1/device/events/{event_id}", tag = "device",
    params(("event_id" = String, Path, format = Uuid)),
    request_body(content_type = "multipart/form-data", description = "Parts: manifest (JSON SignedManifest), thumb, clip"),
    responses((status = 201, body = UploadAck), (status = 200, body = UploadAck, description = "Already stored"),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem)))]
async fn upload_event(
    State(state): State<AppState>,
    DeviceAuth(device): DeviceAuth,
    ApiPath(event): ApiPath<EventId>,
    multipart: Multipart,
) -> Result<(StatusCode, Json<UploadAck>), ApiError> {
    let limits = upload::Limits {
        thumb: MAX_THUMB_BYTES,
        clip: MAX_CLIP_BYTES,
    };
    let received = match upload::receive(&state, &device, event, multipart, limits).await? {
        upload::Received::AlreadyStored => return Ok(ack(event, Inserted::Duplicate)),
        upload::Received::New(received) => received,
    };
    let blobs = state.store.blobs();
    blobs
        .put_file(&received.thumb_key, &received.thumb)
        .await
        .map_err(storage_failed)?;
    blobs
        .put_file(&received.clip_key, &received.clip)
        .await
        .map_err(storage_failed)?;
    let inserted = state
        .store
        .insert_event(&device, &received.manifest, &received.signed)
        .await?;
    if inserted == Inserted::New {
        let info = state.store.event_for_device(&device, event).await?;
        state.fanout.event(info).await;
    }
    Ok(ack(event, inserted))
}

fn storage_failed(e: std::io::Error) -> ApiError {
    ApiError::StorageUnavailable(format!("storing upload: {e}"))
}

fn ack(event_id: EventId, inserted: Inserted) -> (StatusCode, Json<UploadAck>) {
    let duplicate = inserted == Inserted::Duplicate;
    let status = if duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    (
        status,
        Json(UploadAck {
            event_id,
            duplicate,
        }),
    )
}
