//! The one mapping from internal errors to HTTP: RFC 9457 problem JSON with a stable
//! `code`. Internals are logged, never sent.

use axum::extract::multipart::MultipartError;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cc_core::api::Problem;
use cc_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("not found")]
    NotFound,
    #[error("authentication required")]
    Unauthenticated,
    #[error("wrong email or password")]
    BadCredentials,
    #[error("a two-factor code is required")]
    SecondFactorRequired,
    #[error("verify again before video plays")]
    StepUpRequired,
    #[error("too many attempts")]
    TooManyAttempts { retry_after_secs: u64 },
    #[error("your role on this camera does not allow this")]
    Forbidden,
    #[error("{0}")]
    Conflict(&'static str),
    /// A client mistake with its own stable code (e.g. `upload_truncated`).
    #[error("{detail}")]
    Bad {
        status: StatusCode,
        code: &'static str,
        detail: String,
    },
    /// The database is saturated (pool exhausted, write lock contended): slower, not
    /// wrong, so the caller is told to come back.
    #[error("busy")]
    Busy,
    /// The blob store did not answer or failed (an S3 outage, a timeout): transient, so
    /// the caller is told to come back rather than given a 500.
    #[error("blob store unavailable")]
    StorageUnavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn bad(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Bad {
            status: StatusCode::BAD_REQUEST,
            code,
            detail: detail.into(),
        }
    }

    /// The camera encrypted to an epoch other than its current one (after a rotation):
    /// it must reconnect and fetch the new certificate.
    pub fn stale_epoch(current: u32, used: u32) -> Self {
        Self::Bad {
            status: StatusCode::CONFLICT,
            code: "stale_epoch",
            detail: format!("encrypt to epoch {current}, not {used}"),
        }
    }

    pub fn too_large(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Bad {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code,
            detail: detail.into(),
        }
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found", "Not found"),
            ApiError::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authentication required",
            ),
            ApiError::BadCredentials => (
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "Wrong email or password",
            ),
            ApiError::SecondFactorRequired => (
                StatusCode::UNAUTHORIZED,
                "second_factor_required",
                "A two-factor code is required",
            ),
            ApiError::StepUpRequired => (
                StatusCode::FORBIDDEN,
                "step_up_required",
                "Verify your password or a two-factor code before video plays",
            ),
            ApiError::TooManyAttempts { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                "Too many attempts",
            ),
            ApiError::Forbidden => (StatusCode::FORBIDDEN, "forbidden", "Not permitted"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            ApiError::Bad { status, code, .. } => (*status, code, "Bad request"),
            ApiError::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "Busy; retry later",
            ),
            ApiError::StorageUnavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "Storage is not answering; retry later",
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal server error",
            ),
        }
    }
}

/// Builds a problem response; also used for routes that do not exist.
pub fn problem(status: StatusCode, code: &str, title: &str, detail: Option<String>) -> Response {
    let body = Problem {
        type_uri: format!("https://closedcircuit.invalid/problems/{code}"),
        title: title.to_owned(),
        status: status.as_u16(),
        code: code.to_owned(),
        detail,
    };
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, title) = self.parts();
        let detail = match &self {
            ApiError::Internal(message) => {
                tracing::error!(%message, "internal error");
                None
            }
            ApiError::StorageUnavailable(message) => {
                tracing::warn!(%message, "blob store failed; asking the client to retry");
                None
            }
            ApiError::Conflict(d) => Some((*d).to_owned()),
            ApiError::Bad { detail, .. } => Some(detail.clone()),
            _ => None,
        };
        let mut response = problem(status, code, title, detail);
        let retry_after = match self {
            ApiError::TooManyAttempts { retry_after_secs } => Some(retry_after_secs),
            ApiError::Busy | ApiError::StorageUnavailable(_) => Some(rand::random::<u64>() % 3 + 1),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::Unauthenticated => ApiError::Unauthenticated,
            StoreError::BadCredentials => ApiError::BadCredentials,
            StoreError::SecondFactorRequired => ApiError::SecondFactorRequired,
            StoreError::Forbidden => ApiError::Forbidden,
            StoreError::Conflict(d) => ApiError::Conflict(d),
            StoreError::Invalid(d) => ApiError::bad("invalid_request", d),
            StoreError::QuotaExceeded => ApiError::Bad {
                status: StatusCode::FORBIDDEN,
                code: "quota_exceeded",
                detail:
                    "the camera owner's storage quota is full; delete events or shorten retention"
                        .into(),
            },
            StoreError::Db(e) if is_contention(&e) => {
                tracing::warn!(error = %e, "database saturated; asking the client to retry");
                ApiError::Busy
            }
            StoreError::Unavailable(why) => {
                tracing::warn!(error = %why, "write not committed; asking the client to retry");
                ApiError::Busy
            }
            StoreError::Db(e) => ApiError::Internal(format!("database: {e}")),
            StoreError::Blob(e) => ApiError::StorageUnavailable(format!("blob store: {e}")),
            StoreError::Corrupt(e) => ApiError::Internal(format!("corrupt data: {e}")),
        }
    }
}

/// Pool timeouts, SQLite's busy/locked codes and PostgreSQL's deadlock and serialization
/// failures mean load, not a fault: the transaction was rolled back and a retry is safe.
fn is_contention(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(db) => {
            matches!(
                db.code().as_deref(),
                Some("5" | "6" | "517" | "261" | "40P01" | "40001")
            )
        }
        _ => false,
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let code = match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            _ => "invalid_json",
        };
        ApiError::Bad {
            status: r.status(),
            code,
            detail: r.body_text(),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::bad("invalid_path", r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::bad("invalid_query", r.body_text())
    }
}

impl From<MultipartError> for ApiError {
    fn from(e: MultipartError) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large("upload_too_large", e.body_text())
        } else {
            ApiError::bad("upload_malformed", e.body_text())
        }
    }
}
