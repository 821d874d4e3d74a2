//! A real server on a loopback port and a minimal client built from `cc-core`, so
//! tests can play honest users, honest cameras and attackers.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use cc_core::api::*;
use cc_core::certificate::{CameraCertificate, SignedCertificate};
use cc_core::claim::ClaimCode;
use cc_core::envelope::Identity;
use cc_core::keys::{derive_password_keys, UserKeys};
use cc_core::manifest::{sha256_hex, EventKind, Manifest, SignedManifest};
use cc_core::{CameraId, EventId};
use ed25519_dalek::SigningKey;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

pub struct TestServer {
    pub url: String,
    pub store: cc_store::Store,
    pub data_dir: PathBuf,
    /// The metadata database, for tests that play an attacker with database access.
    pub metadata_url: String,
    _dir: tempfile::TempDir,
    pub http: reqwest::Client,
    _postgres: PostgresGuard,
}

/// A plain HTTP client; the workspace's reqwest needs a TLS provider chosen first.
fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// With `CC_TEST_METADATA=postgres` every test server keeps its metadata in a
/// throw-away PostgreSQL database (dropped with the server) instead of SQLite.
fn metadata_on_postgres() -> bool {
    std::env::var("CC_TEST_METADATA").is_ok_and(|v| v == "postgres")
}

/// Drops the test server's PostgreSQL database, if it has one, when the test ends.
struct PostgresGuard(Option<cc_store::testing::TempPostgres>);

impl Drop for PostgresGuard {
    fn drop(&mut self) {
        if let Some(db) = self.0.take() {
            // Drop runs inside the test's runtime; the database is dropped from a
            // thread with its own.
            let _ = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|runtime| runtime.block_on(db.drop_database()))
            })
            .join();
        }
    }
}

use cc_store::testing::signup_request;

pub async fn start() -> TestResult<TestServer> {
    start_with(|_| {}).await
}

pub async fn start_with(tweak: impl FnOnce(&mut cc_server::Config)) -> TestResult<TestServer> {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("warn")
        .try_init();
    let dir = tempfile::tempdir()?;
    let mut config = cc_server::Config {
        data_dir: dir.path().join("data"),
        ..cc_server::Config::default()
    };
    let postgres = match metadata_on_postgres() {
        true => Some(cc_store::testing::TempPostgres::create().await?),
        false => None,
    };
    if let Some(db) = &postgres {
        config.metadata = cc_server::config::Metadata::from_url(db.url())?;
    }
    tweak(&mut config);
    let state = cc_server::open(config).await?;
    let data_dir = state.config.data_dir.clone();
    let metadata_url = match &postgres {
        Some(db) => db.url().to_owned(),
        None => format!("sqlite://{}", data_dir.join("metadata.db").display()),
    };
    let store = state.store.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = cc_server::app(state).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(TestServer {
        url: format!("http://{addr}"),
        store,
        data_dir,
        metadata_url,
        _dir: dir,
        http: http_client(),
        _postgres: PostgresGuard(postgres),
    })
}

pub struct User {
    pub email: String,
    pub token: String,
    pub keys: UserKeys,
}

pub struct Camera {
    pub camera_id: CameraId,
    pub device: SigningKey,
    pub token: String,
    pub content: Identity,
    pub epoch: u32,
}

pub struct Sent {
    pub status: StatusCode,
    pub body: Vec<u8>,
    pub content_type: String,
}

impl Sent {
    pub fn json<T: DeserializeOwned>(&self) -> TestResult<T> {
        Ok(serde_json::from_slice(&self.body)?)
    }

    pub fn problem(&self) -> TestResult<Problem> {
        assert_eq!(
            self.content_type, "application/problem+json",
            "status {}",
            self.status
        );
        self.json()
    }
}

impl TestServer {
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> TestResult<Sent> {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        Ok(Sent {
            status: resp.status(),
            content_type: resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned(),
            body: resp.bytes().await?.to_vec(),
        })
    }

    pub async fn signup(&self, email: &str, password: &str) -> TestResult<User> {
        let (req, keys) = signup_request(email, password)?;
        let sent = self
            .send(
                Method::POST,
                "/v1/accounts",
                None,
                Some(serde_json::to_value(&req)?),
            )
            .await?;
        assert_eq!(sent.status, StatusCode::CREATED);
        let token = self.login(email, password).await?.token;
        Ok(User {
            email: email.into(),
            token,
            keys,
        })
    }

    pub async fn login(&self, email: &str, password: &str) -> TestResult<LoginResponse> {
        let pre: PreloginResponse = self
            .send(
                Method::POST,
                "/v1/accounts/prelogin",
                None,
                Some(serde_json::json!({"email": email})),
            )
            .await?
            .json()?;
        let derived = derive_password_keys(password, &pre.salt, pre.kdf)?;
        let req = LoginRequest {
            email: email.into(),
            auth_key: derived.auth_key.to_vec(),
            client: "test".into(),
            totp: None,
        };
        let sent = self
            .send(
                Method::POST,
                "/v1/sessions",
                None,
                Some(serde_json::to_value(&req)?),
            )
            .await?;
        assert_eq!(sent.status, StatusCode::OK, "login failed");
        sent.json()
    }

    /// The whole pairing dance, played honestly by both the owner and the camera.
    pub async fn pair(&self, owner: &User, name: &str) -> TestResult<Camera> {
        let code = ClaimCode::generate(&owner.keys.verifying_key());
        let claim: Claim = self
            .send(
                Method::POST,
                "/v1/claims",
                Some(&owner.token),
                Some(serde_json::json!({"secret_hash": code.secret_hash()})),
            )
            .await?
            .json()?;
        let device = SigningKey::generate(&mut rand::rngs::OsRng);
        let pairing = PairingRequest {
            secret_hash: code.secret_hash(),
            device_key: cc_core::b64::encode(device.verifying_key().as_bytes()),
            mac: code.pairing_mac(&device.verifying_key()),
        };
        let started: PairingStarted = self
            .send(
                Method::POST,
                "/v1/device/pair",
                None,
                Some(serde_json::to_value(&pairing)?),
            )
            .await?
            .json()?;
        let claims: Vec<Claim> = self
            .send(Method::GET, "/v1/claims", Some(&owner.token), None)
            .await?
            .json()?;
        let presented = claims
            .iter()
            .find(|c| c.claim_id == claim.claim_id)
            .and_then(|c| c.pairing.clone())
            .ok_or("pairing not visible to owner")?;
        code.verify_pairing_mac(&device.verifying_key(), &presented.mac)?;
        let content = Identity::generate();
        let camera_id = CameraId::new_v7();
        let cert = CameraCertificate {
            v: 1,
            camera_id,
            device_key: presented.device_key.clone(),
            epoch: 1,
            content_recipient: content.recipient().to_string(),
            owner_key: cc_core::b64::encode(owner.keys.verifying_key().as_bytes()),
            issued_at: chrono::Utc::now(),
        };
        let complete = CompleteClaimRequest {
            certificate: SignedCertificate::sign(&cert, &owner.keys.signing),
            grant: owner
                .keys
                .recipient()
                .encrypt(content.to_secret_string().as_bytes())?,
            name: SealedName {
                epoch: 1,
                ciphertext: content.recipient().encrypt(name.as_bytes())?,
            },
        };
        let done = self
            .send(
                Method::POST,
                &format!("/v1/claims/{}/complete", claim.claim_id),
                Some(&owner.token),
                Some(serde_json::to_value(&complete)?),
            )
            .await?;
        assert_eq!(
            done.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&done.body)
        );
        let result: PairingResult = self
            .send(
                Method::GET,
                &format!("/v1/device/pair/{}", started.pairing_id),
                None,
                None,
            )
            .await?
            .json()?;
        Ok(Camera {
            camera_id: result.camera_id,
            device,
            token: result.device_token,
            content,
            epoch: 1,
        })
    }

    pub async fn upload(&self, camera: &Camera, event: &Upload) -> TestResult<Sent> {
        let form = reqwest::multipart::Form::new()
            .part(
                "manifest",
                reqwest::multipart::Part::bytes(event.manifest_json()),
            )
            .part(
                "thumb",
                reqwest::multipart::Part::bytes(event.thumb.clone()),
            )
            .part("clip", reqwest::multipart::Part::bytes(event.clip.clone()));
        let resp = self
            .http
            .put(format!(
                "{}/v1/device/events/{}",
                self.url, event.path_event
            ))
            .bearer_auth(&camera.token)
            .multipart(form)
            .send()
            .await?;
        Ok(Sent {
            status: resp.status(),
            content_type: resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned(),
            body: resp.bytes().await?.to_vec(),
        })
    }
}

/// An upload as a camera would send it, with every part open to tampering.
#[derive(Clone)]
pub struct Upload {
    pub path_event: EventId,
    pub manifest: Manifest,
    pub signed: SignedManifest,
    pub thumb: Vec<u8>,
    pub clip: Vec<u8>,
}

impl Upload {
    pub fn manifest_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.signed).unwrap_or_default()
    }

    pub fn resign(&mut self, key: &SigningKey) {
        self.signed = SignedManifest::sign(&self.manifest, key);
    }
}

/// An honest event: `thumb_plain` and `clip_plain` encrypted to the camera's content key.
pub fn event(camera: &Camera, thumb_plain: &[u8], clip_plain: &[u8]) -> TestResult<Upload> {
    let thumb = camera.content.recipient().encrypt(thumb_plain)?;
    let clip = camera.content.recipient().encrypt(clip_plain)?;
    let manifest = Manifest {
        v: 1,
        camera_id: camera.camera_id,
        event_id: EventId::new_v7(),
        epoch: camera.epoch,
        kind: EventKind::Motion,
        started_at: chrono::Utc::now(),
        duration_ms: 3000,
        thumb_sha256: sha256_hex(&thumb),
        thumb_size: thumb.len() as u64,
        clip_sha256: sha256_hex(&clip),
        clip_size: clip.len() as u64,
    };
    let signed = SignedManifest::sign(&manifest, &camera.device);
    Ok(Upload {
        path_event: manifest.event_id,
        manifest,
        signed,
        thumb,
        clip,
    })
}

/// Every file below `dir`, for "nothing left behind" and "no plaintext" checks.
pub fn files_below(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(entries) = std::fs::read_dir(&d) {
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
    }
    out
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

impl TestServer {
    /// A second sign-up with an email that exists; returns the status.
    pub async fn signup_raw_duplicate(&self, email: &str) -> TestResult<StatusCode> {
        let (req, _) = signup_request(email, "another password")?;
        Ok(self
            .send(
                Method::POST,
                "/v1/accounts",
                None,
                Some(serde_json::to_value(&req)?),
            )
            .await?
            .status)
    }
}

impl TestServer {
    /// The owner shares `camera` with `member` (current epoch only), and the member accepts.
    pub async fn share(
        &self,
        owner: &User,
        camera: &Camera,
        member: &User,
        role: &str,
    ) -> TestResult {
        let public: UserPublic = self
            .send(
                Method::GET,
                &format!("/v1/users/lookup?email={}", member.email),
                Some(&owner.token),
                None,
            )
            .await?
            .json()?;
        let recipient = cc_core::envelope::Recipient::parse(&public.age_recipient)?;
        let grant = recipient.encrypt(camera.content.to_secret_string().as_bytes())?;
        let invite = serde_json::json!({
            "user_id": public.user_id,
            "role": role,
            "grants": [{"epoch": camera.epoch, "grant": cc_core::b64::encode(&grant)}],
        });
        let sent = self
            .send(
                Method::POST,
                &format!("/v1/cameras/{}/shares", camera.camera_id),
                Some(&owner.token),
                Some(invite),
            )
            .await?;
        assert_eq!(
            sent.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&sent.body)
        );
        let accepted = self
            .send(
                Method::POST,
                &format!("/v1/invitations/{}/accept", camera.camera_id),
                Some(&member.token),
                None,
            )
            .await?;
        assert_eq!(accepted.status, StatusCode::NO_CONTENT);
        Ok(())
    }

    /// The owner's client rotates the content key for `remaining` members; returns the
    /// camera with its new content identity and epoch.
    pub async fn rotate(
        &self,
        owner: &User,
        camera: &Camera,
        remaining: &[&User],
    ) -> TestResult<Camera> {
        let (req, next) = self.rotation(owner, camera, remaining).await?;
        let sent = self
            .send(
                Method::POST,
                &format!("/v1/cameras/{}/rotate", camera.camera_id),
                Some(&owner.token),
                Some(serde_json::to_value(&req)?),
            )
            .await?;
        assert_eq!(
            sent.status,
            StatusCode::NO_CONTENT,
            "{}",
            String::from_utf8_lossy(&sent.body)
        );
        Ok(next)
    }

    /// A rotation to the next epoch as `signer`'s client writes it: a certificate signed
    /// by `signer` and the new content key for each of `remaining`; also returns the
    /// camera as it will be after the rotation.
    pub async fn rotation(
        &self,
        signer: &User,
        camera: &Camera,
        remaining: &[&User],
    ) -> TestResult<(RotateRequest, Camera)> {
        let mut members = Vec::new();
        for user in remaining {
            let me: Me = self
                .send(Method::GET, "/v1/me", Some(&user.token), None)
                .await?
                .json()?;
            members.push((me.user_id, user.keys.recipient()));
        }
        let epoch = camera.epoch + 1;
        let (req, content) = cc_store::testing::rotation_request(
            &signer.keys,
            camera.camera_id,
            cc_core::b64::encode(camera.device.verifying_key().as_bytes()),
            epoch,
            &members,
            b"renamed",
        )?;
        let next = Camera {
            camera_id: camera.camera_id,
            device: camera.device.clone(),
            token: camera.token.clone(),
            content,
            epoch,
        };
        Ok((req, next))
    }

    /// A member's content identity for `epoch`, from its own grant.
    pub async fn content_key(
        &self,
        user: &User,
        camera: CameraId,
        epoch: u32,
    ) -> TestResult<Option<Identity>> {
        let sent = self
            .send(
                Method::GET,
                &format!("/v1/cameras/{camera}/grants"),
                Some(&user.token),
                None,
            )
            .await?;
        if sent.status != StatusCode::OK {
            return Ok(None);
        }
        let grants: Vec<Grant> = sent.json()?;
        let Some(grant) = grants.iter().find(|g| g.epoch == epoch) else {
            return Ok(None);
        };
        let secret = String::from_utf8(user.keys.identity.decrypt(&grant.grant)?)?;
        Ok(Some(Identity::parse(&secret)?))
    }
}

impl TestServer {
    pub async fn lookup(&self, caller: &User, email: &str) -> TestResult<cc_core::UserId> {
        let public: UserPublic = self
            .send(
                Method::GET,
                &format!("/v1/users/lookup?email={email}"),
                Some(&caller.token),
                None,
            )
            .await?
            .json()?;
        Ok(public.user_id)
    }

    /// The password-derived auth key, as a client computes it.
    pub async fn auth_key(&self, email: &str, password: &str) -> TestResult<Vec<u8>> {
        let pre: PreloginResponse = self
            .send(
                Method::POST,
                "/v1/accounts/prelogin",
                None,
                Some(serde_json::json!({"email": email})),
            )
            .await?
            .json()?;
        Ok(derive_password_keys(password, &pre.salt, pre.kdf)?
            .auth_key
            .to_vec())
    }
}

impl Camera {
    pub fn clone_for_test(&self) -> Camera {
        Camera {
            camera_id: self.camera_id,
            device: self.device.clone(),
            token: self.token.clone(),
            content: self.content.clone(),
            epoch: self.epoch,
        }
    }
}

/// Several nodes on one data directory (one SQLite file), sharing `shared` services, as
/// a load balancer would see them.
pub async fn start_nodes(count: usize, shared: Services) -> TestResult<Vec<TestServer>> {
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().join("data");
    let mut owner = Some(dir);
    let mut postgres = match metadata_on_postgres() {
        true => Some(cc_store::testing::TempPostgres::create().await?),
        false => None,
    };
    let metadata_url = match &postgres {
        Some(db) => db.url().to_owned(),
        None => format!("sqlite://{}", data_dir.join("metadata.db").display()),
    };
    let mut nodes = Vec::with_capacity(count);
    for n in 0..count {
        let mut config = shared.apply(cc_server::Config {
            data_dir: data_dir.clone(),
            ..cc_server::Config::default()
        });
        if postgres.is_some() {
            config.metadata = cc_server::config::Metadata::from_url(&metadata_url)?;
        }
        let state = cc_server::open(config).await?;
        let store = state.store.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = cc_server::app(state).into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let dir = match owner.take() {
            Some(dir) => dir,
            None => tempfile::tempdir()?,
        };
        nodes.push(TestServer {
            url: format!("http://{addr}"),
            store,
            data_dir: data_dir.clone(),
            metadata_url: metadata_url.clone(),
            _dir: dir,
            http: http_client(),
            // The last node, dropped last, drops the shared database.
            _postgres: PostgresGuard(if n + 1 == count {
                postgres.take()
            } else {
                None
            }),
        });
    }
    Ok(nodes)
}

/// A namespace no other test uses, for Redis keys and NATS subjects.
pub fn fresh_namespace() -> String {
    format!("cc-test-{}", hex::encode(rand::random::<[u8; 8]>()))
}

/// The Redis and NATS that the test script makes sure are running on their standard ports.
pub fn local_services() -> Services {
    Services {
        redis: Some("redis://127.0.0.1:6379".into()),
        nats: Some("nats://127.0.0.1:4222".into()),
        namespace: fresh_namespace(),
        ..Services::default()
    }
}

/// What several test nodes share besides the data directory; unset means in-process.
#[derive(Clone, Default)]
pub struct Services {
    pub s3: Option<cc_store::blobs::S3Config>,
    pub redis: Option<String>,
    pub nats: Option<String>,
    pub namespace: String,
}

impl Services {
    /// `config` using these services.
    pub fn apply(&self, mut config: cc_server::Config) -> cc_server::Config {
        use cc_server::config::{Blobs, Cache, Fanout, ServiceUrl};
        if let Some(s3) = &self.s3 {
            config.blobs = Blobs::S3(s3.clone());
        }
        if let Some(url) = &self.redis {
            config.cache = Cache::Redis(ServiceUrl::new(url.as_str()));
        }
        if let Some(url) = &self.nats {
            config.fanout = Fanout::Nats(ServiceUrl::new(url.as_str()));
        }
        if !self.namespace.is_empty() {
            config.namespace = self.namespace.clone();
        }
        config
    }
}

/// A local S3-compatible server with one empty bucket, stopped on drop.
pub async fn start_s3() -> TestResult<cc_store::testing::TempS3> {
    Ok(
        tokio::task::spawn_blocking(|| cc_store::testing::TempS3::start("closedcircuit-test"))
            .await??,
    )
}

impl TestServer {
    /// The owner (or an admin) removes `member` from `camera`; access ends at once.
    pub async fn revoke(&self, by: &User, camera: CameraId, member: &str) -> TestResult {
        let member = self.lookup(by, member).await?;
        let sent = self
            .send(
                Method::DELETE,
                &format!("/v1/cameras/{camera}/shares/{member}"),
                Some(&by.token),
                None,
            )
            .await?;
        assert_eq!(sent.status, StatusCode::NO_CONTENT);
        Ok(())
    }
}

/// Reads an SSE response until `needle` shows up.
pub async fn read_until(stream: &mut reqwest::Response, needle: &str) -> TestResult<String> {
    let mut text = String::new();
    while !text.contains(needle) {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), stream.chunk())
            .await??
            .ok_or("stream ended")?;
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    Ok(text)
}

impl TestServer {
    /// Opens a long-lived GET (an SSE stream) with `token`; the caller checks the status.
    pub async fn open_stream(&self, path: &str, token: &str) -> TestResult<reqwest::Response> {
        Ok(self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(token)
            .send()
            .await?)
    }
}

/// An honest live segment: `plain` encrypted to the camera's content key, signed by its
/// device, captured now.
pub fn live_frame(camera: &Camera, stream: &str, seq: u64, plain: &[u8]) -> TestResult<LiveFrame> {
    use cc_core::live::{LiveSegment, SignedSegment};
    let ciphertext = camera.content.recipient().encrypt(plain)?;
    let segment = LiveSegment::describe(
        camera.camera_id,
        camera.epoch,
        stream,
        seq,
        "image/bmp",
        &ciphertext,
    );
    Ok(LiveFrame {
        segment: SignedSegment::sign(&segment, &camera.device),
        ciphertext: cc_core::b64::encode(&ciphertext),
    })
}

/// The next `segment` event of a live stream, parsed.
pub async fn next_frame(stream: &mut reqwest::Response) -> TestResult<LiveFrame> {
    let text = read_until(stream, "\n\n").await?;
    let data = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .ok_or("no data line")?;
    Ok(serde_json::from_str(data)?)
}
