//! `/v1/accounts`, `/v1/sessions`, `/v1/me`: sign-up and login. The client derives
//! keys; the server sees only the auth key and wrapped key material.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use cc_core::api::{
    LoginRequest, LoginResponse, Me, PreloginRequest, PreloginResponse, Problem, RecoveryCodes,
    SecuritySettings, SessionInfo, SignupRequest, SignupResponse, StepUpRequest, TotpCode,
    TotpSetup,
};
use cc_core::keys::KdfParams;
use cc_core::SessionId;
use cc_store::authz;
use cc_store::StoreError;
use sha2::{Digest, Sha256};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ClientIp, UserAuth};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(prelogin))
        .routes(routes!(signup))
        .routes(routes!(login, list_sessions, logout_everywhere))
        .routes(routes!(logout))
        .routes(routes!(revoke_session))
        .routes(routes!(step_up))
        .routes(routes!(me))
        .routes(routes!(totp_setup))
        .routes(routes!(totp_enable))
        .routes(routes!(get_security, put_security))
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

/// Logs in with the client-derived auth key (and a TOTP code when two-factor login is
/// on); returns a bearer token and the wrapped keys. Repeated failures are throttled.
#[utoipa::path(post, path = "/v1/sessions", tag = "accounts",
    request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = Problem), (status = 429, body = Problem)))]
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let throttle = &state.login_throttle;
    if let Some(retry_after_secs) = throttle.blocked(&req.email, &ip).await {
        return Err(ApiError::TooManyAttempts { retry_after_secs });
    }
    match state.store.login(&req, &ip, state.config.session_ttl).await {
        Ok(response) => {
            throttle.succeeded(&req.email).await;
            Ok(Json(response))
        }
        Err(e) => {
            let wrong_code = matches!(e, StoreError::SecondFactorRequired) && req.totp.is_some();
            if wrong_code || matches!(e, StoreError::BadCredentials) {
                throttle.failed(&req.email, &ip).await;
            }
            Err(e.into())
        }
    }
}

/// The caller's live sessions.
#[utoipa::path(get, path = "/v1/sessions", tag = "accounts",
    responses((status = 200, body = Vec<SessionInfo>), (status = 401, body = Problem)))]
async fn list_sessions(
    State(state): State<AppState>,
    auth: UserAuth,
) -> Result<Json<Vec<SessionInfo>>, ApiError> {
    Ok(Json(state.store.sessions(&auth.session).await?))
}

/// Ends one of the caller's sessions, with immediate effect.
#[utoipa::path(delete, path = "/v1/sessions/{session_id}", tag = "accounts",
    params(("session_id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn revoke_session(
    State(state): State<AppState>,
    auth: UserAuth,
    ApiPath(target): ApiPath<SessionId>,
) -> Result<StatusCode, ApiError> {
    state.store.revoke_session(&auth.session, target).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Re-verifies this session with the password-derived auth key or a TOTP code, so event
/// video plays on accounts that require step-up.
#[utoipa::path(post, path = "/v1/sessions/current/step-up", tag = "accounts",
    request_body = StepUpRequest,
    responses((status = 204), (status = 401, body = Problem), (status = 429, body = Problem)))]
async fn step_up(
    State(state): State<AppState>,
    auth: UserAuth,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<StepUpRequest>,
) -> Result<StatusCode, ApiError> {
    let who = auth.session.user().to_string();
    if let Some(retry_after_secs) = state.login_throttle.blocked(&who, &ip).await {
        return Err(ApiError::TooManyAttempts { retry_after_secs });
    }
    if let Err(e) = state
        .store
        .step_up(&auth.session, req.auth_key.as_deref(), req.totp.as_deref())
        .await
    {
        state.login_throttle.failed(&who, &ip).await;
        return Err(e.into());
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Starts two-factor setup: a secret and an `otpauth://` URL for an authenticator app.
#[utoipa::path(post, path = "/v1/me/2fa/setup", tag = "accounts",
    responses((status = 200, body = TotpSetup), (status = 409, body = Problem)))]
async fn totp_setup(
    State(state): State<AppState>,
    auth: UserAuth,
) -> Result<Json<TotpSetup>, ApiError> {
    let (secret, otpauth_url) = state.store.totp_setup(&auth.session).await?;
    Ok(Json(TotpSetup {
        secret,
        otpauth_url,
    }))
}

/// Confirms the authenticator with a code; two-factor login is on from now. Returns
/// recovery codes, shown once.
#[utoipa::path(post, path = "/v1/me/2fa/enable", tag = "accounts",
    request_body = TotpCode,
    responses((status = 200, body = RecoveryCodes), (status = 400, body = Problem), (status = 409, body = Problem)))]
async fn totp_enable(
    State(state): State<AppState>,
    auth: UserAuth,
    ApiJson(req): ApiJson<TotpCode>,
) -> Result<Json<RecoveryCodes>, ApiError> {
    let codes = state.store.totp_enable(&auth.session, &req.code).await?;
    Ok(Json(RecoveryCodes { codes }))
}

/// The account's security settings.
#[utoipa::path(get, path = "/v1/me/security", tag = "accounts",
    responses((status = 200, body = SecuritySettings), (status = 401, body = Problem)))]
async fn get_security(
    State(state): State<AppState>,
    auth: UserAuth,
) -> Result<Json<SecuritySettings>, ApiError> {
    Ok(Json(state.store.security_settings(&auth.session).await?))
}

/// Turns step-up before video on or off for the account.
#[utoipa::path(put, path = "/v1/me/security", tag = "accounts",
    request_body = SecuritySettings,
    responses((status = 200, body = SecuritySettings), (status = 401, body = Problem)))]
async fn put_security(
    State(state): State<AppState>,
    auth: UserAuth,
    ApiJson(req): ApiJson<SecuritySettings>,
) -> Result<Json<SecuritySettings>, ApiError> {
    state
        .store
        .set_require_step_up(&auth.session, req.require_step_up)
        .await?;
    Ok(Json(state.store.security_settings(&auth.session).await?))
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
