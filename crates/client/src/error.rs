//! The one error type of the client library. Callers (the CLI, tests) need to tell a
//! server refusal (with its stable problem `code`) from a network failure, a failed
//! verification or a local file problem, so each has its own variant.

use std::path::PathBuf;
use std::time::Duration;

use cc_core::{CameraId, EventId};

/// Everything that can go wrong in a client or camera-agent operation.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an RFC 9457 problem.
    #[error("{}", problem_text(.status, .code, .title, .detail.as_deref()))]
    Problem {
        status: u16,
        /// The stable machine-readable code, e.g. `not_found`.
        code: String,
        title: String,
        detail: Option<String>,
        /// From `Retry-After`, when the server asked to be left alone for a while.
        retry_after: Option<Duration>,
    },
    /// The server could not be reached, or the connection broke.
    #[error("cannot reach the server at {url}: {detail}")]
    Network { url: String, detail: String },
    /// The server answered something that is not part of the API.
    #[error("unexpected answer from the server (HTTP {status}): {detail}")]
    Protocol { status: u16, detail: String },
    #[error("the server URL {0:?} is not a valid https:// or http:// URL")]
    BadServerUrl(String),
    #[error("not logged in; run `closedcircuit account login --email EMAIL` first")]
    NotLoggedIn,
    #[error("{what} {path}: {error}")]
    Io {
        what: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path} is not a valid {what}: {detail}")]
    BadFile {
        what: &'static str,
        path: PathBuf,
        detail: String,
    },
    #[error("{0} already exists; pass --force to overwrite it")]
    WouldOverwrite(PathBuf),
    #[error(transparent)]
    Key(#[from] cc_core::keys::KeyError),
    #[error(transparent)]
    Envelope(#[from] cc_core::envelope::EnvelopeError),
    #[error(transparent)]
    Claim(#[from] cc_core::claim::ClaimError),
    #[error(
        "the camera's pairing proof does not match this claim code — someone other than your camera tried to pair"
    )]
    PairingProofMismatch,
    /// Pairing from the camera's side failed a check against the claim code.
    #[error("pairing refused: {0}")]
    PairingRefused(String),
    /// The server no longer accepts the camera's device token.
    #[error(
        "the server refuses this camera's device token (code unauthenticated): was the camera removed? To pair it again, delete {state_dir}/state.json and run the agent with a new claim code"
    )]
    DeviceTokenRefused { state_dir: PathBuf },
    #[error("camera {camera} cannot be trusted: {reason}")]
    UntrustedCamera { camera: CameraId, reason: String },
    #[error(
        "camera {camera} is now presented as owned by a different key than the one pinned when you first saw it (pinned {pinned}, now {presented}); refusing to trust it"
    )]
    OwnerKeyChanged {
        camera: CameraId,
        pinned: String,
        presented: String,
    },
    /// An event failed verification; it must be reported, never displayed.
    #[error("event {event} from camera {camera} does not verify: {reason}; NOT shown")]
    Unverified {
        camera: CameraId,
        event: EventId,
        reason: String,
    },
    #[error("you have no camera {0} (code not_found)")]
    CameraNotFound(CameraId),
    #[error("no camera of yours has event {0} (code not_found)")]
    EventNotFound(EventId),
    #[error("you have no key for epoch {epoch} of camera {camera}")]
    NoGrant { camera: CameraId, epoch: u32 },
    #[error("{0}")]
    Invalid(String),
}

fn problem_text(status: &u16, code: &str, title: &str, detail: Option<&str>) -> String {
    match detail {
        Some(detail) if !detail.is_empty() => {
            format!("{title}: {detail} (code {code}, HTTP {status})")
        }
        _ => format!("{title} (code {code}, HTTP {status})"),
    }
}

impl ClientError {
    /// The server's problem code, when the server refused the request.
    pub fn problem_code(&self) -> Option<&str> {
        match self {
            ClientError::Problem { code, .. } => Some(code),
            ClientError::CameraNotFound(_) | ClientError::EventNotFound(_) => Some("not_found"),
            _ => None,
        }
    }

    /// Whether trying the same request again later may succeed: the network failed, the
    /// server is overloaded (`429`, `503`) or failed internally (`5xx`).
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Network { .. } => true,
            ClientError::Problem { status, .. } | ClientError::Protocol { status, .. } => {
                *status == 429 || *status >= 500
            }
            _ => false,
        }
    }

    /// How long the server asked us to wait before trying again, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ClientError::Problem { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Names the camera when the server says it does not exist (for this user).
    pub(crate) fn about_camera(self, camera: CameraId) -> Self {
        match self {
            ClientError::Problem { code, .. } if code == "not_found" => {
                ClientError::CameraNotFound(camera)
            }
            other => other,
        }
    }

    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        ClientError::Io {
            what,
            path: path.into(),
            error,
        }
    }

    /// A network failure, described with its whole chain of causes (reqwest's own
    /// message leaves out the one people need, e.g. "connection refused").
    pub(crate) fn network(url: &str, error: &reqwest::Error) -> Self {
        let mut detail = error.to_string();
        let mut cause = std::error::Error::source(error);
        while let Some(inner) = cause {
            let text = inner.to_string();
            if !detail.ends_with(&text) {
                detail = format!("{detail}: {text}");
            }
            cause = inner.source();
        }
        if detail.contains("UnknownIssuer") {
            detail.push_str(
                " (a server with a private certificate authority: set SSL_CERT_FILE to its PEM file)",
            );
        }
        ClientError::Network {
            url: url.to_owned(),
            detail,
        }
    }
}
