//! `closedcircuit serve`: runs a server node, embedded by default or on shared services
//! chosen by a configuration file, environment variables and flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use cc_server::config::{FileConfig, S3File, Settings};

const EXAMPLES: &str = "\
Examples:
  closedcircuit serve                                   # embedded: SQLite + files in ./closedcircuit-data
  closedcircuit serve --config /etc/closedcircuit.toml  # services from a file (see docs/closedcircuit.example.toml)
  CC_METADATA_URL=postgres://closedcircuit@db.internal/closedcircuit closedcircuit serve --listen 0.0.0.0:8080

Flags and environment variables win over the file; whatever none of them sets keeps
its embedded default. Several nodes behind one name share one PostgreSQL database (the
schema is migrated by one node at a time), one S3-compatible bucket, one Redis (the
door's cache, rate limits) and one NATS (notices between nodes). If Redis or NATS is
down, nodes keep serving: access is decided by the database, never allowed by default.";

/// Options of `closedcircuit serve`.
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// TOML configuration file; every key is optional, unknown keys are errors
    #[arg(long, env = "CC_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// This node's directory: upload staging and the embedded metadata
    /// and blobs [default: closedcircuit-data]
    #[arg(long, env = "CLOSEDCIRCUIT_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address and port to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "CLOSEDCIRCUIT_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Metadata database: sqlite://PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/DB
    /// [default: sqlite in DIR/metadata.db]
    #[arg(
        long,
        env = "CC_METADATA_URL",
        value_name = "URL",
        hide_env_values = true,
        help_heading = "Services"
    )]
    pub metadata_url: Option<String>,
    /// Encrypted media: file://PATH or s3://BUCKET[/PREFIX] [default: DIR/blobs]
    #[arg(
        long,
        env = "CC_BLOBS_URL",
        value_name = "URL",
        help_heading = "Services"
    )]
    pub blobs_url: Option<String>,
    /// Shared cache, rate limits and revocations: memory or redis://HOST:PORT
    /// [default: memory]
    #[arg(
        long,
        env = "CC_CACHE_URL",
        value_name = "URL",
        hide_env_values = true,
        help_heading = "Services"
    )]
    pub cache_url: Option<String>,
    /// Notifications and live view between nodes: memory or nats://HOST:PORT
    /// [default: memory]
    #[arg(
        long,
        env = "CC_FANOUT_URL",
        value_name = "URL",
        hide_env_values = true,
        help_heading = "Services"
    )]
    pub fanout_url: Option<String>,
    /// S3-compatible server URL, for services other than AWS
    #[arg(
        long,
        env = "CC_S3_ENDPOINT",
        value_name = "URL",
        help_heading = "S3 blobs"
    )]
    pub s3_endpoint: Option<String>,
    /// S3 region
    #[arg(
        long,
        env = "CC_S3_REGION",
        value_name = "REGION",
        help_heading = "S3 blobs"
    )]
    pub s3_region: Option<String>,
    /// S3 access key ID (with --s3-secret-access-key)
    #[arg(
        long,
        env = "CC_S3_ACCESS_KEY_ID",
        value_name = "ID",
        help_heading = "S3 blobs"
    )]
    pub s3_access_key_id: Option<String>,
    /// S3 secret access key; prefer the environment variable or the file to a flag
    #[arg(
        long,
        env = "CC_S3_SECRET_ACCESS_KEY",
        value_name = "SECRET",
        hide_env_values = true,
        help_heading = "S3 blobs"
    )]
    pub s3_secret_access_key: Option<String>,
    /// Allow a plain http:// S3 endpoint (true or false)
    #[arg(
        long,
        env = "CC_S3_ALLOW_HTTP",
        value_name = "BOOL",
        help_heading = "S3 blobs"
    )]
    pub s3_allow_http: Option<bool>,
}

impl Args {
    /// The file (if any) with flags and environment variables layered over it, checked.
    pub fn settings(self) -> anyhow::Result<Settings> {
        let file = match &self.config {
            Some(path) => FileConfig::read(path)?,
            None => FileConfig::default(),
        };
        let over = FileConfig {
            listen: self.listen,
            data_dir: self.data_dir,
            metadata_url: self.metadata_url,
            blobs_url: self.blobs_url,
            cache_url: self.cache_url,
            fanout_url: self.fanout_url,
            s3: S3File {
                endpoint: self.s3_endpoint,
                region: self.s3_region,
                access_key_id: self.s3_access_key_id,
                secret_access_key: self.s3_secret_access_key,
                allow_http: self.s3_allow_http,
            },
        };
        Ok(Settings::resolve(file.overlay(over))?)
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let settings = args.settings()?;
    cc_server::serve(cc_server::Config::from_settings(settings))
        .await
        .map_err(Into::into)
}
