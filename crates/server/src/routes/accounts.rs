//! `/v1/accounts`, `/v1/sessions`, `/v1/me`: sign-up and login. The client derives
//! keys; the server sees only the auth key and wrapped key material.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use cc_core::api::{
    LoginRequest, LoginResponse, Me, PreloginRequest, PreloginResponse, Problem, SignupRequest,
    SignupResponse,
};
use cc_core::keys::KdfParams;
use cc_store::authz;
use sha2::{Digest, Sha256};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ApiJson, ClientIp, UserAuth};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(prelogin))
        .routes(routes!(signup))
        .routes(routes!(login, logout_everywhere))
        .routes(routes!(logout))
        .routes(routes!(me))
}

/// Salt and KDF parameters for an email. Unknown emails get stable decoy values, so the
/// answer does not reveal whether an account exists.
#[utoipa::path(post, path = "/v1/accounts/prelogin", tag = "accounts",
    request_body = PreloginRequest,
    responses((status = 200, body = PreloginResponse), (status = 400, body = Problem)))]
async fn prelogin(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<PreloginRequest>,
) -> Result<Json<PreloginResponse>, ApiError> {
    let found = state.store.prelogin(&req.email).await?;
    let (salt, kdf) = found.unwrap_or_else(|| {
        let digest = Sha256::new()
            .chain_update(state.config.instance_secret)
            .chain_update(req.email.trim().to_lowercase().as_bytes())
            .finalize();
        (digest[..16].to_vec(), KdfParams::default())
    });
    Ok(Json(PreloginResponse { salt, kdf }))
}

/// Creates an account from keys made on the client.
#[utoipa::path(post, path = "/v1/accounts", tag = "accounts",
    request_body = SignupRequest,
    responses((status = 201, body = SignupResponse), (status = 400, body = Problem), (status = 409, body = Problem)))]
async fn signup(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SignupRequest>,
) -> Result<(StatusCode, Json<SignupResponse>), ApiError> {
    let user_id = state.store.create_user(&req).await?;
    Ok((StatusCode::CREATED, Json(SignupResponse { user_id })))
}

/// Logs in with the client-derived auth key; returns a bearer token and the wrapped keys.
#[utoipa::path(post, path = "/v1/sessions", tag = "accounts",
    request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = Problem)))]
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let ttl = state.config.session_ttl;
    Ok(Json(
        state
            .store
            .login(&req.email, &req.auth_key, &req.client, &ip, ttl)
            .await?,
    ))
}

/// Ends the calling session.
#[utoipa::path(delete, path = "/v1/sessions/current", tag = "accounts",
    responses((status = 204), (status = 401, body = Problem)))]
async fn logout(State(state): State<AppState>, auth: UserAuth) -> Result<StatusCode, ApiError> {
    authz::revoke(&state.store, &auth.session).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every session of the calling user ("log out everywhere").
#[utoipa::path(delete, path = "/v1/sessions", tag = "accounts",
    responses((status = 204), (status = 401, body = Problem)))]
async fn logout_everywhere(
    State(state): State<AppState>,
    auth: UserAuth,
) -> Result<StatusCode, ApiError> {
    authz::revoke_all(&state.store, &auth.session).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The calling user's account and public keys.
#[utoipa::path(get, path = "/v1/me", tag = "accounts",
    responses((status = 200, body = Me), (status = 401, body = Problem)))]
async fn me(State(state): State<AppState>, auth: UserAuth) -> Result<Json<Me>, ApiError> {
    Ok(Json(state.store.me(&auth.session).await?))
}
