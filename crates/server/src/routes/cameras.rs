//! `/v1/claims` and `/v1/cameras`: pairing from the owner's side, and the cameras a
//! user is a member of. Every camera route passes `authz::check` first.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use cc_core::api::{
    CameraInfo, Claim, CompleteClaimRequest, CreateClaimRequest, Grant, Problem,
    RenameCameraRequest, Retention,
};
use cc_core::{CameraId, ClaimId};
use cc_store::authz::{self, Manage, Own, View};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ClientIp, UserAuth};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_claim, list_claims))
        .routes(routes!(complete_claim))
        .routes(routes!(delete_claim))
        .routes(routes!(list_cameras))
        .routes(routes!(get_camera, rename_camera, remove_camera))
        .routes(routes!(list_grants))
        .routes(routes!(set_retention))
}

/// Registers a claim code by the hash of its secret.
#[utoipa::path(post, path = "/v1/claims", tag = "cameras",
    request_body = CreateClaimRequest,
    responses((status = 201, body = Claim), (status = 400, body = Problem), (status = 401, body = Problem)))]
async fn create_claim(
    State(state): State<AppState>,
    auth: UserAuth,
    ApiJson(req): ApiJson<CreateClaimRequest>,
) -> Result<(StatusCode, Json<Claim>), ApiError> {
    let claim = state
        .store
        .create_claim(&auth.session, &req.secret_hash)
        .await?;
    Ok((StatusCode::CREATED, Json(claim)))
}

/// The caller's open claims; `pairing` is set once a camera has presented the code.
#[utoipa::path(get, path = "/v1/claims", tag = "cameras",
    responses((status = 200, body = Vec<Claim>), (status = 401, body = Problem)))]
async fn list_claims(
    State(state): State<AppState>,
    auth: UserAuth,
) -> Result<Json<Vec<Claim>>, ApiError> {
    Ok(Json(state.store.open_claims(&auth.session).await?))
}

/// Completes pairing with the owner-signed certificate, the owner's grant and the sealed name.
#[utoipa::path(post, path = "/v1/claims/{claim_id}/complete", tag = "cameras",
    params(("claim_id" = String, Path, format = Uuid)),
    request_body = CompleteClaimRequest,
    responses((status = 201, body = CameraInfo), (status = 400, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn complete_claim(
    State(state): State<AppState>,
    auth: UserAuth,
    ApiPath(claim): ApiPath<ClaimId>,
    ApiJson(req): ApiJson<CompleteClaimRequest>,
) -> Result<(StatusCode, Json<CameraInfo>), ApiError> {
    let camera = state
        .store
        .complete_claim(&auth.session, claim, &req)
        .await?;
    state
        .fanout
        .granted(auth.session.user(), camera.camera_id)
        .await;
    Ok((StatusCode::CREATED, Json(camera)))
}

/// Withdraws an open claim.
#[utoipa::path(delete, path = "/v1/claims/{claim_id}", tag = "cameras",
    params(("claim_id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn delete_claim(
    State(state): State<AppState>,
    auth: UserAuth,
    ApiPath(claim): ApiPath<ClaimId>,
) -> Result<StatusCode, ApiError> {
    state.store.delete_claim(&auth.session, claim).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every camera the caller is a member of.
#[utoipa::path(get, path = "/v1/cameras", tag = "cameras",
    responses((status = 200, body = Vec<CameraInfo>), (status = 401, body = Problem)))]
async fn list_cameras(
    State(state): State<AppState>,
    auth: UserAuth,
) -> Result<Json<Vec<CameraInfo>>, ApiError> {
    let mut cameras = Vec::new();
    for proof in authz::visible_cameras(&state.store, &auth.session).await? {
        cameras.push(state.store.camera_info(&proof).await?);
    }
    Ok(Json(cameras))
}

/// One camera, with its owner-signed certificate.
#[utoipa::path(get, path = "/v1/cameras/{camera_id}", tag = "cameras",
    params(("camera_id" = String, Path, format = Uuid)),
    responses((status = 200, body = CameraInfo), (status = 404, body = Problem)))]
async fn get_camera(
    State(state): State<AppState>,
    auth: UserAuth,
    ApiPath(camera): ApiPath<CameraId>,
) -> Result<Json<CameraInfo>, ApiError> {
    let proof = authz::check::<View>(&state.store, &auth.session, camera).await?;
    Ok(Json(state.store.camera_info(&proof).await?))
}

/// Replaces the camera's sealed name (owner or admin).
#[utoipa::path(patch, path = "/v1/cameras/{camera_id}", tag = "cameras",
    params(("camera_id" = String, Path, format = Uuid)),
    request_body = RenameCameraRequest,
    responses((status = 200, body = CameraInfo), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn rename_camera(
    State(state): State<AppState>,
    auth: UserAuth,
    ApiPath(camera): ApiPath<CameraId>,
    ApiJson(req): ApiJson<RenameCameraRequest>,
) -> Result<Json<CameraInfo>, ApiError> {
    let proof = authz::check::<Manage>(&state.store, &auth.session, camera).await?;
    state.store.rename_camera(&proof, &req.name).await?;
    let view = authz::check::<View>(&state.store, &auth.session, camera).await?;
    Ok(Json(state.store.camera_info(&view).await?))
}

/// Removes the camera with all its events and media (owner only).
#[utoipa::path(delete, path = "/v1/cameras/{camera_id}", tag = "cameras",
    params(("camera_id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn remove_camera(
    State(state): State<AppState>,
    auth: UserAuth,
    ApiPath(camera): ApiPath<CameraId>,
) -> Result<StatusCode, ApiError> {
    let proof = authz::check::<Own>(&state.store, &auth.session, camera).await?;
    state.store.remove_camera(&proof).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's own grants (the camera content key per epoch, encrypted to the caller).
#[utoipa::path(get, path = "/v1/cameras/{camera_id}/grants", tag = "cameras",
    params(("camera_id" = String, Path, format = Uuid)),
    responses((status = 200, body = Vec<Grant>), (status = 404, body = Problem)))]
async fn list_grants(
    State(state): State<AppState>,
    auth: UserAuth,
    ClientIp(ip): ClientIp,
    ApiPath(camera): ApiPath<CameraId>,
) -> Result<Json<Vec<Grant>>, ApiError> {
    let proof = authz::check::<View>(&state.store, &auth.session, camera).await?;
    let grants = state.store.grants(&proof).await?;
    state.store.log_access(&proof, None, "grants", &ip).await?;
    Ok(Json(grants))
}

/// How long the camera's events are kept (owner or admin); `days: null` keeps them until
/// removed. A background sweeper deletes older events, rows and media together.
#[utoipa::path(put, path = "/v1/cameras/{camera_id}/retention", tag = "cameras",
    params(("camera_id" = String, Path, format = Uuid)),
    request_body = Retention,
    responses((status = 204), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn set_retention(
    State(state): State<AppState>,
    auth: UserAuth,
    ApiPath(camera): ApiPath<CameraId>,
    ApiJson(req): ApiJson<Retention>,
) -> Result<StatusCode, ApiError> {
    let proof = authz::check::<Manage>(&state.store, &auth.session, camera).await?;
    state.store.set_retention(&proof, req.days).await?;
    Ok(StatusCode::NO_CONTENT)
}
