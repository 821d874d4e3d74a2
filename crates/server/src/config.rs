//! Which services a node uses: a TOML file (`serve --config FILE`), environment
//! variables and flags, checked here once and turned into typed choices so the rest of
//! the server matches on an enum instead of parsing strings. Flags and environment
//! variables win over the file; anything left unset keeps the embedded defaults
//! (SQLite and local files under the data directory, in-process cache and fan-out).

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use cc_store::blobs::S3Config;
use serde::Deserialize;

/// Where account, camera and event metadata lives.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Metadata {
    /// `metadata.db` (SQLite) in the data directory.
    #[default]
    Embedded,
    /// A SQLite file elsewhere (`sqlite://PATH`): one node only.
    Sqlite(PathBuf),
    /// A PostgreSQL database shared by every node (`postgres://…`).
    Postgres(ServiceUrl),
}

impl Metadata {
    /// Checks a metadata URL (`sqlite://PATH` or `postgres://…`), as `metadata_url` in
    /// the configuration file.
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        parse_metadata(url)
    }
}

/// Where encrypted media lives.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Blobs {
    /// `blobs/` in the data directory.
    #[default]
    Embedded,
    /// A local (or mounted) directory (`file://PATH`).
    File(PathBuf),
    /// An S3-compatible bucket shared by every node (`s3://BUCKET[/PREFIX]`).
    S3(S3Config),
}

/// Where the door's membership cache, rate limits and session revocations are shared.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Cache {
    /// In this process only: right for one node.
    #[default]
    Memory,
    /// A Redis server shared by every node (`redis://…` or `rediss://…`).
    Redis(ServiceUrl),
}

/// How new-event notifications and live view reach viewers connected to other nodes.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Fanout {
    /// In this process only: right for one node.
    #[default]
    Memory,
    /// A NATS server shared by every node (`nats://…`).
    Nats(ServiceUrl),
}

/// A service URL that may carry a password; `Debug` and `Display` hide it so it never
/// reaches a log line or an error message.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceUrl(String);

impl ServiceUrl {
    /// Wraps a URL given in code (tests, embedding) rather than read from settings,
    /// where the scheme was already checked.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL as given, password included, for the client library only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServiceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

impl fmt::Debug for ServiceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", redact(&self.0))
    }
}

/// `scheme://user:password@host…` → `scheme://user:***@host…`.
fn redact(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let authority_end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    let authority = &url[start..authority_end];
    match authority.rfind('@') {
        Some(at) => match authority[..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..start], &url[start + at..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// What is wrong with a configuration, worded for the operator who wrote it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid configuration file: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{setting} = {value}: unknown scheme; expected {expected}")]
    UnknownScheme {
        setting: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("{setting} = {value}: {problem}")]
    Invalid {
        setting: &'static str,
        value: String,
        problem: &'static str,
    },
    #[error("the s3 settings ({setting}) apply only when blobs_url is s3://BUCKET")]
    S3WithoutBucket { setting: &'static str },
}

/// The configuration file. Every key is optional; unknown keys are errors, so a typo
/// does not silently fall back to a default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address and port to listen on.
    pub listen: Option<SocketAddr>,
    /// The node's own directory (upload staging, embedded storage).
    pub data_dir: Option<PathBuf>,
    /// `sqlite://PATH` or `postgres://…`.
    pub metadata_url: Option<String>,
    /// `file://PATH` or `s3://BUCKET[/PREFIX]`.
    pub blobs_url: Option<String>,
    /// `memory` or `redis://…`.
    pub cache_url: Option<String>,
    /// `memory` or `nats://…`.
    pub fanout_url: Option<String>,
    /// How to reach an `s3://` bucket.
    #[serde(default)]
    pub s3: S3File,
}

/// The `[s3]` table of the configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3File {
    /// See [`S3Config::endpoint`].
    pub endpoint: Option<String>,
    /// See [`S3Config::region`].
    pub region: Option<String>,
    /// See [`S3Config::access_key_id`].
    pub access_key_id: Option<String>,
    /// See [`S3Config::secret_access_key`].
    pub secret_access_key: Option<String>,
    /// See [`S3Config::allow_http`].
    pub allow_http: Option<bool>,
}

impl FileConfig {
    /// Reads and parses a configuration file.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Layers flags and environment variables over the file: each value set there wins.
    pub fn overlay(mut self, over: FileConfig) -> Self {
        self.listen = over.listen.or(self.listen);
        self.data_dir = over.data_dir.or(self.data_dir);
        self.metadata_url = over.metadata_url.or(self.metadata_url);
        self.blobs_url = over.blobs_url.or(self.blobs_url);
        self.cache_url = over.cache_url.or(self.cache_url);
        self.fanout_url = over.fanout_url.or(self.fanout_url);
        self.s3.endpoint = over.s3.endpoint.or(self.s3.endpoint);
        self.s3.region = over.s3.region.or(self.s3.region);
        self.s3.access_key_id = over.s3.access_key_id.or(self.s3.access_key_id);
        self.s3.secret_access_key = over.s3.secret_access_key.or(self.s3.secret_access_key);
        self.s3.allow_http = over.s3.allow_http.or(self.s3.allow_http);
        self
    }
}

/// A node's services, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// The node's own directory.
    pub data_dir: PathBuf,
    /// Where metadata lives.
    pub metadata: Metadata,
    /// Where encrypted media lives.
    pub blobs: Blobs,
    /// Where the door's cache, rate limits and revocations are shared.
    pub cache: Cache,
    /// How notifications and live view reach other nodes.
    pub fanout: Fanout,
}

/// Where a node listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Where a node keeps its data unless told otherwise.
pub const DEFAULT_DATA_DIR: &str = "closedcircuit-data";

impl Settings {
    /// Checks every value and applies the defaults.
    pub fn resolve(file: FileConfig) -> Result<Self, ConfigError> {
        let blobs = match file.blobs_url.as_deref() {
            None => Blobs::Embedded,
            Some(url) => parse_blobs(url, &file.s3)?,
        };
        if !matches!(blobs, Blobs::S3(_)) {
            let s3 = &file.s3;
            for (setting, set) in [
                ("endpoint", s3.endpoint.is_some()),
                ("region", s3.region.is_some()),
                ("access_key_id", s3.access_key_id.is_some()),
                ("secret_access_key", s3.secret_access_key.is_some()),
                ("allow_http", s3.allow_http.is_some()),
            ] {
                if set {
                    return Err(ConfigError::S3WithoutBucket { setting });
                }
            }
        }
        Ok(Self {
            listen: file
                .listen
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080))),
            data_dir: file
                .data_dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            metadata: file
                .metadata_url
                .as_deref()
                .map_or(Ok(Metadata::Embedded), parse_metadata)?,
            blobs,
            cache: file
                .cache_url
                .as_deref()
                .map_or(Ok(Cache::Memory), parse_cache)?,
            fanout: file
                .fanout_url
                .as_deref()
                .map_or(Ok(Fanout::Memory), parse_fanout)?,
        })
    }
}

fn scheme(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once(':')?;
    Some((scheme, rest.strip_prefix("//").unwrap_or(rest)))
}

fn local_path(setting: &'static str, url: &str, rest: &str) -> Result<PathBuf, ConfigError> {
    if rest.is_empty() || rest.contains('?') {
        return Err(ConfigError::Invalid {
            setting,
            value: redact(url),
            problem: "needs a file system path (and no query parameters)",
        });
    }
    Ok(PathBuf::from(rest))
}

/// Whether a URL (after `scheme://`) names a server: in its authority, or as a
/// `host=` parameter (PostgreSQL's way to name a Unix socket directory).
fn has_host(rest: &str) -> bool {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    let query = rest.split_once('?').map_or("", |(_, q)| q);
    !host.is_empty() || query.split('&').any(|p| p.starts_with("host="))
}

fn parse_metadata(url: &str) -> Result<Metadata, ConfigError> {
    const SETTING: &str = "metadata_url";
    match scheme(url) {
        Some(("sqlite", rest)) => Ok(Metadata::Sqlite(local_path(SETTING, url, rest)?)),
        Some(("postgres" | "postgresql", rest)) if has_host(rest) => {
            Ok(Metadata::Postgres(ServiceUrl(url.to_owned())))
        }
        Some(("postgres" | "postgresql", _)) => Err(ConfigError::Invalid {
            setting: SETTING,
            value: redact(url),
            problem: "needs a host, as in postgres://USER@HOST:5432/DATABASE",
        }),
        _ => Err(ConfigError::UnknownScheme {
            setting: SETTING,
            value: redact(url),
            expected: "sqlite://PATH or postgres://USER@HOST/DATABASE",
        }),
    }
}

fn parse_blobs(url: &str, s3: &S3File) -> Result<Blobs, ConfigError> {
    const SETTING: &str = "blobs_url";
    match scheme(url) {
        Some(("file", rest)) => Ok(Blobs::File(local_path(SETTING, url, rest)?)),
        Some(("s3", rest)) => {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(ConfigError::Invalid {
                    setting: SETTING,
                    value: url.to_owned(),
                    problem: "names no bucket; write s3://BUCKET or s3://BUCKET/PREFIX",
                });
            }
            if let Some(endpoint) = &s3.endpoint {
                let plain = endpoint.starts_with("http://");
                if !plain && !endpoint.starts_with("https://") {
                    return Err(ConfigError::Invalid {
                        setting: "s3.endpoint",
                        value: endpoint.clone(),
                        problem: "must be an http:// or https:// URL",
                    });
                }
                if plain && s3.allow_http != Some(true) {
                    return Err(ConfigError::Invalid {
                        setting: "s3.endpoint",
                        value: endpoint.clone(),
                        problem: "is plain HTTP; set allow_http = true to allow it",
                    });
                }
            }
            if s3.access_key_id.is_some() != s3.secret_access_key.is_some() {
                {
                    return Err(ConfigError::Invalid {
                        setting: "s3",
                        value: "access_key_id / secret_access_key".into(),
                        problem: "give both or neither",
                    });
                }
            }
            Ok(Blobs::S3(S3Config {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_matches('/').to_owned(),
                endpoint: s3.endpoint.clone(),
                region: s3.region.clone(),
                access_key_id: s3.access_key_id.clone(),
                secret_access_key: s3.secret_access_key.clone(),
                allow_http: s3.allow_http.unwrap_or(false),
            }))
        }
        _ => Err(ConfigError::UnknownScheme {
            setting: SETTING,
            value: redact(url),
            expected: "file://PATH or s3://BUCKET[/PREFIX]",
        }),
    }
}

fn parse_cache(url: &str) -> Result<Cache, ConfigError> {
    match scheme(url) {
        _ if url == "memory" => Ok(Cache::Memory),
        Some(("redis" | "rediss", rest)) if has_host(rest) => {
            Ok(Cache::Redis(ServiceUrl(url.to_owned())))
        }
        _ => Err(ConfigError::UnknownScheme {
            setting: "cache_url",
            value: redact(url),
            expected: "memory or redis://HOST:6379",
        }),
    }
}

fn parse_fanout(url: &str) -> Result<Fanout, ConfigError> {
    match scheme(url) {
        _ if url == "memory" => Ok(Fanout::Memory),
        Some(("nats", rest)) if has_host(rest) => Ok(Fanout::Nats(ServiceUrl(url.to_owned()))),
        _ => Err(ConfigError::UnknownScheme {
            setting: "fanout_url",
            value: redact(url),
            expected: "memory or nats://HOST:4222",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(text: &str) -> Result<Settings, ConfigError> {
        Settings::resolve(
            FileConfig::parse(text).map_err(|message| ConfigError::Parse {
                path: PathBuf::from("test.toml"),
                message,
            })?,
        )
    }

    #[test]
    fn nothing_set_is_the_embedded_default() -> Result<(), ConfigError> {
        let s = resolve("")?;
        assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(s.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(
            (s.metadata, s.blobs, s.cache, s.fanout),
            (
                Metadata::Embedded,
                Blobs::Embedded,
                Cache::Memory,
                Fanout::Memory
            )
        );
        Ok(())
    }

    #[test]
    fn the_example_file_parses_into_every_service() -> Result<(), ConfigError> {
        let s = resolve(include_str!("../../../docs/closedcircuit.example.toml"))?;
        assert!(matches!(s.metadata, Metadata::Postgres(_)));
        assert!(
            matches!(s.blobs, Blobs::S3(ref b) if b.bucket == "closedcircuit-media" && b.allow_http)
        );
        assert!(matches!(s.cache, Cache::Redis(_)));
        assert!(matches!(s.fanout, Fanout::Nats(_)));
        Ok(())
    }

    #[test]
    fn urls_become_typed_choices() -> Result<(), ConfigError> {
        let s = resolve(
            r#"
            metadata_url = "sqlite:///var/lib/cc/meta.db"
            blobs_url = "file://./media"
            cache_url = "memory"
            fanout_url = "nats://127.0.0.1:4222"
            "#,
        )?;
        assert_eq!(
            s.metadata,
            Metadata::Sqlite(PathBuf::from("/var/lib/cc/meta.db"))
        );
        assert_eq!(s.blobs, Blobs::File(PathBuf::from("./media")));
        let s = resolve(
            r#"
            metadata_url = "postgresql://cc:hunter2@db:5432/cc"
            blobs_url = "s3://media/node-a/"
            [s3]
            region = "eu-west-1"
            "#,
        )?;
        assert!(matches!(
            Metadata::from_url("postgres:///cc?host=/var/run/postgresql"),
            Ok(Metadata::Postgres(_))
        ));
        let Metadata::Postgres(url) = &s.metadata else {
            panic!("not postgres: {:?}", s.metadata);
        };
        assert_eq!(url.expose(), "postgresql://cc:hunter2@db:5432/cc");
        let Blobs::S3(b) = &s.blobs else {
            panic!("not s3: {:?}", s.blobs);
        };
        assert_eq!((b.bucket.as_str(), b.prefix.as_str()), ("media", "node-a"));
        assert_eq!(
            (b.region.as_deref(), b.access_key_id.is_none()),
            (Some("eu-west-1"), true)
        );
        Ok(())
    }

    #[test]
    fn passwords_never_show() -> Result<(), ConfigError> {
        let s = resolve(
            r#"
            metadata_url = "postgres://cc:hunter2@db/cc"
            cache_url = "redis://:sesame@cache:6379/0"
            blobs_url = "s3://b"
            [s3]
            access_key_id = "AKIDEXAMPLE"
            secret_access_key = "wJalrXUtnFEMI"
            "#,
        )?;
        let shown = format!("{s:?}");
        for secret in ["hunter2", "sesame", "wJalrXUtnFEMI"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("postgres://cc:***@db/cc"), "{shown}");
        let err = resolve(r#"metadata_url = "mysql://root:hunter2@db/cc""#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("unknown scheme") && !err.contains("hunter2"),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn mistakes_are_explained() {
        let cases = [
            (r#"metadata_url = "mysql://db/cc""#, "unknown scheme"),
            (r#"metadata_url = "postgres:///cc""#, "needs a host"),
            (r#"metadata_url = "sqlite://""#, "file system path"),
            (r#"blobs_url = "s3://""#, "names no bucket"),
            (r#"blobs_url = "gs://bucket""#, "file://PATH or s3://"),
            (r#"cache_url = "memcached://c""#, "memory or redis://"),
            (r#"fanout_url = "kafka://k""#, "memory or nats://"),
            ("[s3]\nregion = \"x\"", "apply only when blobs_url is s3://"),
            (
                "blobs_url = \"s3://b\"\n[s3]\nendpoint = \"http://127.0.0.1:9000\"",
                "allow_http = true",
            ),
            (
                "blobs_url = \"s3://b\"\n[s3]\naccess_key_id = \"a\"",
                "both or neither",
            ),
            ("metadata = \"sqlite://x\"", "unknown field"),
            ("listen = \"not an address\"", "invalid socket address"),
        ];
        for (text, expected) in cases {
            let message = match resolve(text) {
                Ok(s) => panic!("{text:?} was accepted: {s:?}"),
                Err(e) => e.to_string(),
            };
            assert!(message.contains(expected), "{text:?}: {message}");
        }
    }

    #[test]
    fn flags_and_environment_win_over_the_file() -> Result<(), ConfigError> {
        let file = FileConfig::parse(
            "listen = \"0.0.0.0:9000\"\nmetadata_url = \"postgres://db/cc\"\ndata_dir = \"/srv/cc\"",
        )
        .map_err(|message| ConfigError::Parse {
            path: PathBuf::new(),
            message,
        })?;
        let over = FileConfig {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 8081))),
            metadata_url: Some("sqlite://other.db".into()),
            ..FileConfig::default()
        };
        let s = Settings::resolve(file.overlay(over))?;
        assert_eq!(s.listen.port(), 8081);
        assert_eq!(s.metadata, Metadata::Sqlite(PathBuf::from("other.db")));
        assert_eq!(s.data_dir, PathBuf::from("/srv/cc"));
        Ok(())
    }

    #[test]
    fn redaction_keeps_everything_but_the_password() {
        assert_eq!(redact("postgres://u:p@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("redis://:p@h:6379"), "redis://:***@h:6379");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("nats://h:4222"), "nats://h:4222");
        assert_eq!(redact("memory"), "memory");
        assert_eq!(redact("postgres://h/db?x=a@b:c"), "postgres://h/db?x=a@b:c");
    }
}
