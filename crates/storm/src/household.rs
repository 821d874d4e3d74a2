//! Setting the stage: households sign up and pair their cameras, playing the honest
//! client and the honest camera with `cc-core`'s cryptography.

use cc_core::api::{
    Claim, CompleteClaimRequest, LoginRequest, LoginResponse, Me, PairingRequest, PairingResult,
    PairingStarted, PreloginResponse, SealedName, SignupRequest,
};
use cc_core::certificate::{CameraCertificate, SignedCertificate};
use cc_core::claim::ClaimCode;
use cc_core::envelope::Identity;
use cc_core::keys::{derive_password_keys, random_salt, KdfParams, RecoveryKey, UserKeys};
use cc_core::{CameraId, UserId};
use ed25519_dalek::SigningKey;
use reqwest::Method;

use crate::http::Http;
use crate::StormError;

/// Simulated people are not real people: they use the smallest key-derivation cost the
/// clients accept, so setting up hundreds of households takes seconds, not minutes.
const SIM_KDF: KdfParams = KdfParams {
    m_kib: 8 * 1024,
    t: 1,
    p: 1,
};

pub struct Household {
    pub index: usize,
    pub email: String,
    pub password: String,
    pub user_id: UserId,
    pub keys: UserKeys,
    pub cameras: Vec<SimCamera>,
}

pub struct SimCamera {
    pub camera_id: CameraId,
    pub device: SigningKey,
    pub token: String,
    pub content: Identity,
}

fn crypto(e: impl std::fmt::Display) -> StormError {
    StormError::Protocol(e.to_string())
}

impl Household {
    pub async fn create(
        http: &Http,
        run: &str,
        index: usize,
        cameras: usize,
    ) -> Result<Self, StormError> {
        let email = format!("storm-{run}-{index}@households.invalid");
        let password = format!("storm password {run} {index}");
        let keys = UserKeys::generate();
        let salt = random_salt();
        let derived = derive_password_keys(&password, &salt, SIM_KDF).map_err(crypto)?;
        let signup = SignupRequest {
            email: email.clone(),
            salt: salt.to_vec(),
            kdf: SIM_KDF,
            auth_key: derived.auth_key.to_vec(),
            age_recipient: keys.recipient().to_string(),
            signing_key: cc_core::b64::encode(keys.verifying_key().as_bytes()),
            wrapped_keys: keys.wrap(&derived.kek),
            recovery_wrapped_keys: keys.wrap(&RecoveryKey::generate().wrapping_key()),
        };
        http.send(Method::POST, "/v1/accounts", None, Some(&signup))
            .await?
            .json::<serde_json::Value>("sign-up")?;
        let mut household = Self {
            index,
            email,
            password,
            user_id: UserId::new_v7(),
            keys,
            cameras: Vec::new(),
        };
        let token = household.login(http).await?;
        household.user_id = http
            .send::<()>(Method::GET, "/v1/me", Some(&token), None)
            .await?
            .json::<Me>("me")?
            .user_id;
        for n in 0..cameras {
            let camera = household.pair(http, &token, n).await?;
            household.cameras.push(camera);
        }
        Ok(household)
    }

    /// A fresh session, as a viewer opening the app.
    pub async fn login(&self, http: &Http) -> Result<String, StormError> {
        let pre: PreloginResponse = http
            .send(
                Method::POST,
                "/v1/accounts/prelogin",
                None,
                Some(&serde_json::json!({"email": self.email})),
            )
            .await?
            .json("prelogin")?;
        let derived = derive_password_keys(&self.password, &pre.salt, pre.kdf).map_err(crypto)?;
        let login = LoginRequest {
            email: self.email.clone(),
            auth_key: derived.auth_key.to_vec(),
            client: "closedcircuit storm".into(),
            totp: None,
        };
        let reply: LoginResponse = http
            .send(Method::POST, "/v1/sessions", None, Some(&login))
            .await?
            .json("login")?;
        Ok(reply.token)
    }

    async fn pair(&self, http: &Http, token: &str, n: usize) -> Result<SimCamera, StormError> {
        let code = ClaimCode::generate(&self.keys.verifying_key());
        let claim: Claim = http
            .send(
                Method::POST,
                "/v1/claims",
                Some(token),
                Some(&serde_json::json!({"secret_hash": code.secret_hash()})),
            )
            .await?
            .json("claim")?;
        let device = SigningKey::generate(&mut rand::rngs::OsRng);
        let presented = PairingRequest {
            secret_hash: code.secret_hash(),
            device_key: cc_core::b64::encode(device.verifying_key().as_bytes()),
            mac: code.pairing_mac(&device.verifying_key()),
        };
        let started: PairingStarted = http
            .send(Method::POST, "/v1/device/pair", None, Some(&presented))
            .await?
            .json("pair")?;
        let content = Identity::generate();
        let certificate = CameraCertificate {
            v: 1,
            camera_id: CameraId::new_v7(),
            device_key: presented.device_key.clone(),
            epoch: 1,
            content_recipient: content.recipient().to_string(),
            owner_key: cc_core::b64::encode(self.keys.verifying_key().as_bytes()),
            issued_at: chrono::Utc::now(),
        };
        let complete = CompleteClaimRequest {
            certificate: SignedCertificate::sign(&certificate, &self.keys.signing),
            grant: self
                .keys
                .recipient()
                .encrypt(content.to_secret_string().as_bytes())
                .map_err(crypto)?,
            name: SealedName {
                epoch: 1,
                ciphertext: content
                    .recipient()
                    .encrypt(format!("camera {n}").as_bytes())
                    .map_err(crypto)?,
            },
        };
        http.send(
            Method::POST,
            &format!("/v1/claims/{}/complete", claim.claim_id),
            Some(token),
            Some(&complete),
        )
        .await?
        .json::<serde_json::Value>("complete claim")?;
        let result: PairingResult = http
            .send::<()>(
                Method::GET,
                &format!("/v1/device/pair/{}", started.pairing_id),
                None,
                None,
            )
            .await?
            .json("pairing result")?;
        Ok(SimCamera {
            camera_id: result.camera_id,
            device,
            token: result.device_token,
            content,
        })
    }
}
