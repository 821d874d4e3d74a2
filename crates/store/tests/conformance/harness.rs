//! The two backends every case runs on, and honest households made through the store
//! API itself (keys, certificates, manifests and grants made as a client makes them).

use std::future::Future;
use std::sync::Arc;

use cc_core::api::{
    CompleteClaimRequest, Grant, InviteRequest, LoginRequest, PairingRequest, Role, SealedName,
    SignupRequest, TransferRequest,
};
use cc_core::certificate::{CameraCertificate, SignedCertificate};
use cc_core::claim::ClaimCode;
use cc_core::envelope::Identity;
use cc_core::keys::{derive_password_keys, UserKeys};
use cc_core::manifest::{sha256_hex, EventKind, Manifest, SignedManifest};
use cc_core::transfer::{OwnershipTransfer, SignedTransfer};
use cc_core::{CameraId, EventId, UserId};
use cc_store::authz::{self, Device, Manage, Own, Session};
use cc_store::blobs::LocalBlobs;
use cc_store::cameras::PairingPoll;
use cc_store::testing::TempPostgres;
use cc_store::Store;
use ed25519_dalek::SigningKey;

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

pub const PASSWORD: &str = "correct horse battery staple";

/// A fresh, migrated store on one backend, and what has to be cleaned up after it.
pub struct Backend {
    pub store: Store,
    _blob_dir: tempfile::TempDir,
    /// Keeps the SQLite file alive.
    _sqlite_dir: Option<tempfile::TempDir>,
    postgres: Option<TempPostgres>,
}

impl Backend {
    pub async fn sqlite() -> TestResult<Self> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}", dir.path().join("metadata.db").display());
        let blob_dir = tempfile::tempdir()?;
        let store = Store::open(&url, Arc::new(LocalBlobs::new(blob_dir.path())?)).await?;
        Ok(Self {
            store,
            _blob_dir: blob_dir,
            _sqlite_dir: Some(dir),
            postgres: None,
        })
    }

    pub async fn postgres() -> TestResult<Self> {
        let db = TempPostgres::create().await?;
        let blob_dir = tempfile::tempdir()?;
        let store = Store::open(db.url(), Arc::new(LocalBlobs::new(blob_dir.path())?)).await?;
        Ok(Self {
            store,
            _blob_dir: blob_dir,
            _sqlite_dir: None,
            postgres: Some(db),
        })
    }

    /// Closes the pool and drops the PostgreSQL database, if any.
    pub async fn finish(self) -> TestResult {
        self.store.close().await;
        if let Some(db) = self.postgres {
            db.drop_database().await?;
        }
        Ok(())
    }
}

/// Runs `case` on a fresh store of `backend`, cleans up even when the case fails or
/// panics, then reports the case's outcome.
pub async fn run<F, Fut>(backend: TestResult<Backend>, case: F) -> TestResult
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = TestResult> + Send + 'static,
{
    let backend = backend?;
    let outcome = tokio::spawn(case(backend.store.clone())).await;
    backend.finish().await?;
    match outcome {
        Ok(result) => result,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => Err(e.into()),
        },
    }
}

/// Writes each case once and runs it on both backends: `sqlite::NAME` and
/// `postgres::NAME`.
#[macro_export]
macro_rules! conformance {
    ($($case:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() -> $crate::harness::TestResult {
                    $crate::harness::run($crate::harness::Backend::sqlite().await, super::cases::$case).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() -> $crate::harness::TestResult {
                    $crate::harness::run($crate::harness::Backend::postgres().await, super::cases::$case).await
                }
            )+
        }
    };
}

pub struct User {
    pub id: UserId,
    pub email: String,
    pub session: Session,
    pub token: String,
    pub keys: UserKeys,
}

pub struct Camera {
    pub id: CameraId,
    pub signing: SigningKey,
    pub device: Device,
    pub device_token: String,
    pub content: Identity,
    pub epoch: u32,
}

/// A sign-up request with the suite's one password.
pub fn signup_request(email: &str) -> TestResult<(SignupRequest, UserKeys)> {
    Ok(cc_store::testing::signup_request(email, PASSWORD)?)
}

pub async fn login_request(store: &Store, email: &str) -> TestResult<LoginRequest> {
    let (salt, kdf) = store.prelogin(email).await?.ok_or("no such account")?;
    let derived = derive_password_keys(PASSWORD, &salt, kdf)?;
    Ok(LoginRequest {
        email: email.into(),
        auth_key: derived.auth_key.to_vec(),
        client: "conformance".into(),
        totp: None,
    })
}

/// Signs up and logs in.
pub async fn signup(store: &Store, email: &str) -> TestResult<User> {
    let (req, keys) = signup_request(email)?;
    let id = store.create_user(&req).await?;
    let login = store
        .login(
            &login_request(store, email).await?,
            "192.0.2.1",
            chrono::Duration::days(1),
        )
        .await?;
    let session = authz::authenticate(store, &login.token).await?;
    Ok(User {
        id,
        email: email.into(),
        session,
        token: login.token,
        keys,
    })
}

/// The whole pairing, played honestly by the owner's client and the camera.
pub async fn pair(store: &Store, owner: &User) -> TestResult<Camera> {
    let code = ClaimCode::generate(&owner.keys.verifying_key());
    let claim = store
        .create_claim(&owner.session, &code.secret_hash())
        .await?;
    let signing = SigningKey::generate(&mut rand::rngs::OsRng);
    let pairing = store
        .present_pairing(&PairingRequest {
            secret_hash: code.secret_hash(),
            device_key: cc_core::b64::encode(signing.verifying_key().as_bytes()),
            mac: code.pairing_mac(&signing.verifying_key()),
        })
        .await?;
    let presented = store
        .open_claims(&owner.session)
        .await?
        .into_iter()
        .find(|c| c.claim_id == claim.claim_id)
        .and_then(|c| c.pairing)
        .ok_or("the presented pairing is not visible to the owner")?;
    code.verify_pairing_mac(&signing.verifying_key(), &presented.mac)?;
    let content = Identity::generate();
    let id = CameraId::new_v7();
    let cert = CameraCertificate {
        v: 1,
        camera_id: id,
        device_key: presented.device_key.clone(),
        epoch: 1,
        content_recipient: content.recipient().to_string(),
        owner_key: cc_core::b64::encode(owner.keys.verifying_key().as_bytes()),
        issued_at: chrono::Utc::now(),
    };
    store
        .complete_claim(
            &owner.session,
            claim.claim_id,
            &CompleteClaimRequest {
                certificate: SignedCertificate::sign(&cert, &owner.keys.signing),
                grant: owner
                    .keys
                    .recipient()
                    .encrypt(content.to_secret_string().as_bytes())?,
                name: SealedName {
                    epoch: 1,
                    ciphertext: content.recipient().encrypt(b"Front door")?,
                },
            },
        )
        .await?;
    let PairingPoll::Ready(result) = store.poll_pairing(pairing).await? else {
        return Err("pairing not ready after completion".into());
    };
    let device = authz::authenticate_device(store, &result.device_token).await?;
    Ok(Camera {
        id,
        signing,
        device,
        device_token: result.device_token,
        content,
        epoch: 1,
    })
}

/// An honest manifest for an event that started `ago` before now.
pub fn manifest(camera: &Camera, ago: chrono::Duration) -> TestResult<(Manifest, SignedManifest)> {
    let thumb = camera.content.recipient().encrypt(b"thumb")?;
    let clip = camera.content.recipient().encrypt(b"clip")?;
    let manifest = Manifest {
        v: 1,
        camera_id: camera.id,
        event_id: EventId::new_v7(),
        epoch: camera.epoch,
        kind: EventKind::Motion,
        started_at: chrono::Utc::now() - ago,
        duration_ms: 3000,
        thumb_sha256: sha256_hex(&thumb),
        thumb_size: thumb.len() as u64,
        clip_sha256: sha256_hex(&clip),
        clip_size: clip.len() as u64,
    };
    let signed = SignedManifest::sign(&manifest, &camera.signing);
    Ok((manifest, signed))
}

/// Stores `n` events, one a minute apart, newest last; returns their IDs.
pub async fn events(store: &Store, camera: &Camera, n: usize) -> TestResult<Vec<EventId>> {
    let mut ids = Vec::new();
    for i in 0..n {
        let ago = chrono::Duration::minutes(i64::try_from(n - i)?);
        let (m, s) = manifest(camera, ago)?;
        store.insert_event(&camera.device, &m, &s).await?;
        ids.push(m.event_id);
    }
    Ok(ids)
}

/// The owner invites `member` with `role` (current epoch only) and the member accepts.
pub async fn share(
    store: &Store,
    owner: &User,
    camera: &Camera,
    member: &User,
    role: Role,
) -> TestResult {
    let auth = authz::check::<Manage>(store, &owner.session, camera.id).await?;
    let public = store.lookup_user(&owner.session, &member.email).await?;
    let recipient = cc_core::envelope::Recipient::parse(&public.age_recipient)?;
    store
        .invite(
            &auth,
            &InviteRequest {
                user_id: public.user_id,
                role,
                expires_at: None,
                grants: vec![Grant {
                    epoch: camera.epoch,
                    grant: recipient.encrypt(camera.content.to_secret_string().as_bytes())?,
                }],
            },
        )
        .await?;
    store.accept_invitation(&member.session, camera.id).await?;
    Ok(())
}

/// The owner's client moves the camera to a new content key for `remaining` members.
pub async fn rotate(
    store: &Store,
    owner: &User,
    camera: &Camera,
    remaining: &[&User],
) -> TestResult<Camera> {
    let epoch = camera.epoch + 1;
    let members: Vec<_> = remaining
        .iter()
        .map(|user| (user.id, user.keys.recipient()))
        .collect();
    let (req, content) = cc_store::testing::rotation_request(
        &owner.keys,
        camera.id,
        cc_core::b64::encode(camera.signing.verifying_key().as_bytes()),
        epoch,
        &members,
        b"Front door",
    )?;
    let auth = authz::check::<Own>(store, &owner.session, camera.id).await?;
    store.rotate(&auth, &req).await?;
    Ok(Camera {
        id: camera.id,
        signing: camera.signing.clone(),
        device: store.device_again(&camera.device).await?,
        device_token: camera.device_token.clone(),
        content,
        epoch,
    })
}

/// The owner offers the camera to `to`; `epochs` is the camera as it was at each epoch
/// so far (oldest first), whose content keys go to the new owner.
pub async fn offer_transfer(
    store: &Store,
    owner: &User,
    epochs: &[&Camera],
    to: &User,
) -> TestResult {
    let current = epochs.last().ok_or("no epochs")?;
    let statement = OwnershipTransfer {
        v: 1,
        camera_id: current.id,
        from_key: cc_core::b64::encode(owner.keys.verifying_key().as_bytes()),
        to_user: to.id,
        to_key: cc_core::b64::encode(to.keys.verifying_key().as_bytes()),
        epoch: current.epoch + 1,
        issued_at: chrono::Utc::now(),
    };
    let mut grants = Vec::new();
    for camera in epochs {
        grants.push(Grant {
            epoch: camera.epoch,
            grant: to
                .keys
                .recipient()
                .encrypt(camera.content.to_secret_string().as_bytes())?,
        });
    }
    let auth = authz::check::<Own>(store, &owner.session, current.id).await?;
    store
        .offer_transfer(
            &auth,
            &TransferRequest {
                transfer: SignedTransfer::sign(&statement, &owner.keys.signing),
                grants,
            },
        )
        .await?;
    Ok(())
}
