//! Handing a camera to a new owner: the owner offers it, the recipient's client accepts
//! with a rotation to a content key of its own. Connected cameras hear of the new
//! certificate on their stream and follow the signed transfer to the new owner's key.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use cc_core::api::{Problem, RotateRequest, TransferOffer, TransferRequest};
use cc_core::CameraId;
use cc_store::authz::{self, Own};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, UserAuth};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(offer, cancel))
        .routes(routes!(list_offers))
        .routes(routes!(accept))
}

/// Offers the camera to another account (owner only); replaces a pending offer.
#[utoipa::path(post, path = "/v1/cameras/{camera_id}/transfer", tag = "sharing",
    params(("camera_id" = String, Path, format = Uuid)),
    request_body = TransferRequest,
    responses((status = 201), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn offer(
    State(state): State<AppState>,
    auth: UserAuth,
    ApiPath(camera): ApiPath<CameraId>,
    ApiJson(req): ApiJson<TransferRequest>,
) -> Result<StatusCode, ApiError> {
    let proof = authz::check::<Own>(&state.store, &auth.session, camera).await?;
    state.store.offer_transfer(&proof, &req).await?;
    Ok(StatusCode::CREATED)
}

/// Withdraws a pending offer (owner only).
#[utoipa::path(delete, path = "/v1/cameras/{camera_id}/transfer", tag = "sharing",
    params(("camera_id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn cancel(
    State(state): State<AppState>,
    auth: UserAuth,
    ApiPath(camera): ApiPath<CameraId>,
) -> Result<StatusCode, ApiError> {
    let proof = authz::check::<Own>(&state.store, &auth.session, camera).await?;
    state.store.cancel_transfer(&proof).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Cameras offered to the caller.
#[utoipa::path(get, path = "/v1/transfers", tag = "sharing",
    responses((status = 200, body = Vec<TransferOffer>), (status = 401, body = Problem)))]
async fn list_offers(
    State(state): State<AppState>,
    auth: UserAuth,
) -> Result<Json<Vec<TransferOffer>>, ApiError> {
    Ok(Json(state.store.transfer_offers(&auth.session).await?))
}

/// Takes over a camera offered to the caller, rotating it to the caller's own key.
#[utoipa::path(post, path = "/v1/transfers/{camera_id}/accept", tag = "sharing",
    params(("camera_id" = String, Path, format = Uuid)),
    request_body = RotateRequest,
    responses((status = 204), (status = 400, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn accept(
    State(state): State<AppState>,
    auth: UserAuth,
    ApiPath(camera): ApiPath<CameraId>,
    ApiJson(req): ApiJson<RotateRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .accept_transfer(&auth.session, camera, &req)
        .await?;
    // The camera learns the new certificate and owner on its stream.
    state.fanout.rotated(camera).await;
    state.fanout.granted(auth.session.user(), camera).await;
    Ok(StatusCode::NO_CONTENT)
}
