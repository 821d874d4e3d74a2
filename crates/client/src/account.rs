//! Sign-up, login and logout. The password never leaves this module: it is stretched
//! (Argon2id) into a key that wraps the user's keys and a separate key that proves the
//! password to the server, which learns neither the password nor the keys.

use std::path::Path;

use cc_core::api::{LoginRequest, Me, PreloginRequest, SignupRequest, StepUpRequest};
use cc_core::keys::{
    derive_password_keys, fingerprint, random_salt, KdfParams, PasswordKeys, RecoveryKey, UserKeys,
};
use cc_core::UserId;

use crate::api::Api;
use crate::error::ClientError;
use crate::files;
use crate::profile::{Profile, ProfileDir, Session};

/// What the client names itself in the server's sessions list.
const CLIENT_NAME: &str = concat!("closedcircuit cli ", env!("CARGO_PKG_VERSION"));

/// The outcome of a sign-up: the account, logged in, and the recovery key that must be
/// shown to the user exactly once.
pub struct SignedUp {
    pub user_id: UserId,
    pub recovery_key: RecoveryKey,
    pub profile: Profile,
}

/// Argon2id is deliberately slow; run it off the async workers.
async fn derive(password: &str, salt: &[u8], kdf: KdfParams) -> Result<PasswordKeys, ClientError> {
    let password = zeroize::Zeroizing::new(password.to_owned());
    let salt = salt.to_vec();
    tokio::task::spawn_blocking(move || derive_password_keys(&password, &salt, kdf))
        .await
        .map_err(|e| ClientError::Invalid(format!("key derivation was interrupted: {e}")))?
        .map_err(ClientError::from)
}

/// Creates an account from keys made here, then logs in and saves the profile.
pub async fn signup(
    api: &Api,
    dir: &ProfileDir,
    email: &str,
    password: &str,
) -> Result<SignedUp, ClientError> {
    let email = email.trim();
    let salt = random_salt();
    let kdf = KdfParams::default();
    let derived = derive(password, &salt, kdf).await?;
    let keys = UserKeys::generate();
    let recovery_key = RecoveryKey::generate();
    let request = SignupRequest {
        email: email.to_owned(),
        salt: salt.to_vec(),
        kdf,
        auth_key: derived.auth_key.to_vec(),
        age_recipient: keys.recipient().to_string(),
        signing_key: cc_core::b64::encode(keys.verifying_key().as_bytes()),
        wrapped_keys: keys.wrap(&derived.kek),
        recovery_wrapped_keys: keys.wrap(&recovery_key.wrapping_key()),
    };
    let created = api.signup(&request).await?;
    let profile = login(api, dir, email, password, None).await?;
    Ok(SignedUp {
        user_id: created.user_id,
        recovery_key,
        profile,
    })
}

/// Logs in: fetches the account's KDF parameters, derives the keys, proves the password
/// (plus a two-factor code, for accounts that have it on), unwraps the user's keys and
/// saves them in the profile.
pub async fn login(
    api: &Api,
    dir: &ProfileDir,
    email: &str,
    password: &str,
    totp: Option<&str>,
) -> Result<Profile, ClientError> {
    let email = email.trim();
    let pre = api
        .prelogin(&PreloginRequest {
            email: email.to_owned(),
        })
        .await?;
    let derived = derive(password, &pre.salt, pre.kdf).await?;
    let login = api
        .login(&LoginRequest {
            email: email.to_owned(),
            auth_key: derived.auth_key.to_vec(),
            client: CLIENT_NAME.to_owned(),
            totp: totp.map(|code| code.trim().to_owned()),
        })
        .await?;
    let keys = UserKeys::unwrap(&login.wrapped_keys, &derived.kek)?;
    let profile = Profile::new(api.base(), email, &login, &keys);
    dir.save(&profile)?;
    Ok(profile)
}

/// Ends the session on the server (or all of them) and forgets it locally. A session
/// the server no longer knows is forgotten all the same.
pub async fn logout(session: &Session, everywhere: bool) -> Result<(), ClientError> {
    let result = if everywhere {
        session.api.logout_everywhere().await
    } else {
        session.api.logout().await
    };
    match result {
        Ok(()) => {}
        Err(e) if e.problem_code() == Some("unauthenticated") => {}
        Err(e) => return Err(e),
    }
    session.dir.forget()
}

/// Proves presence again on this session, for accounts that require a fresh check
/// before event video plays: with a TOTP code when given, else with the password (its
/// derived auth key, as at login; the password itself never leaves this machine).
pub async fn step_up(
    session: &Session,
    password: Option<&str>,
    totp: Option<&str>,
) -> Result<(), ClientError> {
    let request = match (totp, password) {
        (Some(code), _) => StepUpRequest {
            auth_key: None,
            totp: Some(code.trim().to_owned()),
        },
        (None, Some(password)) => {
            let pre = session
                .api
                .prelogin(&PreloginRequest {
                    email: session.profile.email.clone(),
                })
                .await?;
            let derived = derive(password, &pre.salt, pre.kdf).await?;
            StepUpRequest {
                auth_key: Some(derived.auth_key.to_vec()),
                totp: None,
            }
        }
        (None, None) => {
            return Err(ClientError::Invalid(
                "step-up needs the password or an authenticator code".to_owned(),
            ))
        }
    };
    session.api.step_up(&request).await
}

/// Who the server says we are, checked against the keys we hold.
pub struct WhoAmI {
    pub me: Me,
    /// The fingerprint of the user's signing key, to compare out of band (e.g. with a
    /// friend who shares a camera).
    pub fingerprint: String,
    /// False when the server's record of the public keys differs from the keys in the
    /// profile, which would mean the server is confused or lying.
    pub keys_match: bool,
}

pub async fn whoami(session: &Session) -> Result<WhoAmI, ClientError> {
    let me = session.api.me().await?;
    let signing = cc_core::b64::encode(session.keys.verifying_key().as_bytes());
    let keys_match = me.signing_key == signing
        && me.age_recipient == session.keys.recipient().to_string()
        && me.user_id == session.profile.user_id;
    Ok(WhoAmI {
        me,
        fingerprint: fingerprint(&session.keys.verifying_key()),
        keys_match,
    })
}

/// Writes the user's age identity in the format the standard `age` tool reads, so
/// owners can decrypt their own exports without this program.
pub fn export_identity(keys: &UserKeys, out: &Path, force: bool) -> Result<(), ClientError> {
    let text = zeroize::Zeroizing::new(keys.export_identity());
    if force {
        files::write_private(out, text.as_bytes())
    } else {
        files::write_new(out, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exported_identity_is_private_and_not_overwritten() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let out = dir.path().join("me.age-identity");
        let keys = UserKeys::generate();
        export_identity(&keys, &out, false)?;
        let text = std::fs::read_to_string(&out)?;
        let secret = text.lines().find(|l| l.starts_with("AGE-SECRET-KEY-1"));
        let parsed = cc_core::envelope::Identity::parse(secret.unwrap_or_default())?;
        assert_eq!(parsed.recipient(), keys.recipient());
        assert!(matches!(
            export_identity(&UserKeys::generate(), &out, false),
            Err(ClientError::WouldOverwrite(_))
        ));
        export_identity(&UserKeys::generate(), &out, true)?;
        assert_ne!(std::fs::read_to_string(&out)?, text);
        Ok(())
    }
}
