//! One module per command group, each with its clap `Args` and a `run` function.

pub mod account;
pub mod admin;
pub mod agent;
pub mod audit;
pub mod bench;
pub mod camera;
pub mod events;
pub mod live;
pub mod migrate;
pub mod serve;
pub mod share;
pub mod storm;
pub mod transfer;

use std::path::PathBuf;

use anyhow::Context as _;
use cc_client::{ProfileDir, Session};

/// Options every command accepts.
#[derive(clap::Args)]
pub struct Global {
    /// Server URL, https://… (checked against the system's trusted certificates;
    /// SSL_CERT_FILE names others) or http://… [default: the one you logged in to, else
    /// http://127.0.0.1:8080]
    #[arg(long, global = true, env = "CLOSEDCIRCUIT_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// Where your login, keys and pending pairings are kept [default: the user config
    /// directory's `closedcircuit`]
    #[arg(long, global = true, env = "CLOSEDCIRCUIT_PROFILE", value_name = "DIR")]
    pub profile: Option<PathBuf>,
}

impl Global {
    pub fn profile_dir(&self) -> anyhow::Result<ProfileDir> {
        match &self.profile {
            Some(dir) => Ok(ProfileDir::new(dir)),
            None => dirs::config_dir()
                .map(|dir| ProfileDir::new(dir.join("closedcircuit")))
                .context("cannot tell where your config directory is; pass --profile DIR"),
        }
    }

    /// The saved login, for commands that need one.
    pub fn session(&self) -> anyhow::Result<Session> {
        Ok(Session::open(self.profile_dir()?, self.server.as_deref())?)
    }
}
