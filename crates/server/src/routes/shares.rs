//! Sharing, key rotation and the per-camera access log. Grants arrive encrypted from the
//! inviting or rotating client; the server only stores them for the right member.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use cc_core::api::{
    AccessEntry, AccessQuery, Invitation, InviteRequest, LookupQuery, Problem, RotateRequest,
    ShareInfo, UserPublic,
};
use cc_core::certificate::SignedCertificate;
use cc_core::{CameraId, UserId};
use cc_store::authz::{self, Manage, Own, View};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, UserAuth};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(lookup_user))
        .routes(routes!(list_shares, invite))
        .routes(routes!(revoke))
        .routes(routes!(list_invitations))
        .routes(routes!(accept_invitation))
        .routes(routes!(list_certificates))
        .routes(routes!(rotate))
        .routes(routes!(access_log))
}

/// Another account's public keys, to encrypt grants to and to compare verification phrases.
#[utoipa::path(get, path = "/v1/users/lookup", tag = "sharing",
    params(LookupQuery),
    responses((status = 200, body = UserPublic), (status = 404, body = Problem)))]
async fn lookup_user(
    State(state): State<AppState>,
    auth: UserAuth,
    ApiQuery(query): ApiQuery<LookupQuery>,
) -> Result<Json<UserPublic>, ApiError> {
    Ok(Json(
        state.store.lookup_user(&auth.session, &query.email).await?,
    ))
}

/// Members and pending invitations of a camera.
#[utoipa::path(get, path = "/v1/cameras/{camera_id}/shares", tag = "sharing",
    params(("camera_id" = String, Path, format = Uuid)),
    responses((status = 200, body = Vec<ShareInfo>), (status = 404, body = Problem)))]
async fn list_shares(
    State(state): State<AppState>,
    auth: UserAuth,
    ApiPath(camera): ApiPath<CameraId>,
) -> Result<Json<Vec<ShareInfo>>, ApiError> {
    let proof = authz::check::<View>(&state.store, &auth.session, camera).await?;
    Ok(Json(state.store.shares(&proof).await?))
}

/// Invites a user (owner or admin), with grants the inviter's client encrypted to them.
#[utoipa::path(post, path = "/v1/cameras/{camera_id}/shares", tag = "sharing",
    params(("camera_id" = String, Path, format = Uuid)),
    request_body = InviteRequest,
    responses((status = 201), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn invite(
    State(state): State<AppState>,
    auth: UserAuth,
    ApiPath(camera): ApiPath<CameraId>,
    ApiJson(req): ApiJson<InviteRequest>,
) -> Result<StatusCode, ApiError> {
    let proof = authz::check::<Manage>(&state.store, &auth.session, camera).await?;
    state.store.invite(&proof, &req).await?;
    Ok(StatusCode::CREATED)
}

/// Removes a member or withdraws an invitation; access ends at once, and the camera is
/// flagged so the owner's client rotates its content key.
#[utoipa::path(delete, path = "/v1/cameras/{camera_id}/shares/{user_id}", tag = "sharing",
    params(("camera_id" = String, Path, format = Uuid), ("user_id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn revoke(
    State(state): State<AppState>,
    auth: UserAuth,
    ApiPath((camera, user)): ApiPath<(CameraId, UserId)>,
) -> Result<StatusCode, ApiError> {
    let proof = authz::check::<Manage>(&state.store, &auth.session, camera).await?;
    state.store.revoke_member(&proof, user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Invitations addressed to the caller.
#[utoipa::path(get, path = "/v1/invitations", tag = "sharing",
    responses((status = 200, body = Vec<Invitation>), (status = 401, body = Problem)))]
async fn list_invitations(
    State(state): State<AppState>,
    auth: UserAuth,
) -> Result<Json<Vec<Invitation>>, ApiError> {
    Ok(Json(state.store.invitations(&auth.session).await?))
}

/// Accepts the invitation to a camera.
#[utoipa::path(post, path = "/v1/invitations/{camera_id}/accept", tag = "sharing",
    params(("camera_id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn accept_invitation(
    State(state): State<AppState>,
    auth: UserAuth,
    ApiPath(camera): ApiPath<CameraId>,
) -> Result<StatusCode, ApiError> {
    state.store.accept_invitation(&auth.session, camera).await?;
    state.fanout.granted(auth.session.user(), camera).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Every owner-signed certificate of the camera, one per content-key epoch.
#[utoipa::path(get, path = "/v1/cameras/{camera_id}/certificates", tag = "sharing",
    params(("camera_id" = String, Path, format = Uuid)),
    responses((status = 200, body = Vec<SignedCertificate>), (status = 404, body = Problem)))]
async fn list_certificates(
    State(state): State<AppState>,
    auth: UserAuth,
    ApiPath(camera): ApiPath<CameraId>,
) -> Result<Json<Vec<SignedCertificate>>, ApiError> {
    let proof = authz::check::<View>(&state.store, &auth.session, camera).await?;
    Ok(Json(state.store.certificates(&proof).await?))
}

/// Moves the camera to a new content key (owner only): a certificate for the next epoch
/// and a grant for every remaining member.
#[utoipa::path(post, path = "/v1/cameras/{camera_id}/rotate", tag = "sharing",
    params(("camera_id" = String, Path, format = Uuid)),
    request_body = RotateRequest,
    responses((status = 204), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn rotate(
    State(state): State<AppState>,
    auth: UserAuth,
    ApiPath(camera): ApiPath<CameraId>,
    ApiJson(req): ApiJson<RotateRequest>,
) -> Result<StatusCode, ApiError> {
    let proof = authz::check::<Own>(&state.store, &auth.session, camera).await?;
    state.store.rotate(&proof, &req).await?;
    // Connected cameras learn the new epoch on their stream; nobody listening is fine.
    state.fanout.rotated(camera).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Who saw what from this camera, and when (owner and admins).
#[utoipa::path(get, path = "/v1/cameras/{camera_id}/access-log", tag = "sharing",
    params(("camera_id" = String, Path, format = Uuid), AccessQuery),
    responses((status = 200, body = Vec<AccessEntry>), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn access_log(
    State(state): State<AppState>,
    auth: UserAuth,
    ApiPath(camera): ApiPath<CameraId>,
    ApiQuery(query): ApiQuery<AccessQuery>,
) -> Result<Json<Vec<AccessEntry>>, ApiError> {
    let proof = authz::check::<Manage>(&state.store, &auth.session, camera).await?;
    Ok(Json(state.store.access_log(&proof, &query).await?))
}
