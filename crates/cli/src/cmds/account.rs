//! `closedcircuit account …`: sign-up, login, logout, who am I, and exporting the age
//! identity for auditing with the standard `age` tool.

use std::path::PathBuf;

use anyhow::bail;
use cc_client::account;
use cc_client::api::Api;
use cc_client::profile::resolve_server;
use clap::Subcommand;
use serde_json::json;

use super::Global;
use crate::output::{self, say};
use crate::password::{self, PasswordArgs};

const EXAMPLES: &str = "\
Examples:
  closedcircuit account signup --email me@example.org
  echo \"$PASSWORD\" | closedcircuit account login --email me@example.org --password-stdin
  closedcircuit account whoami
  closedcircuit account export-identity --out ~/closedcircuit-identity.txt
  closedcircuit account logout --everywhere

Your password never leaves this machine: it is stretched (Argon2id) into a key that
unlocks your private keys, and a separate proof for the server.";

#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    #[command(subcommand)]
    command: AccountCommand,
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Create an account: your keys are made here, and a recovery key is shown once
    #[command(
        after_help = "Example:\n  closedcircuit --server http://127.0.0.1:8080 account signup --email me@example.org"
    )]
    Signup(SignupArgs),
    /// Log in on this machine and keep your unlocked keys in the profile
    #[command(after_help = "Example:\n  closedcircuit account login --email me@example.org")]
    Login(LoginArgs),
    /// Log out here (or everywhere) and delete the keys kept in the profile
    #[command(after_help = "Example:\n  closedcircuit account logout --everywhere")]
    Logout(LogoutArgs),
    /// Show who you are logged in as, and your key fingerprint
    #[command(after_help = "Example:\n  closedcircuit account whoami --json")]
    Whoami(WhoamiArgs),
    /// Write your age identity to a file, to decrypt raw exports with the `age` tool
    #[command(
        after_help = "Example:\n  closedcircuit account export-identity --out me.txt\n  closedcircuit events get EVENT_ID --raw --out ./audit\n  age -d -i me.txt ./audit/EVENT_ID/grant.age > content-key.txt\n  age -d -i content-key.txt ./audit/EVENT_ID/clip.age > clip.mp4"
    )]
    ExportIdentity(ExportArgs),
}

#[derive(clap::Args)]
struct SignupArgs {
    /// Your email address (the account name)
    #[arg(long)]
    email: String,
    #[command(flatten)]
    password: PasswordArgs,
}

#[derive(clap::Args)]
struct LoginArgs {
    /// Your email address
    #[arg(long)]
    email: String,
    #[command(flatten)]
    password: PasswordArgs,
    /// Code from your authenticator app, for accounts with two-factor login
    #[arg(long, env = "CLOSEDCIRCUIT_TOTP", value_name = "CODE")]
    totp: Option<String>,
}

#[derive(clap::Args)]
struct LogoutArgs {
    /// End every session of your account, on all devices
    #[arg(long)]
    everywhere: bool,
}

#[derive(clap::Args)]
struct WhoamiArgs {
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct ExportArgs {
    /// File to write (created readable by you only)
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Replace the file if it exists
    #[arg(long)]
    force: bool,
}

pub async fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    match args.command {
        AccountCommand::Signup(args) => signup(global, args).await,
        AccountCommand::Login(args) => login(global, args).await,
        AccountCommand::Logout(args) => logout(global, args).await,
        AccountCommand::Whoami(args) => whoami(global, args).await,
        AccountCommand::ExportIdentity(args) => export_identity(global, args),
    }
}

/// The server for commands that may run before any login.
fn api(global: &Global, dir: &cc_client::ProfileDir) -> anyhow::Result<Api> {
    let saved = dir.load().ok().flatten();
    let base = resolve_server(global.server.as_deref(), saved.as_ref());
    Ok(Api::new(&base, None)?)
}

async fn signup(global: &Global, args: SignupArgs) -> anyhow::Result<()> {
    let dir = global.profile_dir()?;
    let api = api(global, &dir)?;
    let password = password::read(&args.password, true)?;
    let signed_up = account::signup(&api, &dir, &args.email, &password).await?;
    say!(
        "Account created for {} (user {}) on {}.",
        signed_up.profile.email,
        signed_up.user_id,
        api.base()
    );
    say!("Logged in; profile saved in {}.", dir.root().display());
    say!();
    say!("Recovery key: {}", signed_up.recovery_key.display());
    say!();
    say!("WARNING: this recovery key is shown only this once. Write it down and keep it");
    say!("somewhere safe. If you forget your password it is the only way back to your");
    say!("cameras: nobody, not even the server's operator, can reset it for you.");
    Ok(())
}

async fn login(global: &Global, args: LoginArgs) -> anyhow::Result<()> {
    let dir = global.profile_dir()?;
    let api = api(global, &dir)?;
    let password = password::read(&args.password, false)?;
    let profile = account::login(&api, &dir, &args.email, &password, args.totp.as_deref()).await?;
    say!("Logged in as {} on {}.", profile.email, api.base());
    Ok(())
}

async fn logout(global: &Global, args: LogoutArgs) -> anyhow::Result<()> {
    let session = global.session()?;
    account::logout(&session, args.everywhere).await?;
    if args.everywhere {
        say!("Logged out everywhere; the keys on this machine are deleted.");
    } else {
        say!("Logged out; the keys on this machine are deleted.");
    }
    Ok(())
}

async fn whoami(global: &Global, args: WhoamiArgs) -> anyhow::Result<()> {
    let session = global.session()?;
    let who = account::whoami(&session).await?;
    if args.json {
        output::print_json(&json!({
            "email": who.me.email,
            "user_id": who.me.user_id,
            "session_id": who.me.session_id,
            "server": session.api.base(),
            "age_recipient": who.me.age_recipient,
            "signing_key": who.me.signing_key,
            "fingerprint": who.fingerprint,
            "keys_match": who.keys_match,
        }))?;
    } else {
        say!("Email:        {}", who.me.email);
        say!("User ID:      {}", who.me.user_id);
        say!("Session:      {}", who.me.session_id);
        say!("Server:       {}", session.api.base());
        say!("Fingerprint:  {}", who.fingerprint);
        say!("Age key:      {}", who.me.age_recipient);
    }
    if !who.keys_match {
        bail!("the server's record of your public keys differs from the keys on this machine; do not pair or share cameras until this is explained");
    }
    Ok(())
}

fn export_identity(global: &Global, args: ExportArgs) -> anyhow::Result<()> {
    let session = global.session()?;
    account::export_identity(&session.keys, &args.out, args.force)?;
    say!(
        "Wrote your age identity to {} (readable by you only). Anyone holding it can read your cameras.",
        args.out.display()
    );
    Ok(())
}
