//! A typed wrapper over the HTTP API (`/v1`). It knows URLs, bearer tokens, problem
//! JSON and `Retry-After`, and nothing about keys: every byte it moves is either public
//! or already encrypted.

use std::time::Duration;

use cc_core::api::{
    AccessEntry, AccessQuery, CameraInfo, Claim, CompleteClaimRequest, ConnectResponse,
    CreateClaimRequest, EventInfo, EventPage, EventQuery, Grant, Invitation, InviteRequest,
    LiveAck, LiveFrame, LoginRequest, LoginResponse, LookupQuery, Me, PairingRequest,
    PairingResult, PairingStarted, PreloginRequest, PreloginResponse, Problem, RecoveryCodes,
    RenameCameraRequest, RotateRequest, SecuritySettings, SessionInfo, ShareInfo, SignupRequest,
    SignupResponse, StepUpRequest, TotpCode, TotpSetup, TransferOffer, TransferRequest, UploadAck,
    UserPublic, DEVICE_STREAM_UPGRADE,
};
use cc_core::manifest::SignedManifest;
use cc_core::{CameraId, ClaimId, EventId, PairingId, SessionId, UserId};
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use reqwest::header::{HeaderMap, ACCEPT, CONNECTION, RETRY_AFTER, UPGRADE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;

use tokio_util::io::ReaderStream;

use crate::error::ClientError;

/// The server every command talks to unless told otherwise.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// Ordinary requests must finish within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Uploads and media downloads carry up to tens of MiB.
const MEDIA_TIMEOUT: Duration = Duration::from_secs(600);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The bytes of a camera's device stream, from an upgraded connection or a response body.
pub type DeviceStream = BoxStream<'static, std::io::Result<bytes::Bytes>>;

/// A connection to one server, optionally authenticated with a bearer token (a user
/// session or a camera's device token).
#[derive(Clone, Debug)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// The encrypted parts of one event upload, kept so a retry sends the very same bytes.
#[derive(Clone, Debug)]
pub struct EventUpload {
    pub manifest: SignedManifest,
    pub thumb: Vec<u8>,
    pub clip: Vec<u8>,
}

impl Api {
    /// Checks the URL once, so every later request can simply append a path.
    /// `https://` is verified against the system's trust store (`SSL_CERT_FILE` adds
    /// a private CA); plain `http://` suits a server on the same host or network.
    pub fn new(base: &str, token: Option<String>) -> Result<Self, ClientError> {
        let trimmed = base.trim().trim_end_matches('/');
        let url =
            reqwest::Url::parse(trimmed).map_err(|_| ClientError::BadServerUrl(base.to_owned()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(ClientError::BadServerUrl(base.to_owned()));
        }
        // rustls on ring, as for the object store; a provider installed earlier is kept.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("closedcircuit/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::network(trimmed, &e))?;
        Ok(Self {
            http,
            base: trimmed.to_owned(),
            token,
        })
    }

    /// The server's base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The same server with another credential.
    pub fn with_token(&self, token: Option<String>) -> Self {
        Self {
            token,
            ..self.clone()
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self.http.request(method, self.url(path));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    async fn send(&self, builder: RequestBuilder) -> Result<Response, ClientError> {
        let response = builder.send().await.map_err(|e| self.network(e))?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(problem_from(response).await)
        }
    }

    async fn json<T: DeserializeOwned>(&self, builder: RequestBuilder) -> Result<T, ClientError> {
        let response = self.send(builder.timeout(REQUEST_TIMEOUT)).await?;
        decode(response).await
    }

    async fn empty(&self, builder: RequestBuilder) -> Result<(), ClientError> {
        self.send(builder.timeout(REQUEST_TIMEOUT)).await.map(drop)
    }

    fn network(&self, error: reqwest::Error) -> ClientError {
        ClientError::network(&self.base, &error)
    }

    pub async fn prelogin(&self, req: &PreloginRequest) -> Result<PreloginResponse, ClientError> {
        self.json(
            self.request(Method::POST, "/v1/accounts/prelogin")
                .json(req),
        )
        .await
    }

    pub async fn signup(&self, req: &SignupRequest) -> Result<SignupResponse, ClientError> {
        self.json(self.request(Method::POST, "/v1/accounts").json(req))
            .await
    }

    pub async fn login(&self, req: &LoginRequest) -> Result<LoginResponse, ClientError> {
        self.json(self.request(Method::POST, "/v1/sessions").json(req))
            .await
    }

    /// Ends this session.
    pub async fn logout(&self) -> Result<(), ClientError> {
        self.empty(self.request(Method::DELETE, "/v1/sessions/current"))
            .await
    }

    /// Ends every session of the user.
    pub async fn logout_everywhere(&self) -> Result<(), ClientError> {
        self.empty(self.request(Method::DELETE, "/v1/sessions"))
            .await
    }

    pub async fn me(&self) -> Result<Me, ClientError> {
        self.json(self.request(Method::GET, "/v1/me")).await
    }

    pub async fn create_claim(&self, req: &CreateClaimRequest) -> Result<Claim, ClientError> {
        self.json(self.request(Method::POST, "/v1/claims").json(req))
            .await
    }

    /// The user's open claims.
    pub async fn claims(&self) -> Result<Vec<Claim>, ClientError> {
        self.json(self.request(Method::GET, "/v1/claims")).await
    }

    pub async fn complete_claim(
        &self,
        claim: ClaimId,
        req: &CompleteClaimRequest,
    ) -> Result<CameraInfo, ClientError> {
        let path = format!("/v1/claims/{claim}/complete");
        self.json(self.request(Method::POST, &path).json(req)).await
    }

    pub async fn delete_claim(&self, claim: ClaimId) -> Result<(), ClientError> {
        self.empty(self.request(Method::DELETE, &format!("/v1/claims/{claim}")))
            .await
    }

    pub async fn cameras(&self) -> Result<Vec<CameraInfo>, ClientError> {
        self.json(self.request(Method::GET, "/v1/cameras")).await
    }

    pub async fn camera(&self, camera: CameraId) -> Result<CameraInfo, ClientError> {
        self.json(self.request(Method::GET, &format!("/v1/cameras/{camera}")))
            .await
    }

    pub async fn rename_camera(
        &self,
        camera: CameraId,
        req: &RenameCameraRequest,
    ) -> Result<CameraInfo, ClientError> {
        let path = format!("/v1/cameras/{camera}");
        self.json(self.request(Method::PATCH, &path).json(req))
            .await
    }

    pub async fn remove_camera(&self, camera: CameraId) -> Result<(), ClientError> {
        self.empty(self.request(Method::DELETE, &format!("/v1/cameras/{camera}")))
            .await
    }

    /// Sets how many days the camera's events are kept (`None`: until removed).
    pub async fn set_retention(
        &self,
        camera: CameraId,
        days: Option<u32>,
    ) -> Result<(), ClientError> {
        let path = format!("/v1/cameras/{camera}/retention");
        let body = cc_core::api::Retention { days };
        self.empty(self.request(Method::PUT, &path).json(&body))
            .await
    }

    /// The caller's own grants for the camera, one per epoch.
    pub async fn grants(&self, camera: CameraId) -> Result<Vec<Grant>, ClientError> {
        let path = format!("/v1/cameras/{camera}/grants");
        self.json(self.request(Method::GET, &path)).await
    }

    pub async fn events(
        &self,
        camera: CameraId,
        query: &EventQuery,
    ) -> Result<EventPage, ClientError> {
        let path = format!("/v1/cameras/{camera}/events");
        self.json(self.request(Method::GET, &path).query(query))
            .await
    }

    pub async fn event(&self, camera: CameraId, event: EventId) -> Result<EventInfo, ClientError> {
        let path = format!("/v1/cameras/{camera}/events/{event}");
        self.json(self.request(Method::GET, &path)).await
    }

    /// The thumbnail ciphertext, refusing to read more than `max` bytes.
    pub async fn thumb(
        &self,
        camera: CameraId,
        event: EventId,
        max: u64,
    ) -> Result<Vec<u8>, ClientError> {
        self.media(&format!("/v1/cameras/{camera}/events/{event}/thumb"), max)
            .await
    }

    /// The clip ciphertext, refusing to read more than `max` bytes.
    pub async fn clip(
        &self,
        camera: CameraId,
        event: EventId,
        max: u64,
    ) -> Result<Vec<u8>, ClientError> {
        self.media(&format!("/v1/cameras/{camera}/events/{event}/clip"), max)
            .await
    }

    /// Downloads a media object with a size limit, so a misbehaving server cannot make
    /// the client read without end.
    async fn media(&self, path: &str, max: u64) -> Result<Vec<u8>, ClientError> {
        let response = self
            .send(self.request(Method::GET, path).timeout(MEDIA_TIMEOUT))
            .await?;
        let mut body = Vec::new();
        let mut chunks = response.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| self.network(e))?;
            if (body.len() + chunk.len()) as u64 > max {
                return Err(ClientError::Protocol {
                    status: 200,
                    detail: format!("{path} is larger than its signed size of {max} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Opens the Server-Sent Events stream of new events; the caller reads the body.
    pub async fn event_stream(&self) -> Result<Response, ClientError> {
        self.send(
            self.request(Method::GET, "/v1/events/stream")
                .header(ACCEPT, "text/event-stream"),
        )
        .await
    }

    /// Opens a camera's live view (Server-Sent Events of live segments); the caller reads
    /// the body.
    pub async fn live_stream(&self, camera: CameraId) -> Result<Response, ClientError> {
        self.send(
            self.request(Method::GET, &format!("/v1/cameras/{camera}/live"))
                .header(ACCEPT, "text/event-stream"),
        )
        .await
    }

    /// Another account's public keys, by email.
    pub async fn lookup_user(&self, email: &str) -> Result<UserPublic, ClientError> {
        let query = LookupQuery {
            email: email.to_owned(),
        };
        self.json(self.request(Method::GET, "/v1/users/lookup").query(&query))
            .await
    }

    /// Members and pending invitations of a camera.
    pub async fn shares(&self, camera: CameraId) -> Result<Vec<ShareInfo>, ClientError> {
        let path = format!("/v1/cameras/{camera}/shares");
        self.json(self.request(Method::GET, &path)).await
    }

    /// Invites a user to a camera, with grants already encrypted to them.
    pub async fn invite(&self, camera: CameraId, req: &InviteRequest) -> Result<(), ClientError> {
        let path = format!("/v1/cameras/{camera}/shares");
        self.empty(self.request(Method::POST, &path).json(req))
            .await
    }

    /// Removes a member, or withdraws an invitation.
    pub async fn revoke_share(&self, camera: CameraId, user: UserId) -> Result<(), ClientError> {
        let path = format!("/v1/cameras/{camera}/shares/{user}");
        self.empty(self.request(Method::DELETE, &path)).await
    }

    /// Invitations addressed to the caller.
    pub async fn invitations(&self) -> Result<Vec<Invitation>, ClientError> {
        self.json(self.request(Method::GET, "/v1/invitations"))
            .await
    }

    /// Accepts the invitation to a camera.
    pub async fn accept_invitation(&self, camera: CameraId) -> Result<(), ClientError> {
        let path = format!("/v1/invitations/{camera}/accept");
        self.empty(self.request(Method::POST, &path)).await
    }

    /// Moves a camera to its next content-key epoch (owner only).
    pub async fn rotate(&self, camera: CameraId, req: &RotateRequest) -> Result<(), ClientError> {
        let path = format!("/v1/cameras/{camera}/rotate");
        self.empty(self.request(Method::POST, &path).json(req))
            .await
    }

    /// Offers a camera to another account (owner only).
    pub async fn offer_transfer(
        &self,
        camera: CameraId,
        req: &TransferRequest,
    ) -> Result<(), ClientError> {
        let path = format!("/v1/cameras/{camera}/transfer");
        self.empty(self.request(Method::POST, &path).json(req))
            .await
    }

    /// Withdraws a pending transfer offer (owner only).
    pub async fn cancel_transfer(&self, camera: CameraId) -> Result<(), ClientError> {
        let path = format!("/v1/cameras/{camera}/transfer");
        self.empty(self.request(Method::DELETE, &path)).await
    }

    /// Cameras offered to the caller.
    pub async fn transfer_offers(&self) -> Result<Vec<TransferOffer>, ClientError> {
        self.json(self.request(Method::GET, "/v1/transfers")).await
    }

    /// Takes over an offered camera with a rotation to the caller's own key.
    pub async fn accept_transfer(
        &self,
        camera: CameraId,
        req: &RotateRequest,
    ) -> Result<(), ClientError> {
        let path = format!("/v1/transfers/{camera}/accept");
        self.empty(self.request(Method::POST, &path).json(req))
            .await
    }

    /// Who read what from a camera, and when (owner and admins).
    pub async fn access_log(
        &self,
        camera: CameraId,
        query: &AccessQuery,
    ) -> Result<Vec<AccessEntry>, ClientError> {
        let path = format!("/v1/cameras/{camera}/access-log");
        self.json(self.request(Method::GET, &path).query(query))
            .await
    }

    /// The sessions of the caller's account.
    pub async fn sessions(&self) -> Result<Vec<SessionInfo>, ClientError> {
        self.json(self.request(Method::GET, "/v1/sessions")).await
    }

    /// Ends one session of the caller's account.
    pub async fn revoke_session(&self, session: SessionId) -> Result<(), ClientError> {
        let path = format!("/v1/sessions/{session}");
        self.empty(self.request(Method::DELETE, &path)).await
    }

    /// Proves presence again on this session (password-derived key or TOTP code).
    pub async fn step_up(&self, req: &StepUpRequest) -> Result<(), ClientError> {
        self.empty(
            self.request(Method::POST, "/v1/sessions/current/step-up")
                .json(req),
        )
        .await
    }

    /// Starts two-factor setup.
    pub async fn totp_setup(&self) -> Result<TotpSetup, ClientError> {
        self.json(self.request(Method::POST, "/v1/me/2fa/setup"))
            .await
    }

    /// Turns two-factor login on with a first code; returns the recovery codes.
    pub async fn totp_enable(&self, req: &TotpCode) -> Result<RecoveryCodes, ClientError> {
        self.json(self.request(Method::POST, "/v1/me/2fa/enable").json(req))
            .await
    }

    /// The account's security settings.
    pub async fn security(&self) -> Result<SecuritySettings, ClientError> {
        self.json(self.request(Method::GET, "/v1/me/security"))
            .await
    }

    /// Changes the account's security settings.
    pub async fn set_security(
        &self,
        req: &SecuritySettings,
    ) -> Result<SecuritySettings, ClientError> {
        self.json(self.request(Method::PUT, "/v1/me/security").json(req))
            .await
    }

    /// A camera presents a claim code (by hash) with its device key and proof.
    pub async fn pair(&self, req: &PairingRequest) -> Result<PairingStarted, ClientError> {
        self.json(self.request(Method::POST, "/v1/device/pair").json(req))
            .await
    }

    /// `None` while the owner has not completed pairing yet.
    pub async fn poll_pairing(
        &self,
        pairing: PairingId,
    ) -> Result<Option<PairingResult>, ClientError> {
        let path = format!("/v1/device/pair/{pairing}");
        let response = self
            .send(self.request(Method::GET, &path).timeout(REQUEST_TIMEOUT))
            .await?;
        if response.status() == StatusCode::ACCEPTED {
            return Ok(None);
        }
        decode(response).await.map(Some)
    }

    /// A camera comes online and learns its epoch.
    pub async fn connect(&self) -> Result<ConnectResponse, ClientError> {
        self.json(self.request(Method::POST, "/v1/device/connect"))
            .await
    }

    /// A camera's long-lived stream of `config` and `live` messages (Server-Sent Events
    /// text). It offers to upgrade the connection, which spares the server an HTTP/1
    /// connection's buffers per idle camera, and reads a plain response body from a
    /// server or proxy that declines.
    pub async fn device_stream(&self) -> Result<DeviceStream, ClientError> {
        let response = self
            .request(Method::GET, "/v1/device/stream")
            .header(ACCEPT, "text/event-stream")
            .header(CONNECTION, "upgrade")
            .header(UPGRADE, DEVICE_STREAM_UPGRADE)
            .send()
            .await
            .map_err(|e| self.network(e))?;
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            let upgraded = response.upgrade().await.map_err(|e| self.network(e))?;
            return Ok(ReaderStream::new(upgraded).boxed());
        }
        if response.status().is_success() {
            return Ok(response
                .bytes_stream()
                .map_err(std::io::Error::other)
                .boxed());
        }
        Err(problem_from(response).await)
    }

    /// Sends one live segment for whoever watches.
    pub async fn send_live(&self, frame: &LiveFrame) -> Result<LiveAck, ClientError> {
        self.json(self.request(Method::POST, "/v1/device/live").json(frame))
            .await
    }

    /// Uploads one event as multipart: `manifest` first, then `thumb` and `clip`.
    pub async fn upload_event(
        &self,
        event: EventId,
        upload: &EventUpload,
    ) -> Result<UploadAck, ClientError> {
        let manifest = serde_json::to_string(&upload.manifest).map_err(|e| {
            ClientError::Invalid(format!("cannot encode the manifest of event {event}: {e}"))
        })?;
        let form = reqwest::multipart::Form::new()
            .part("manifest", part(manifest.into_bytes(), "application/json")?)
            .part("thumb", part(upload.thumb.clone(), OCTET_STREAM)?)
            .part("clip", part(upload.clip.clone(), OCTET_STREAM)?);
        let path = format!("/v1/device/events/{event}");
        let response = self
            .send(
                self.request(Method::PUT, &path)
                    .multipart(form)
                    .timeout(MEDIA_TIMEOUT),
            )
            .await?;
        decode(response).await
    }
}

const OCTET_STREAM: &str = "application/octet-stream";

fn part(bytes: Vec<u8>, mime: &'static str) -> Result<reqwest::multipart::Part, ClientError> {
    reqwest::multipart::Part::bytes(bytes)
        .mime_str(mime)
        .map_err(|e| ClientError::Invalid(format!("content type {mime}: {e}")))
}

async fn decode<T: DeserializeOwned>(response: Response) -> Result<T, ClientError> {
    let status = response.status().as_u16();
    let bytes = response.bytes().await.map_err(|e| ClientError::Protocol {
        status,
        detail: format!("the answer broke off: {e}"),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol {
        status,
        detail: format!("the answer is not what the API describes: {e}"),
    })
}

/// Turns an error response into a [`ClientError::Problem`], or a protocol error when
/// the body is not problem JSON (e.g. a proxy's HTML page).
async fn problem_from(response: Response) -> ClientError {
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let body = response.bytes().await.unwrap_or_default();
    match serde_json::from_slice::<Problem>(&body) {
        Ok(problem) => ClientError::Problem {
            status: status.as_u16(),
            code: problem.code,
            title: problem.title,
            detail: problem.detail,
            retry_after,
        },
        Err(_) if retry_after.is_some() => ClientError::Problem {
            status: status.as_u16(),
            code: "unavailable".to_owned(),
            title: status
                .canonical_reason()
                .unwrap_or("Unavailable")
                .to_owned(),
            detail: None,
            retry_after,
        },
        Err(_) => ClientError::Protocol {
            status: status.as_u16(),
            detail: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        },
    }
}

/// `Retry-After` in seconds (the form this API uses).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?;
    text.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn server_urls_are_checked_and_normalised() {
        let api = Api::new("http://127.0.0.1:8080/", None);
        assert_eq!(
            api.ok().map(|a| a.base().to_owned()).as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert!(Api::new("127.0.0.1:8080", None).is_err());
        assert!(Api::new("ftp://example.org", None).is_err());
        assert!(Api::new("https://example.org", None).is_ok());
        assert!(Api::new("not a url", None).is_err());
    }

    #[test]
    fn retry_after_reads_seconds_only() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static(" 7 "));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
