//! What tests of the store and of the server share (feature `test-support`): throw-away
//! PostgreSQL databases, so the same cases run against SQLite and PostgreSQL without
//! sharing state between test runs, a local S3-compatible server, and sign-ups and key
//! rotations made as an honest client makes them.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use cc_core::api::{MemberGrant, RotateRequest, SealedName, SignupRequest};
use cc_core::certificate::{CameraCertificate, SignedCertificate};
use cc_core::envelope::{EnvelopeError, Identity, Recipient};
use cc_core::keys::{
    derive_password_keys, random_salt, KdfParams, KeyError, RecoveryKey, UserKeys,
};
use cc_core::{CameraId, UserId};
use rand::Rng;
use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, ConnectOptions, Connection, Executor};

use crate::blobs::S3Config;
use crate::Result;

/// The server tests create their databases on, unless `CC_TEST_POSTGRES_URL` names another
/// (any database on it that the user may connect to; new ones are made beside it).
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database made for one test and dropped by [`TempPostgres::drop_database`].
pub struct TempPostgres {
    admin_url: String,
    name: String,
    url: String,
}

impl TempPostgres {
    /// Creates `cc_test_<random>` on the server of `CC_TEST_POSTGRES_URL` (or
    /// [`DEFAULT_ADMIN_URL`]).
    pub async fn create() -> Result<Self> {
        sqlx::any::install_default_drivers();
        let admin_url =
            std::env::var("CC_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned());
        let name = format!("cc_test_{:016x}", rand::thread_rng().gen::<u64>());
        let url = with_database(&admin_url, &name);
        let mut admin = connect(&admin_url).await?;
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await?;
        admin.close().await?;
        Ok(Self {
            admin_url,
            name,
            url,
        })
    }

    /// The new database's URL, for `Store::open`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Drops the database, ending any connection still open to it.
    pub async fn drop_database(self) -> Result<()> {
        let mut admin = connect(&self.admin_url).await?;
        admin
            .execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
            .await?;
        admin.close().await?;
        Ok(())
    }
}

/// A local S3-compatible server (moto, which `scripts/setup` installs into
/// `target/s3-server`, or the program `CC_S3_SERVER` names) on a free port, with one
/// empty bucket; stopped when dropped.
pub struct TempS3 {
    child: Child,
    pub config: S3Config,
}

impl TempS3 {
    /// Starts the server and waits (up to 30 s) until it has created `bucket`.
    pub fn start(bucket: &str) -> std::result::Result<Self, String> {
        let program = std::env::var_os("CC_S3_SERVER").map_or_else(
            || {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../../target/s3-server/bin/moto_server")
            },
            PathBuf::from,
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start {} (run ./scripts/setup): {e}",
                    program.display()
                )
            })?;
        let server = Self {
            child,
            config: S3Config {
                endpoint: Some(format!("http://127.0.0.1:{port}")),
                bucket: bucket.to_owned(),
                prefix: String::new(),
                region: Some("us-east-1".into()),
                access_key_id: Some("test".into()),
                secret_access_key: Some("test".into()),
                allow_http: true,
            },
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !create_bucket(port, bucket).unwrap_or(false) {
            if Instant::now() > deadline {
                return Err("the S3 server did not come up in 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(server)
    }
}

impl Drop for TempS3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `PUT /bucket`, which moto answers without credentials.
fn create_bucket(port: u16, bucket: &str) -> std::io::Result<bool> {
    let mut socket = TcpStream::connect(("127.0.0.1", port))?;
    socket.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        socket,
        "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    socket.read_to_string(&mut answer)?;
    Ok(answer.starts_with("HTTP/1.1 200"))
}

/// Fast parameters for tests; production clients use `KdfParams::default()`.
pub const TEST_KDF: KdfParams = KdfParams {
    m_kib: 8 * 1024,
    t: 1,
    p: 1,
};

/// A sign-up as an honest client makes it: keys made here, wrapped under the password.
pub fn signup_request(email: &str, password: &str) -> Result<(SignupRequest, UserKeys), KeyError> {
    let keys = UserKeys::generate();
    let salt = random_salt();
    let derived = derive_password_keys(password, &salt, TEST_KDF)?;
    let req = SignupRequest {
        email: email.into(),
        salt: salt.to_vec(),
        kdf: TEST_KDF,
        auth_key: derived.auth_key.to_vec(),
        age_recipient: keys.recipient().to_string(),
        signing_key: cc_core::b64::encode(keys.verifying_key().as_bytes()),
        wrapped_keys: keys.wrap(&derived.kek),
        recovery_wrapped_keys: keys.wrap(&RecoveryKey::generate().wrapping_key()),
    };
    Ok((req, keys))
}

/// A rotation to `epoch` as the signing owner's client writes it: a new content key,
/// its certificate for the camera's device key (base64), the key for each remaining
/// member, and the name sealed to it. Returns the request and the new content key.
pub fn rotation_request(
    signer: &UserKeys,
    camera: CameraId,
    device_key: String,
    epoch: u32,
    remaining: &[(UserId, Recipient)],
    name: &[u8],
) -> Result<(RotateRequest, Identity), EnvelopeError> {
    let content = Identity::generate();
    let cert = CameraCertificate {
        v: 1,
        camera_id: camera,
        device_key,
        epoch,
        content_recipient: content.recipient().to_string(),
        owner_key: cc_core::b64::encode(signer.verifying_key().as_bytes()),
        issued_at: chrono::Utc::now(),
    };
    let mut grants = Vec::new();
    for (user_id, recipient) in remaining {
        grants.push(MemberGrant {
            user_id: *user_id,
            grant: recipient.encrypt(content.to_secret_string().as_bytes())?,
        });
    }
    let req = RotateRequest {
        certificate: SignedCertificate::sign(&cert, &signer.signing),
        grants,
        name: SealedName {
            epoch,
            ciphertext: content.recipient().encrypt(name)?,
        },
    };
    Ok((req, content))
}

async fn connect(url: &str) -> Result<AnyConnection> {
    Ok(AnyConnectOptions::from_str(url)?.connect().await?)
}

/// `url` with its database name replaced by `database` (query parameters kept).
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    format!("{server}/{database}{query}")
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_is_replaced_and_parameters_kept() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
