//! The camera agent: pairs with a claim code, connects, and uploads signed, encrypted
//! events. A camera is write-only: it holds its Ed25519 device key and the *recipient* of
//! its content key, never anything that decrypts, so a stolen camera reveals nothing it
//! recorded.
//!
//! The state directory holds `device.key` (the 32-byte Ed25519 seed) and `state.json`
//! (server, camera ID, device token, certificate), both owner-only. With them the agent
//! reconnects without a new claim.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cc_core::api::{
    ConnectResponse, LiveAck, LiveFrame, PairingRequest, PairingResult, UploadAck, MAX_CLIP_BYTES,
    MAX_THUMB_BYTES,
};
use cc_core::certificate::{CameraCertificate, SignedCertificate};
use cc_core::claim::ClaimCode;
use cc_core::envelope::Recipient;
use cc_core::keys::verifying_key_from_bytes;
use cc_core::live::{LiveSegment, SignedSegment, MAX_SEGMENT_BYTES};
use cc_core::manifest::{sha256_hex, EventKind, Manifest, SignedManifest};
use cc_core::transfer;
use cc_core::{CameraId, EventId};
use chrono::{DateTime, Utc};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::api::{Api, EventUpload, DEFAULT_SERVER};
use crate::backoff::{retry, Backoff};
use crate::error::ClientError;
use crate::files;
use crate::media::Media;

const DEVICE_KEY_FILE: &str = "device.key";
const STATE_FILE: &str = "state.json";
/// How often a camera asks whether its owner has approved the pairing.
const PAIRING_POLL: Duration = Duration::from_secs(1);

/// What a paired camera remembers. No decryption key, by design.
#[derive(Clone, Serialize, Deserialize)]
pub struct AgentState {
    pub server: String,
    pub camera_id: CameraId,
    pub device_token: String,
    pub certificate: SignedCertificate,
}

impl Drop for AgentState {
    fn drop(&mut self) {
        self.device_token.zeroize();
    }
}

/// A camera's state directory.
#[derive(Clone, Debug)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn state_path(&self) -> PathBuf {
        self.root.join(STATE_FILE)
    }

    fn key_path(&self) -> PathBuf {
        self.root.join(DEVICE_KEY_FILE)
    }

    /// The saved pairing, if the camera was paired before.
    pub fn load_state(&self) -> Result<Option<AgentState>, ClientError> {
        files::read_json(&self.state_path(), "camera state file")
    }

    fn save_state(&self, state: &AgentState) -> Result<(), ClientError> {
        files::write_json(&self.state_path(), state)
    }

    /// Explains a refused device token in terms of this state directory.
    fn refused_token(&self, e: ClientError) -> ClientError {
        if e.problem_code() == Some("unauthenticated") {
            ClientError::DeviceTokenRefused {
                state_dir: self.root.clone(),
            }
        } else {
            e
        }
    }

    /// The device key, if one was made.
    fn load_device_key(&self) -> Result<Option<SigningKey>, ClientError> {
        let path = self.key_path();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => Zeroizing::new(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ClientError::io("cannot read", path, e)),
        };
        let seed: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| ClientError::BadFile {
                what: "device key (32 bytes)",
                path: path.clone(),
                detail: format!("it has {} bytes", bytes.len()),
            })?;
        Ok(Some(SigningKey::from_bytes(&seed)))
    }

    /// The device key, made on first use.
    fn device_key(&self) -> Result<SigningKey, ClientError> {
        if let Some(key) = self.load_device_key()? {
            return Ok(key);
        }
        files::create_private_dir(&self.root)?;
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        files::write_new(&self.key_path(), &Zeroizing::new(key.to_bytes())[..])?;
        Ok(key)
    }
}

/// How the camera became paired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pairing {
    /// It was paired before and reuses its saved state.
    Resumed,
    /// It just paired with a claim code.
    Paired,
}

/// Loads the camera's pairing, or pairs with `claim` when there is none. `server` (if
/// given) overrides the saved server. `on_waiting` is called once when the owner has
/// not approved yet.
pub async fn pair_or_resume(
    dir: &StateDir,
    claim: Option<&str>,
    server: Option<&str>,
    on_waiting: impl FnOnce(),
) -> Result<(AgentState, SigningKey, Pairing), ClientError> {
    if let Some(mut state) = dir.load_state()? {
        let device = dir.load_device_key()?.ok_or_else(|| ClientError::BadFile {
            what: "camera state directory",
            path: dir.root().to_path_buf(),
            detail: format!("{STATE_FILE} exists but {DEVICE_KEY_FILE} is missing"),
        })?;
        check_own_certificate(&state.certificate, state.camera_id, &device.verifying_key())?;
        if let Some(server) = server {
            server.clone_into(&mut state.server);
        }
        return Ok((state, device, Pairing::Resumed));
    }
    let claim = claim.ok_or_else(|| {
        ClientError::Invalid(format!(
            "this camera is not paired yet ({} has no {STATE_FILE}); pass --claim CODE from `closedcircuit camera claim`",
            dir.root().display()
        ))
    })?;
    let code = ClaimCode::parse(claim)?;
    let device = dir.device_key()?;
    let server = server.unwrap_or(DEFAULT_SERVER);
    let result = pair(&Api::new(server, None)?, &code, &device, on_waiting).await?;
    let certificate = check_pairing(&code, &device.verifying_key(), &result)?;
    let state = AgentState {
        server: server.to_owned(),
        camera_id: certificate.camera_id,
        device_token: result.device_token.clone(),
        certificate: result.certificate.clone(),
    };
    dir.save_state(&state)?;
    Ok((state, device, Pairing::Paired))
}

/// Presents the claim code and waits for the owner to complete the pairing.
async fn pair(
    api: &Api,
    code: &ClaimCode,
    device: &SigningKey,
    on_waiting: impl FnOnce(),
) -> Result<PairingResult, ClientError> {
    let request = PairingRequest {
        secret_hash: code.secret_hash(),
        device_key: cc_core::b64::encode(device.verifying_key().as_bytes()),
        mac: code.pairing_mac(&device.verifying_key()),
    };
    let started = retry("presenting the claim code", Backoff::for_cameras(), || {
        api.pair(&request)
    })
    .await
    .map_err(|e| match e.problem_code() {
        Some("not_found") => ClientError::PairingRefused(
            "the server does not know this claim code, or it expired; make a new one with `closedcircuit camera claim`".into(),
        ),
        _ => e,
    })?;
    let mut on_waiting = Some(on_waiting);
    loop {
        let polled = retry(
            "asking whether pairing is approved",
            Backoff::for_cameras(),
            || api.poll_pairing(started.pairing_id),
        )
        .await
        .map_err(|e| match e.problem_code() {
            Some("not_found") => ClientError::PairingRefused(
                "the pairing expired or was withdrawn before the owner approved it".into(),
            ),
            _ => e,
        })?;
        if let Some(result) = polled {
            return Ok(result);
        }
        if let Some(notify) = on_waiting.take() {
            notify();
        }
        tokio::time::sleep(PAIRING_POLL).await;
    }
}

/// The camera's checks on what the server hands back: the certificate must be signed by
/// the owner whose fingerprint is in the claim code, and name this camera's device key.
pub fn check_pairing(
    code: &ClaimCode,
    device: &VerifyingKey,
    result: &PairingResult,
) -> Result<CameraCertificate, ClientError> {
    let refused = |why: &str| ClientError::PairingRefused(why.to_owned());
    let claimed = result
        .certificate
        .peek()
        .map_err(|_| refused("the certificate is not well-formed"))?;
    let owner = owner_key(&claimed).ok_or_else(|| refused("the owner key is malformed"))?;
    if !code.is_owner(&owner) {
        return Err(refused(
            "the certificate is signed by a key other than the one in the claim code (not your owner)",
        ));
    }
    let cert = check_own_certificate(&result.certificate, result.camera_id, device)?;
    Ok(cert)
}

/// Verifies a certificate as the camera it names: signed by the owner key inside it,
/// for this camera ID and this device key.
fn check_own_certificate(
    certificate: &SignedCertificate,
    camera: CameraId,
    device: &VerifyingKey,
) -> Result<CameraCertificate, ClientError> {
    let refused = |why: String| ClientError::PairingRefused(why);
    let claimed = certificate
        .peek()
        .map_err(|e| refused(format!("the certificate is not well-formed: {e}")))?;
    let owner = owner_key(&claimed).ok_or_else(|| refused("the owner key is malformed".into()))?;
    let cert = certificate
        .verify_owner(&owner)
        .map_err(|e| refused(format!("the certificate does not verify: {e}")))?;
    if cert.camera_id != camera {
        return Err(refused("the certificate names another camera".into()));
    }
    if cert.device_key().ok().as_ref() != Some(device) {
        return Err(refused(
            "the certificate names another device key than this camera's".into(),
        ));
    }
    Ok(cert)
}

/// Checks the certificate the server says is current: signed by the pinned owner, or by
/// a new owner the pinned one handed the camera to in a signed transfer, for this camera
/// and device, for the epoch the server asks for, and not older than the pinned one (a
/// server must not roll a camera back to a key a removed member holds).
fn check_current_certificate(
    config: &ConnectResponse,
    pinned: &CameraCertificate,
    device: &VerifyingKey,
) -> Result<CameraCertificate, ClientError> {
    let refused = |why: String| ClientError::PairingRefused(why);
    let pinned_owner =
        owner_key(pinned).ok_or_else(|| refused("the pinned owner key is malformed".into()))?;
    let owner = transfer::follow(
        pinned.camera_id,
        pinned_owner,
        pinned.epoch,
        &config.transfers,
    )
    .map_err(|e| refused(format!("the camera's ownership chain does not verify: {e}")))?;
    let epoch = config.epoch;
    let cert = config.certificate.verify_owner(&owner.key).map_err(|e| {
        refused(format!(
            "the current certificate is not signed by this camera's owner: {e}"
        ))
    })?;
    if cert.camera_id != pinned.camera_id || cert.device_key().ok().as_ref() != Some(device) {
        return Err(refused(
            "the current certificate names another camera or device key".into(),
        ));
    }
    if cert.epoch != epoch || cert.epoch < pinned.epoch || cert.epoch < owner.since {
        return Err(refused(format!(
            "the server asks for epoch {epoch} with a certificate for epoch {} (this camera is at epoch {})",
            cert.epoch, pinned.epoch
        )));
    }
    Ok(cert)
}

fn owner_key(cert: &CameraCertificate) -> Option<VerifyingKey> {
    verifying_key_from_bytes(&cc_core::b64::decode(&cert.owner_key).ok()?)
}

/// The result of uploading one event.
#[derive(Debug)]
pub enum Upload {
    /// Durable on the server.
    Acked(UploadAck),
    /// Refused for a reason particular to this event; the agent goes on with the next.
    Rejected(ClientError),
}

/// A connected camera, ready to upload.
pub struct Agent {
    api: Api,
    dir: StateDir,
    camera_id: CameraId,
    device: SigningKey,
    recipient: Recipient,
    epoch: u32,
}

impl Agent {
    /// Comes online: `POST /v1/device/connect`, retried while the server is unreachable
    /// or overloaded. The server hands back the certificate of the current epoch; it must
    /// be signed by the owner pinned at pairing and name this camera and device, or the
    /// camera refuses to encrypt to its recipient. A newer valid certificate (after a key
    /// rotation) replaces the saved one.
    pub async fn connect(
        dir: &StateDir,
        state: &mut AgentState,
        device: SigningKey,
    ) -> Result<Self, ClientError> {
        let api = Api::new(&state.server, Some(state.device_token.clone()))?;
        let pinned =
            check_own_certificate(&state.certificate, state.camera_id, &device.verifying_key())?;
        let connected = retry("connecting", Backoff::for_cameras(), || api.connect())
            .await
            .map_err(|e| dir.refused_token(e))?;
        if connected.camera_id != state.camera_id {
            return Err(ClientError::Invalid(format!(
                "the server knows this device token as camera {}, not {}",
                connected.camera_id, state.camera_id
            )));
        }
        let current = check_current_certificate(&connected, &pinned, &device.verifying_key())?;
        if connected.certificate != state.certificate {
            state.certificate = connected.certificate.clone();
            dir.save_state(state)?;
        }
        let recipient = current
            .content_recipient()
            .map_err(|e| ClientError::PairingRefused(e.to_string()))?;
        Ok(Self {
            api,
            dir: dir.clone(),
            camera_id: state.camera_id,
            device,
            recipient,
            epoch: connected.epoch,
        })
    }

    /// Connects again, e.g. after the owner rotated the content key (an upload refused
    /// with `stale_epoch`), so the camera checks and adopts the new certificate.
    pub async fn refresh(&mut self, state: &mut AgentState) -> Result<(), ClientError> {
        let dir = self.dir.clone();
        *self = Self::connect(&dir, state, self.device.clone()).await?;
        Ok(())
    }

    pub fn camera_id(&self) -> CameraId {
        self.camera_id
    }

    /// The content-key epoch this camera encrypts to.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Opens the camera's long-lived device stream (`config` and `live` events).
    pub async fn device_stream(&self) -> Result<crate::api::DeviceStream, ClientError> {
        self.api
            .device_stream()
            .await
            .map_err(|e| self.dir.refused_token(e))
    }

    /// Encrypts one event's media to the content recipient and signs its manifest.
    pub fn seal(
        &self,
        event_id: EventId,
        kind: EventKind,
        media: &Media,
    ) -> Result<EventUpload, ClientError> {
        let thumb = self.recipient.encrypt(&media.thumb)?;
        let clip = self.recipient.encrypt(&media.clip)?;
        if thumb.len() as u64 > MAX_THUMB_BYTES || clip.len() as u64 > MAX_CLIP_BYTES {
            return Err(ClientError::Invalid(format!(
                "event {event_id} is larger than the server accepts"
            )));
        }
        let manifest = Manifest {
            v: Manifest::VERSION,
            camera_id: self.camera_id,
            event_id,
            epoch: self.epoch,
            kind,
            started_at: now_millis(),
            duration_ms: media.duration_ms,
            thumb_sha256: sha256_hex(&thumb),
            thumb_size: thumb.len() as u64,
            clip_sha256: sha256_hex(&clip),
            clip_size: clip.len() as u64,
        };
        Ok(EventUpload {
            manifest: SignedManifest::sign(&manifest, &self.device),
            thumb,
            clip,
        })
    }

    /// Encrypts one live segment to the content recipient and signs its description.
    pub fn seal_live(
        &self,
        stream: &str,
        seq: u64,
        media_type: &str,
        plaintext: &[u8],
    ) -> Result<LiveFrame, ClientError> {
        let ciphertext = self.recipient.encrypt(plaintext)?;
        if ciphertext.len() > MAX_SEGMENT_BYTES {
            return Err(ClientError::Invalid(format!(
                "a live frame of {} bytes is larger than the server relays",
                plaintext.len()
            )));
        }
        let segment = LiveSegment::describe(
            self.camera_id,
            self.epoch,
            stream,
            seq,
            media_type,
            &ciphertext,
        );
        Ok(LiveFrame {
            segment: SignedSegment::sign(&segment, &self.device),
            ciphertext: cc_core::b64::encode(&ciphertext),
        })
    }

    /// Sends one live segment, once: a lost segment is not worth a retry, the next one
    /// is coming.
    pub async fn send_live(&self, frame: &LiveFrame) -> Result<LiveAck, ClientError> {
        self.api.send_live(frame).await
    }

    /// Uploads a sealed event, retrying the very same bytes (uploads are idempotent on
    /// the event ID) while the network or the server fails. `Err` means the camera cannot
    /// go on as it is: its token was refused, or its epoch is stale (code `stale_epoch`,
    /// see [`Agent::refresh`]).
    pub async fn upload(
        &self,
        event_id: EventId,
        upload: &EventUpload,
    ) -> Result<Upload, ClientError> {
        let what = format!("uploading event {event_id}");
        match retry(&what, Backoff::for_cameras(), || {
            self.api.upload_event(event_id, upload)
        })
        .await
        {
            Ok(ack) => Ok(Upload::Acked(ack)),
            Err(e) if is_fatal(&e) => Err(self.dir.refused_token(e)),
            Err(e @ ClientError::Problem { .. }) => Ok(Upload::Rejected(e)),
            Err(e) => Err(e),
        }
    }
}

/// The current time to the millisecond, the precision the server keeps, so the signed
/// manifest and the server's listing state the same time.
fn now_millis() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

/// Refusals after which no further upload can succeed.
fn is_fatal(e: &ClientError) -> bool {
    matches!(
        e.problem_code(),
        Some("unauthenticated" | "forbidden" | "stale_epoch")
    )
}

/// The kind of the `n`-th synthetic event: motion, person, sound, motion, …
pub fn kind_for(n: u64) -> EventKind {
    EventKind::ALL[(n % EventKind::ALL.len() as u64) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    use cc_core::envelope::Identity;
    use cc_core::keys::UserKeys;

    fn paired(owner: &UserKeys, device: &SigningKey) -> PairingResult {
        let camera_id = CameraId::new_v7();
        let cert = CameraCertificate {
            v: 1,
            camera_id,
            device_key: cc_core::b64::encode(device.verifying_key().as_bytes()),
            epoch: 1,
            content_recipient: Identity::generate().recipient().to_string(),
            owner_key: cc_core::b64::encode(owner.verifying_key().as_bytes()),
            issued_at: Utc::now(),
        };
        PairingResult {
            camera_id,
            certificate: SignedCertificate::sign(&cert, &owner.signing),
            device_token: "token".into(),
        }
    }

    #[test]
    fn the_camera_accepts_only_its_owners_certificate_for_its_own_key() {
        let owner = UserKeys::generate();
        let code = ClaimCode::generate(&owner.verifying_key());
        let device = SigningKey::generate(&mut rand::rngs::OsRng);
        let vk = device.verifying_key();
        assert!(check_pairing(&code, &vk, &paired(&owner, &device)).is_ok());

        let impostor = UserKeys::generate();
        assert!(check_pairing(&code, &vk, &paired(&impostor, &device)).is_err());

        let other_device = SigningKey::generate(&mut rand::rngs::OsRng);
        assert!(check_pairing(&code, &vk, &paired(&owner, &other_device)).is_err());

        let mut swapped = paired(&owner, &device);
        swapped.camera_id = CameraId::new_v7();
        assert!(check_pairing(&code, &vk, &swapped).is_err());
    }

    fn config(
        certificate: SignedCertificate,
        epoch: u32,
        transfers: Vec<transfer::SignedTransfer>,
    ) -> ConnectResponse {
        ConnectResponse {
            camera_id: CameraId::new_v7(),
            epoch,
            certificate,
            transfers,
            server_time: Utc::now(),
        }
    }

    fn certificate_at(
        pinned: &CameraCertificate,
        epoch: u32,
        signer: &UserKeys,
    ) -> SignedCertificate {
        let cert = CameraCertificate {
            epoch,
            content_recipient: Identity::generate().recipient().to_string(),
            owner_key: cc_core::b64::encode(signer.verifying_key().as_bytes()),
            ..pinned.clone()
        };
        SignedCertificate::sign(&cert, &signer.signing)
    }

    fn handover(
        camera: CameraId,
        from: &UserKeys,
        to: &UserKeys,
        epoch: u32,
    ) -> transfer::SignedTransfer {
        let statement = transfer::OwnershipTransfer {
            v: 1,
            camera_id: camera,
            from_key: cc_core::b64::encode(from.verifying_key().as_bytes()),
            to_user: cc_core::UserId::new_v7(),
            to_key: cc_core::b64::encode(to.verifying_key().as_bytes()),
            epoch,
            issued_at: Utc::now(),
        };
        transfer::SignedTransfer::sign(&statement, &from.signing)
    }

    fn pinned_at_first_epoch(
        owner: &UserKeys,
        device: &SigningKey,
    ) -> Result<CameraCertificate, ClientError> {
        paired(owner, device)
            .certificate
            .peek()
            .map_err(|e| ClientError::Invalid(e.to_string()))
    }

    #[test]
    fn only_the_pinned_owners_current_certificate_is_used() -> Result<(), ClientError> {
        let owner = UserKeys::generate();
        let device = SigningKey::generate(&mut rand::rngs::OsRng);
        let vk = device.verifying_key();
        let pinned = pinned_at_first_epoch(&owner, &device)?;
        let at = |epoch, signer: &UserKeys, asked| {
            check_current_certificate(
                &config(certificate_at(&pinned, epoch, signer), asked, vec![]),
                &pinned,
                &vk,
            )
        };
        assert!(at(1, &owner, 1).is_ok());
        assert_eq!(at(2, &owner, 2)?.epoch, 2);
        let impostor = UserKeys::generate();
        assert!(at(2, &impostor, 2).is_err());
        assert!(at(2, &owner, 3).is_err());
        let newer = CameraCertificate {
            epoch: 3,
            ..pinned.clone()
        };
        let rolled_back = config(certificate_at(&pinned, 2, &owner), 2, vec![]);
        assert!(
            check_current_certificate(&rolled_back, &newer, &vk).is_err(),
            "a server cannot roll a camera back to an older epoch"
        );
        Ok(())
    }

    #[test]
    fn a_new_owner_is_believed_only_through_the_old_owners_transfer() -> Result<(), ClientError> {
        let (owner, next, server) = (
            UserKeys::generate(),
            UserKeys::generate(),
            UserKeys::generate(),
        );
        let device = SigningKey::generate(&mut rand::rngs::OsRng);
        let vk = device.verifying_key();
        let pinned = pinned_at_first_epoch(&owner, &device)?;
        let camera = pinned.camera_id;

        let handed = config(
            certificate_at(&pinned, 2, &next),
            2,
            vec![handover(camera, &owner, &next, 2)],
        );
        let adopted = check_current_certificate(&handed, &pinned, &vk)?;
        assert_eq!(
            adopted.owner_key,
            cc_core::b64::encode(next.verifying_key().as_bytes())
        );

        let no_statement = config(certificate_at(&pinned, 2, &next), 2, vec![]);
        assert!(check_current_certificate(&no_statement, &pinned, &vk).is_err());
        let forged = config(
            certificate_at(&pinned, 2, &server),
            2,
            vec![handover(camera, &server, &server, 2)],
        );
        assert!(
            check_current_certificate(&forged, &pinned, &vk).is_err(),
            "a server's own statement"
        );
        let early = config(
            certificate_at(&pinned, 2, &next),
            2,
            vec![handover(camera, &owner, &next, 3)],
        );
        assert!(
            check_current_certificate(&early, &pinned, &vk).is_err(),
            "signed before the handover"
        );

        // Once the camera adopted the new owner, replaying the handover changes nothing.
        let back = config(
            certificate_at(&adopted, 3, &owner),
            3,
            vec![handover(camera, &owner, &next, 2)],
        );
        assert!(check_current_certificate(&back, &adopted, &vk).is_err());
        Ok(())
    }

    #[test]
    fn state_resumes_without_a_claim_and_keeps_no_decryption_key(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let state_dir = StateDir::new(dir.path().join("cam"));
        let device = state_dir.device_key()?;
        assert_eq!(state_dir.device_key()?.to_bytes(), device.to_bytes());
        let owner = UserKeys::generate();
        let result = paired(&owner, &device);
        state_dir.save_state(&AgentState {
            server: "http://127.0.0.1:1".into(),
            camera_id: result.camera_id,
            device_token: result.device_token.clone(),
            certificate: result.certificate.clone(),
        })?;
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        let (state, key, how) =
            runtime.block_on(pair_or_resume(&state_dir, None, Some("http://h:2"), || {}))?;
        assert_eq!(how, Pairing::Resumed);
        assert_eq!(state.server, "http://h:2");
        assert_eq!(key.to_bytes(), device.to_bytes());
        for entry in std::fs::read_dir(state_dir.root())? {
            let text = std::fs::read(entry?.path())?;
            assert!(!text.windows(16).any(|w| w == b"AGE-SECRET-KEY-1"));
        }
        Ok(())
    }

    #[test]
    fn an_unpaired_camera_needs_a_claim() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        let result = runtime.block_on(pair_or_resume(
            &StateDir::new(dir.path()),
            None,
            None,
            || {},
        ));
        assert!(matches!(result, Err(ClientError::Invalid(_))));
        Ok(())
    }

    #[test]
    fn kinds_cycle() {
        let kinds: Vec<_> = (0..4).map(kind_for).collect();
        assert_eq!(
            kinds,
            vec![
                EventKind::Motion,
                EventKind::Person,
                EventKind::Sound,
                EventKind::Motion
            ]
        );
    }
}
