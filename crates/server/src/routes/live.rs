//! Live view: `GET /v1/cameras/{camera_id}/live` for members, `POST /v1/device/live` for
//! cameras. The server relays segments it cannot open and keeps none of them; a viewer's
//! access is checked when the stream opens and again before every segment, so a
//! revocation ends a live view at the next segment.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::middleware::from_fn_with_state;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use cc_core::api::{LiveAck, LiveFrame, Problem};
use cc_core::envelope::looks_like_age;
use cc_core::live::{LiveError, LiveSegment, SignedSegment, MAX_SEGMENT_BYTES};
use cc_core::CameraId;
use cc_store::authz::{self, View};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::admission::{upload_gate, Admission};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ClientIp, DeviceAuth, UserAuth};
use crate::state::AppState;
use crate::upload;

/// A segment as JSON: base64 of the largest ciphertext plus the signed statement.
const MAX_LIVE_BODY: usize = MAX_SEGMENT_BYTES / 3 * 4 + 16 * 1024;

/// Viewers renew their request for live view this often, well inside the lease.
const RENEW_EVERY: Duration = Duration::from_secs(5);

/// The member's side; mounted behind the viewers' budget.
pub fn viewer_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(watch))
}

/// The camera's side; segments pass the upload budget.
pub fn device_routes(admission: Arc<Admission>) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(send_segment))
        .route_layer(from_fn_with_state(admission, upload_gate))
        .layer(DefaultBodyLimit::max(MAX_LIVE_BODY))
}

/// The camera's live view as Server-Sent Events (`event: segment`, data: a LiveFrame),
/// asking the camera to stream while it is open. The client verifies each segment against
/// the camera's certificate and decrypts it with its grant. Opening it is written to the
/// access log; an account that requires step-up must step up first, as for clips.
#[utoipa::path(get, path = "/v1/cameras/{camera_id}/live", tag = "live",
    params(("camera_id" = String, Path, format = Uuid)),
    responses((status = 200, content_type = "text/event-stream", body = LiveFrame),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn watch(
    State(state): State<AppState>,
    auth: UserAuth,
    ClientIp(ip): ClientIp,
    ApiPath(camera): ApiPath<CameraId>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let proof = authz::check::<View>(&state.store, &auth.session, camera).await?;
    if state.store.step_up_needed(&auth.session).await? {
        return Err(ApiError::StepUpRequired);
    }
    state.store.log_access(&proof, None, "live", &ip).await?;
    let segments = state.fanout.watch_live(camera).await;
    state.fanout.want_live(camera).await;
    let renew = tokio::time::interval_at(tokio::time::Instant::now() + RENEW_EVERY, RENEW_EVERY);
    let events = futures_util::stream::unfold(
        (segments, renew, state, auth),
        move |(mut segments, mut renew, state, auth)| async move {
            loop {
                let frame = tokio::select! {
                    received = segments.recv() => received,
                    _ = renew.tick() => {
                        state.fanout.want_live(camera).await;
                        continue;
                    }
                };
                let event = match frame {
                    Ok(frame) => {
                        // Access can end while the stream is open: ask the door again.
                        let Ok(session) = authz::authenticate(&state.store, &auth.token).await
                        else {
                            return None;
                        };
                        if authz::check::<View>(&state.store, &session, camera)
                            .await
                            .is_err()
                        {
                            return None;
                        }
                        match Event::default().event("segment").json_data(frame.as_ref()) {
                            Ok(event) => event,
                            Err(_) => continue,
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        Event::default().event("lagged").data(missed.to_string())
                    }
                    Err(RecvError::Closed) => return None,
                };
                return Some((Ok(event), (segments, renew, state, auth)));
            }
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// One live segment from a camera, signed with its device key and encrypted to its
/// current epoch. Relayed to whoever watches, never stored. `watching: false` tells the
/// camera nobody asked for its live view lately.
#[utoipa::path(post, path = "/v1/device/live", tag = "device",
    request_body = LiveFrame,
    responses((status = 200, body = LiveAck), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 409, body = Problem), (status = 413, body = Problem)))]
async fn send_segment(
    State(state): State<AppState>,
    DeviceAuth(device): DeviceAuth,
    ApiJson(frame): ApiJson<LiveFrame>,
) -> Result<Json<LiveAck>, ApiError> {
    let segment = verify_segment(&device, &frame.segment)?;
    let ciphertext = cc_core::b64::decode(&frame.ciphertext)
        .map_err(|_| ApiError::bad("segment_malformed", "the ciphertext is not base64"))?;
    if ciphertext.len() > MAX_SEGMENT_BYTES {
        return Err(ApiError::too_large(
            "segment_too_large",
            format!("a live segment may have at most {MAX_SEGMENT_BYTES} bytes"),
        ));
    }
    if !looks_like_age(&ciphertext) {
        return Err(ApiError::bad(
            "upload_not_encrypted",
            "a live segment must be an age file",
        ));
    }
    segment
        .check(device.camera(), &ciphertext, chrono::Utc::now())
        .map_err(|e| match e {
            LiveError::NotLive(_) => ApiError::bad("segment_not_live", e.to_string()),
            _ => ApiError::bad("segment_mismatch", e.to_string()),
        })?;
    let camera = device.camera();
    state.fanout.live(camera, frame).await;
    Ok(Json(LiveAck {
        watching: state.fanout.live_wanted(camera),
    }))
}

/// The segment's signature under this device's key, for its current epoch.
fn verify_segment(
    device: &cc_store::authz::Device,
    signed: &SignedSegment,
) -> Result<LiveSegment, ApiError> {
    let segment = signed
        .verify(&upload::device_key(device)?)
        .map_err(|e| ApiError::bad("segment_signature_invalid", e.to_string()))?;
    if segment.epoch != device.epoch() {
        return Err(ApiError::stale_epoch(device.epoch(), segment.epoch));
    }
    Ok(segment)
}
