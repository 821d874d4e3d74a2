//! Request and response bodies of the HTTP API (`/v1`). Binary fields are base64;
//! times are RFC 3339 in UTC. Shared by the server, the CLI and the camera agent so the
//! two sides cannot drift apart.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::certificate::SignedCertificate;
use crate::keys::KdfParams;
use crate::live::SignedSegment;
use crate::manifest::{EventKind, SignedManifest};
use crate::transfer::SignedTransfer;
use crate::{CameraId, ClaimId, EventId, PairingId, SessionId, UserId};

/// RFC 9457 problem details, with a stable machine-readable `code`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    /// Stable identifier of the error, e.g. `not_found`, `upload_truncated`.
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PreloginRequest {
    pub email: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PreloginResponse {
    #[serde(with = "crate::b64")]
    #[schema(value_type = String, format = Byte)]
    pub salt: Vec<u8>,
    pub kdf: KdfParams,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SignupRequest {
    pub email: String,
    #[serde(with = "crate::b64")]
    #[schema(value_type = String, format = Byte)]
    pub salt: Vec<u8>,
    pub kdf: KdfParams,
    /// Derived from the password on the client; the server stores only its Argon2id hash.
    #[serde(with = "crate::b64")]
    #[schema(value_type = String, format = Byte)]
    pub auth_key: Vec<u8>,
    /// The user's age recipient (`age1…`), which camera grants are encrypted to.
    pub age_recipient: String,
    /// The user's Ed25519 public key, base64.
    pub signing_key: String,
    /// The user's private keys, sealed under the password-derived key.
    #[serde(with = "crate::b64")]
    #[schema(value_type = String, format = Byte)]
    pub wrapped_keys: Vec<u8>,
    /// The same keys sealed under the recovery key.
    #[serde(with = "crate::b64")]
    #[schema(value_type = String, format = Byte)]
    pub recovery_wrapped_keys: Vec<u8>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    #[serde(with = "crate::b64")]
    #[schema(value_type = String, format = Byte)]
    pub auth_key: Vec<u8>,
    /// Free text naming the client, shown in the sessions list.
    #[serde(default)]
    pub client: String,
    /// A TOTP code or a recovery code, for accounts with two-factor login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    /// Bearer token for `Authorization: Bearer …`. Shown once; the server keeps a hash.
    pub token: String,
    #[schema(value_type = String, format = Uuid)]
    pub session_id: SessionId,
    #[schema(value_type = String, format = Uuid)]
    pub user_id: UserId,
    pub expires_at: DateTime<Utc>,
    #[serde(with = "crate::b64")]
    #[schema(value_type = String, format = Byte)]
    pub wrapped_keys: Vec<u8>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Me {
    #[schema(value_type = String, format = Uuid)]
    pub user_id: UserId,
    pub email: String,
    pub age_recipient: String,
    pub signing_key: String,
    #[schema(value_type = String, format = Uuid)]
    pub session_id: SessionId,
}

/// A camera's name, encrypted to the camera's content key of `epoch`, so only members
/// read it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SealedName {
    pub epoch: u32,
    #[serde(with = "crate::b64")]
    #[schema(value_type = String, format = Byte)]
    pub ciphertext: Vec<u8>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreateClaimRequest {
    /// Hash of the claim secret (hex); the secret itself never reaches the server.
    pub secret_hash: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Claim {
    #[schema(value_type = String, format = Uuid)]
    pub claim_id: ClaimId,
    pub expires_at: DateTime<Utc>,
    /// Set once a camera has presented the code.
    pub pairing: Option<PairingRequest>,
}

/// What a camera presents to pair: its device key and a MAC over it keyed by the
/// claim secret.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct PairingRequest {
    pub secret_hash: String,
    /// Ed25519 device key, base64.
    pub device_key: String,
    #[serde(with = "crate::b64")]
    #[schema(value_type = String, format = Byte)]
    pub mac: Vec<u8>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PairingStarted {
    /// An unguessable handle the camera polls until the owner completes pairing.
    #[schema(value_type = String, format = Uuid)]
    pub pairing_id: PairingId,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CompleteClaimRequest {
    pub certificate: SignedCertificate,
    /// The owner's grant: the epoch's content identity, age-encrypted to the owner.
    #[serde(with = "crate::b64")]
    #[schema(value_type = String, format = Byte)]
    pub grant: Vec<u8>,
    pub name: SealedName,
}

/// What a camera receives once paired. The device token is shown once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PairingResult {
    #[schema(value_type = String, format = Uuid)]
    pub camera_id: CameraId,
    pub certificate: SignedCertificate,
    pub device_token: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Viewer,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CameraInfo {
    #[schema(value_type = String, format = Uuid)]
    pub camera_id: CameraId,
    pub name: SealedName,
    pub role: Role,
    /// The current content-key epoch.
    pub epoch: u32,
    pub certificate: SignedCertificate,
    /// The owner's Ed25519 key (base64) that signed the certificate.
    pub owner_signing_key: String,
    pub online: bool,
    pub last_event_at: Option<DateTime<Utc>>,
    pub paired_at: DateTime<Utc>,
    /// A member was removed since the last key rotation; the owner's client rotates.
    #[serde(default)]
    pub rotation_needed: bool,
    /// Every accepted ownership transfer, oldest first: how a member who pinned an
    /// earlier owner reaches the key that signs the certificate now.
    #[serde(default)]
    pub transfers: Vec<SignedTransfer>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RenameCameraRequest {
    pub name: SealedName,
}

/// A member's copy of a camera content key for one epoch (an age file).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Grant {
    pub epoch: u32,
    #[serde(with = "crate::b64")]
    #[schema(value_type = String, format = Byte)]
    pub grant: Vec<u8>,
}

/// Metadata of one event; the media itself is fetched separately, encrypted.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct EventInfo {
    #[schema(value_type = String, format = Uuid)]
    pub event_id: EventId,
    #[schema(value_type = String, format = Uuid)]
    pub camera_id: CameraId,
    pub kind: EventKind,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u32,
    pub epoch: u32,
    pub thumb_size: u64,
    pub clip_size: u64,
    pub received_at: DateTime<Utc>,
    pub manifest: SignedManifest,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    pub events: Vec<EventInfo>,
    /// Pass as `before` to get the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConnectResponse {
    #[schema(value_type = String, format = Uuid)]
    pub camera_id: CameraId,
    /// The epoch whose recipient the camera must encrypt to.
    pub epoch: u32,
    /// The owner-signed certificate of that epoch; the camera verifies it with the owner
    /// key it pinned at pairing before using its recipient.
    pub certificate: SignedCertificate,
    /// Ownership transfers, oldest first, from the owner pinned at pairing to the one
    /// who signed `certificate`.
    #[serde(default)]
    pub transfers: Vec<SignedTransfer>,
    pub server_time: DateTime<Utc>,
}

/// A camera's acknowledgement: the event is durable (blobs and row committed).
#[derive(Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct UploadAck {
    #[schema(value_type = String, format = Uuid)]
    pub event_id: EventId,
    /// True when this event was already stored by an earlier attempt.
    pub duplicate: bool,
}

/// One live segment as a camera sends it and a viewer receives it: the signed
/// description and the age ciphertext it describes. Never stored.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct LiveFrame {
    pub segment: SignedSegment,
    /// The segment's age ciphertext, base64.
    pub ciphertext: String,
}

/// The server's answer to a live segment.
#[derive(Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct LiveAck {
    /// False once nobody has asked for this camera's live view for a while: the camera
    /// may stop sending.
    pub watching: bool,
}

/// Sent on a camera's device stream (`event: live`) while someone watches: send live
/// segments for this many more seconds.
#[derive(Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct LiveWanted {
    pub seconds: u32,
}

/// Largest thumbnail ciphertext accepted.
pub const MAX_THUMB_BYTES: u64 = 2 * 1024 * 1024;
/// Largest clip ciphertext accepted in one upload.
pub const MAX_CLIP_BYTES: u64 = 64 * 1024 * 1024;
/// Largest page of events.
pub const MAX_PAGE: u32 = 200;
/// The `Upgrade` token a camera offers on `GET /v1/device/stream`: granted, the stream's
/// messages run on the bare connection, so an idle camera costs the server a socket
/// rather than a whole HTTP/1 connection's buffers.
pub const DEVICE_STREAM_UPGRADE: &str = "closedcircuit-stream";

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SignupResponse {
    #[schema(value_type = String, format = Uuid)]
    pub user_id: UserId,
}

/// Answer to a camera polling a pairing the owner has not completed yet.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PairingPending {
    pub status: String,
}

/// Query of `GET /v1/cameras/{camera_id}/events`.
#[derive(Debug, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Only events of this kind.
    pub kind: Option<EventKind>,
    /// Only events that started at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// The `next_cursor` of the previous page.
    pub before: Option<String>,
    /// Page size (default 50, at most 200).
    pub limit: Option<u32>,
}

/// Another user's public keys, to invite them and to compare verification phrases.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct UserPublic {
    #[schema(value_type = String, format = Uuid)]
    pub user_id: UserId,
    pub email: String,
    pub age_recipient: String,
    pub signing_key: String,
}

/// Invites a user to a camera. `grants` are the camera content keys the inviter's client
/// encrypted to the invitee: the current epoch, plus earlier ones when sharing history.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InviteRequest {
    #[schema(value_type = String, format = Uuid)]
    pub user_id: UserId,
    pub role: Role,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    pub grants: Vec<Grant>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ShareStatus {
    Pending,
    Active,
}

/// A member or a pending invitation of a camera.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ShareInfo {
    #[schema(value_type = String, format = Uuid)]
    pub camera_id: CameraId,
    pub user: UserPublic,
    pub role: Role,
    pub status: ShareStatus,
    pub since: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// An invitation addressed to the caller.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Invitation {
    #[schema(value_type = String, format = Uuid)]
    pub camera_id: CameraId,
    /// Who invited: check their key's verification phrase before trusting the camera.
    pub inviter: UserPublic,
    /// The camera owner's public keys, whose signature the camera's certificate carries.
    pub owner: UserPublic,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// One member's grant for a new epoch, written by the owner's client at rotation.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct MemberGrant {
    #[schema(value_type = String, format = Uuid)]
    pub user_id: UserId,
    #[serde(with = "crate::b64")]
    #[schema(value_type = String, format = Byte)]
    pub grant: Vec<u8>,
}

/// Rotates a camera's content key: a certificate for the next epoch, signed by the owner,
/// and a grant for every remaining member (the owner included).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RotateRequest {
    pub certificate: SignedCertificate,
    pub grants: Vec<MemberGrant>,
    /// The camera's name sealed to the new epoch.
    pub name: SealedName,
}

/// Offers the camera to a new owner (owner only): the statement signed by the current
/// owner, and every epoch's content key encrypted to the new owner, so the recordings
/// stay theirs to watch.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TransferRequest {
    pub transfer: SignedTransfer,
    pub grants: Vec<Grant>,
}

/// A camera offered to the caller, with what their client needs to take it over: verify
/// the statement with the current owner's key (compare the verification phrase first),
/// open the name, and rotate to a content key of its own for the members who stay.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TransferOffer {
    #[schema(value_type = String, format = Uuid)]
    pub camera_id: CameraId,
    pub from: UserPublic,
    pub transfer: SignedTransfer,
    /// The certificate of the current epoch, signed by the current owner.
    pub certificate: SignedCertificate,
    pub name: SealedName,
    /// The content keys of every epoch, encrypted to the caller.
    pub grants: Vec<Grant>,
    /// Members who keep their access (everyone but the current owner).
    pub members: Vec<UserPublic>,
    pub created_at: DateTime<Utc>,
}

/// One read of a camera's data, from the access log.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AccessEntry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    #[schema(value_type = String, format = Uuid)]
    pub user_id: UserId,
    pub email: Option<String>,
    #[schema(value_type = String, format = Uuid)]
    pub session_id: SessionId,
    #[schema(value_type = String, format = Uuid)]
    pub camera_id: CameraId,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub event_id: Option<EventId>,
    /// `thumb`, `clip`, `grants` or `live`.
    pub object: String,
    pub ip: String,
}

/// Query of the access log.
#[derive(Debug, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccessQuery {
    pub since: Option<DateTime<Utc>>,
    /// Page size (default 200, at most 1000).
    pub limit: Option<u32>,
}

/// A session of the caller's account.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionInfo {
    #[schema(value_type = String, format = Uuid)]
    pub session_id: SessionId,
    pub client: String,
    pub ip: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The session making this request.
    pub current: bool,
}

/// Starts two-factor setup: the secret to add to an authenticator app.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TotpSetup {
    /// Base32 secret.
    pub secret: String,
    /// `otpauth://` URL, for a QR code.
    pub otpauth_url: String,
}

/// A code from the authenticator app.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TotpCode {
    pub code: String,
}

/// One-time codes that stand in for the authenticator; shown once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecoveryCodes {
    pub codes: Vec<String>,
}

/// Proof of presence before event video plays: the password-derived auth key, or a TOTP code.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StepUpRequest {
    #[serde(default, with = "crate::b64::option")]
    #[schema(value_type = Option<String>, format = Byte)]
    pub auth_key: Option<Vec<u8>>,
    #[serde(default)]
    pub totp: Option<String>,
}

/// Account security settings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SecuritySettings {
    /// Require a fresh password or TOTP check on a session before event video plays.
    pub require_step_up: bool,
    /// Whether two-factor login is on (read-only here).
    #[serde(default)]
    pub totp_enabled: bool,
}

/// Query of `GET /v1/users/lookup`.
#[derive(Debug, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LookupQuery {
    pub email: String,
}

/// Retention of a camera's events.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Retention {
    /// Days to keep events; `null` keeps them until the camera is removed.
    pub days: Option<u32>,
}
