//! `/v1/cameras/{camera_id}/events…` and `/v1/events/stream`: what members read. Every
//! handler passes `authz::check` first and every media read is written to the access log.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cc_core::api::{EventInfo, EventPage, EventQuery, Problem};
use cc_core::{CameraId, EventId};
use cc_store::authz::{self, View};
use cc_store::blobs::MediaObject;
use futures_util::Stream;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, ClientIp, UserAuth};
use crate::range::{self, RangeRequest};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_events))
        .routes(routes!(get_event))
        .routes(routes!(get_thumb))
        .routes(routes!(get_clip))
        .routes(routes!(stream))
}

/// A page of the camera's events, newest first.
#[utoipa::path(get, path = "/v1/cameras/{camera_id}/events", tag = "events",
    params(("camera_id" = String, Path, format = Uuid), EventQuery),
    responses((status = 200, body = EventPage), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn list_events(
    State(state): State<AppState>,
    auth: UserAuth,
    ApiPath(camera): ApiPath<CameraId>,
    ApiQuery(query): ApiQuery<EventQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let proof = authz::check::<View>(&state.store, &auth.session, camera).await?;
    Ok(Json(state.store.list_events(&proof, &query).await?))
}

/// One event's metadata and signed manifest.
#[utoipa::path(get, path = "/v1/cameras/{camera_id}/events/{event_id}", tag = "events",
    params(("camera_id" = String, Path, format = Uuid), ("event_id" = String, Path, format = Uuid)),
    responses((status = 200, body = EventInfo), (status = 404, body = Problem)))]
async fn get_event(
    State(state): State<AppState>,
    auth: UserAuth,
    ApiPath((camera, event)): ApiPath<(CameraId, EventId)>,
) -> Result<Json<EventInfo>, ApiError> {
    let proof = authz::check::<View>(&state.store, &auth.session, camera).await?;
    Ok(Json(state.store.event(&proof, event).await?))
}

/// The event's thumbnail, as stored: an age file.
#[utoipa::path(get, path = "/v1/cameras/{camera_id}/events/{event_id}/thumb", tag = "events",
    params(("camera_id" = String, Path, format = Uuid), ("event_id" = String, Path, format = Uuid)),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 206), (status = 404, body = Problem)))]
async fn get_thumb(
    State(state): State<AppState>,
    auth: UserAuth,
    ClientIp(ip): ClientIp,
    ApiPath((camera, event)): ApiPath<(CameraId, EventId)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    media(state, auth, ip, camera, event, MediaObject::Thumb, &headers).await
}

/// The event's clip, as stored (an age file); supports `Range` for seeking.
#[utoipa::path(get, path = "/v1/cameras/{camera_id}/events/{event_id}/clip", tag = "events",
    params(("camera_id" = String, Path, format = Uuid), ("event_id" = String, Path, format = Uuid)),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 206), (status = 404, body = Problem), (status = 416, body = Problem)))]
async fn get_clip(
    State(state): State<AppState>,
    auth: UserAuth,
    ClientIp(ip): ClientIp,
    ApiPath((camera, event)): ApiPath<(CameraId, EventId)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    media(state, auth, ip, camera, event, MediaObject::Clip, &headers).await
}

async fn media(
    state: AppState,
    auth: UserAuth,
    ip: String,
    camera: CameraId,
    event: EventId,
    object: MediaObject,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let proof = authz::check::<View>(&state.store, &auth.session, camera).await?;
    let location = state.store.media_location(&proof, event, object).await?;
    if object == MediaObject::Clip && location.step_up_needed {
        return Err(ApiError::StepUpRequired);
    }
    let (key, size) = (location.key, location.size);
    let wanted = range::parse(
        headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        size,
    );
    let (status, part) = match wanted {
        RangeRequest::Full => (StatusCode::OK, 0..size),
        RangeRequest::Part(r) => (StatusCode::PARTIAL_CONTENT, r),
        RangeRequest::Unsatisfiable => {
            let mut response = ApiError::Bad {
                status: StatusCode::RANGE_NOT_SATISFIABLE,
                code: "range_not_satisfiable",
                detail: format!("the object has {size} bytes"),
            }
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(response);
        }
    };
    state
        .store
        .log_access(&proof, Some(event), object.as_str(), &ip)
        .await?;
    let bytes = state
        .store
        .blobs()
        .get_range(&key, part.clone())
        .await
        .map_err(|e| ApiError::StorageUnavailable(format!("reading {}: {e}", key.as_str())))?;
    let mut response = (status, bytes).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT {
        let value = format!("bytes {}-{}/{size}", part.start, part.end.saturating_sub(1));
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(response)
}

/// New events of every camera the caller is a member of, including cameras they become
/// a member of while it is open, as Server-Sent Events (`event: event`, data: an
/// EventInfo). Each notice re-checks the session and the membership before it is sent;
/// a subscriber that falls behind gets `event: lagged` (data: how many it missed).
#[utoipa::path(get, path = "/v1/events/stream", tag = "events",
    responses((status = 200, content_type = "text/event-stream", body = EventInfo), (status = 401, body = Problem), (status = 503, body = Problem)))]
async fn stream(
    State(state): State<AppState>,
    auth: UserAuth,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // Opened before the cameras are read, so a membership granted in between is followed.
    let notices = state.fanout.watch_events(auth.session.user());
    for camera in authz::visible_cameras(&state.store, &auth.session).await? {
        notices.follow(camera.camera());
    }
    let events = futures_util::stream::unfold(
        (notices, state, auth),
        |(mut notices, state, auth)| async move {
            loop {
                let event = match notices.next().await? {
                    Ok(notice) => {
                        let Ok(session) = authz::authenticate(&state.store, &auth.token).await
                        else {
                            return None;
                        };
                        let Ok(proof) =
                            authz::check::<View>(&state.store, &session, notice.camera_id).await
                        else {
                            continue;
                        };
                        // A notice relayed from another node carries only IDs.
                        let info = match notice.info {
                            Some(info) => info,
                            None => match state.store.event(&proof, notice.event_id).await {
                                Ok(info) => info,
                                Err(_) => continue,
                            },
                        };
                        match Event::default().event("event").json_data(&info) {
                            Ok(event) => event,
                            Err(_) => continue,
                        }
                    }
                    Err(missed) => Event::default().event("lagged").data(missed.to_string()),
                };
                return Some((Ok(event), (notices, state, auth)));
            }
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
