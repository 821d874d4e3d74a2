//! The profile directory: what a logged-in client remembers between commands (server,
//! session token, unwrapped keys), the claim secrets of pairings in progress, and the
//! owner keys pinned for shared cameras. Every file in it is private (0600).

use std::path::{Path, PathBuf};

use cc_core::api::LoginResponse;
use cc_core::envelope::Identity;
use cc_core::keys::UserKeys;
use cc_core::{SessionId, UserId};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::api::{Api, DEFAULT_SERVER};
use crate::error::ClientError;
use crate::files;

/// A logged-in user on one server. Holds the user's private keys in the clear, which is
/// why the file is owner-only and removed on logout.
#[derive(Clone, Serialize, Deserialize)]
pub struct Profile {
    pub server: String,
    pub email: String,
    pub user_id: UserId,
    pub session_id: SessionId,
    pub token: String,
    /// The user's age identity (`AGE-SECRET-KEY-1…`), which opens camera grants.
    pub age_identity: String,
    /// The user's Ed25519 signing seed, base64; it signs camera certificates.
    pub signing_seed: String,
}

impl Profile {
    /// The profile of a fresh login.
    pub fn new(server: &str, email: &str, login: &LoginResponse, keys: &UserKeys) -> Self {
        Self {
            server: server.to_owned(),
            email: email.to_owned(),
            user_id: login.user_id,
            session_id: login.session_id,
            token: login.token.clone(),
            age_identity: keys.identity.to_secret_string(),
            signing_seed: cc_core::b64::encode(keys.signing.to_bytes()),
        }
    }

    /// The user's keys, as unwrapped at login.
    pub fn keys(&self) -> Result<UserKeys, ClientError> {
        let bad = |detail: &str| ClientError::BadFile {
            what: "profile",
            path: PathBuf::from(PROFILE_FILE),
            detail: detail.to_owned(),
        };
        let seed = Zeroizing::new(
            cc_core::b64::decode(&self.signing_seed).map_err(|_| bad("signing seed"))?,
        );
        let seed: [u8; 32] = seed
            .as_slice()
            .try_into()
            .map_err(|_| bad("signing seed"))?;
        Ok(UserKeys {
            identity: Identity::parse(&self.age_identity).map_err(|_| bad("age identity"))?,
            signing: SigningKey::from_bytes(&seed),
        })
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        self.token.zeroize();
        self.age_identity.zeroize();
        self.signing_seed.zeroize();
    }
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("server", &self.server)
            .field("email", &self.email)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

const PROFILE_FILE: &str = "profile.json";
const PINS_FILE: &str = "pins.json";
const CLAIMS_DIR: &str = "claims";

/// Where a client keeps its profile, pending claims and pins.
#[derive(Clone, Debug)]
pub struct ProfileDir {
    root: PathBuf,
}

impl ProfileDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn profile_path(&self) -> PathBuf {
        self.root.join(PROFILE_FILE)
    }

    pub(crate) fn pins_path(&self) -> PathBuf {
        self.root.join(PINS_FILE)
    }

    pub(crate) fn claims_dir(&self) -> PathBuf {
        self.root.join(CLAIMS_DIR)
    }

    /// The saved login, if any.
    pub fn load(&self) -> Result<Option<Profile>, ClientError> {
        files::read_json(&self.profile_path(), "profile")
    }

    pub fn save(&self, profile: &Profile) -> Result<(), ClientError> {
        files::create_private_dir(&self.root)?;
        files::write_json(&self.profile_path(), profile)
    }

    /// Forgets the login and the keys with it (pins and claims stay).
    pub fn forget(&self) -> Result<(), ClientError> {
        files::remove(&self.profile_path())
    }
}

/// The server to talk to: an explicit choice wins, then the profile's, then the default.
pub fn resolve_server(explicit: Option<&str>, profile: Option<&Profile>) -> String {
    explicit
        .map(str::to_owned)
        .or_else(|| profile.map(|p| p.server.clone()))
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned())
}

/// A logged-in user ready to make requests: the API with the session token, and the keys.
pub struct Session {
    pub api: Api,
    pub profile: Profile,
    pub keys: UserKeys,
    pub dir: ProfileDir,
}

impl Session {
    /// Loads the saved login; fails with [`ClientError::NotLoggedIn`] when there is none.
    pub fn open(dir: ProfileDir, server: Option<&str>) -> Result<Self, ClientError> {
        let profile = dir.load()?.ok_or(ClientError::NotLoggedIn)?;
        let base = resolve_server(server, Some(&profile));
        let api = Api::new(&base, Some(profile.token.clone()))?;
        let keys = profile.keys()?;
        Ok(Self {
            api,
            profile,
            keys,
            dir,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn profile_round_trips_with_its_keys() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let profiles = ProfileDir::new(dir.path().join("p"));
        assert!(profiles.load()?.is_none());
        assert!(matches!(
            Session::open(profiles.clone(), None),
            Err(ClientError::NotLoggedIn)
        ));
        let keys = UserKeys::generate();
        let login = LoginResponse {
            token: "t".into(),
            session_id: SessionId::new_random(),
            user_id: UserId::new_v7(),
            expires_at: Utc::now(),
            wrapped_keys: Vec::new(),
        };
        profiles.save(&Profile::new("http://h:1", "a@b", &login, &keys))?;
        let session = Session::open(profiles.clone(), None)?;
        assert_eq!(session.api.base(), "http://h:1");
        assert_eq!(session.keys.recipient(), keys.recipient());
        assert_eq!(session.keys.verifying_key(), keys.verifying_key());
        let other = Session::open(profiles.clone(), Some("http://other:2"))?;
        assert_eq!(other.api.base(), "http://other:2");
        profiles.forget()?;
        assert!(profiles.load()?.is_none());
        Ok(())
    }

    #[test]
    fn server_choice_prefers_explicit_then_profile() {
        assert_eq!(resolve_server(None, None), DEFAULT_SERVER);
        assert_eq!(resolve_server(Some("http://x"), None), "http://x");
    }
}
