//! `closedcircuit account …`: sign-up, login, logout, who am I, exporting the age
//! identity for auditing with the standard `age` tool, sessions, two-factor login,
//! step-up and security settings.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use cc_client::account;
use cc_client::api::Api;
use cc_client::profile::resolve_server;
use cc_core::api::{SecuritySettings, TotpCode};
use cc_core::SessionId;
use clap::{Subcommand, ValueEnum};
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
  closedcircuit account sessions
  closedcircuit account 2fa enable
  closedcircuit account security --require-step-up on

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
    /// List your account's sessions, or end one
    #[command(
        after_help = "Examples:\n  closedcircuit account sessions\n  closedcircuit account sessions --json\n  closedcircuit account sessions revoke 0190c6d2-…"
    )]
    Sessions(SessionsArgs),
    /// Two-factor login with an authenticator app
    #[command(
        name = "2fa",
        after_help = "Example:\n  closedcircuit account 2fa enable"
    )]
    TwoFactor(TwoFactorArgs),
    /// Verify again on this session (password or authenticator code) so video plays
    #[command(
        after_help = "Examples:\n  closedcircuit account step-up                (asks for the password)\n  closedcircuit account step-up --totp 123456"
    )]
    StepUp(StepUpArgs),
    /// Show or change security settings
    #[command(
        after_help = "Examples:\n  closedcircuit account security\n  closedcircuit account security --require-step-up on"
    )]
    Security(SecurityArgs),
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct SessionsArgs {
    #[command(subcommand)]
    command: Option<SessionsCommand>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum SessionsCommand {
    /// End one session (log that device out)
    #[command(after_help = "Example:\n  closedcircuit account sessions revoke 0190c6d2-…")]
    Revoke {
        /// The session's ID, from `closedcircuit account sessions`
        session_id: SessionId,
    },
}

#[derive(clap::Args)]
struct TwoFactorArgs {
    #[command(subcommand)]
    command: TwoFactorCommand,
}

#[derive(Subcommand)]
enum TwoFactorCommand {
    /// Turn on two-factor login: add the secret to your app, then confirm with a code
    #[command(
        after_help = "Examples:\n  closedcircuit account 2fa enable\n  closedcircuit account 2fa enable --code 123456   (after adding the secret from an earlier run)"
    )]
    Enable(EnableArgs),
}

#[derive(clap::Args)]
struct EnableArgs {
    /// The authenticator's current code, to confirm a secret an earlier run showed
    /// (without it, a new secret is made and the code asked for on the terminal)
    #[arg(long, value_name = "CODE")]
    code: Option<String>,
}

#[derive(clap::Args)]
struct StepUpArgs {
    /// Use this authenticator code instead of the password
    #[arg(long, value_name = "CODE")]
    totp: Option<String>,
    #[command(flatten)]
    password: PasswordArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(clap::Args)]
struct SecurityArgs {
    /// Require a fresh password or authenticator check on a session before video plays
    #[arg(long, value_enum, value_name = "on|off")]
    require_step_up: Option<OnOff>,
    /// Print JSON
    #[arg(long)]
    json: bool,
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

/// Runs an `account` subcommand.
pub async fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    match args.command {
        AccountCommand::Signup(args) => signup(global, args).await,
        AccountCommand::Login(args) => login(global, args).await,
        AccountCommand::Logout(args) => logout(global, args).await,
        AccountCommand::Whoami(args) => whoami(global, args).await,
        AccountCommand::ExportIdentity(args) => export_identity(global, args),
        AccountCommand::Sessions(args) => sessions(global, args).await,
        AccountCommand::TwoFactor(args) => match args.command {
            TwoFactorCommand::Enable(args) => enable_2fa(global, args).await,
        },
        AccountCommand::StepUp(args) => step_up(global, args).await,
        AccountCommand::Security(args) => security(global, args).await,
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

async fn sessions(global: &Global, args: SessionsArgs) -> anyhow::Result<()> {
    let session = global.session()?;
    if let Some(SessionsCommand::Revoke { session_id }) = args.command {
        session.api.revoke_session(session_id).await?;
        if session_id == session.profile.session_id {
            session.dir.forget()?;
            say!("Ended session {session_id}, this one; the keys on this machine are deleted.");
        } else {
            say!("Ended session {session_id}.");
        }
        return Ok(());
    }
    let list = session.api.sessions().await?;
    if args.json {
        return output::print_json(&list);
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            vec![
                format!("{}{}", s.session_id, if s.current { " *" } else { "" }),
                s.client.clone(),
                s.ip.clone(),
                output::local_time(s.created_at),
                output::local_time(s.last_seen_at),
                output::local_time(s.expires_at),
            ]
        })
        .collect();
    output::print_table(
        &["SESSION", "CLIENT", "IP", "CREATED", "LAST SEEN", "EXPIRES"],
        &rows,
    );
    say!("* this session. End another with `closedcircuit account sessions revoke SESSION_ID`.");
    Ok(())
}

async fn enable_2fa(global: &Global, args: EnableArgs) -> anyhow::Result<()> {
    let session = global.session()?;
    let code = match args.code {
        Some(code) => code,
        None => {
            let setup = session.api.totp_setup().await?;
            say!("Add this account to your authenticator app: scan the code, or type the secret.");
            output::print_qr(&setup.otpauth_url);
            say!("Secret: {}", setup.secret);
            prompt_code()?
        }
    };
    let codes = session
        .api
        .totp_enable(&TotpCode {
            code: code.trim().to_owned(),
        })
        .await?;
    say!("Two-factor login is on. Logging in now also needs a code from your app.");
    say!();
    say!("Recovery codes (each works once in place of a code):");
    for code in &codes.codes {
        say!("  {code}");
    }
    say!();
    say!("WARNING: these codes are shown only this once. Keep them somewhere safe.");
    Ok(())
}

/// Asks for the authenticator's code on the terminal.
fn prompt_code() -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!("no terminal to ask for the code; add the secret above to your authenticator app, then run again with --code CODE");
    }
    eprint!("Code from your authenticator app: ");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the code")?;
    let code = line.trim().to_owned();
    if code.is_empty() {
        bail!("no code given; two-factor login is not on");
    }
    Ok(code)
}

async fn step_up(global: &Global, args: StepUpArgs) -> anyhow::Result<()> {
    let session = global.session()?;
    match args.totp.as_deref() {
        Some(code) => account::step_up(&session, None, Some(code)).await?,
        None => {
            let password = password::read(&args.password, false)?;
            account::step_up(&session, Some(&password), None).await?;
        }
    }
    say!("Verified again; video plays on this session.");
    Ok(())
}

async fn security(global: &Global, args: SecurityArgs) -> anyhow::Result<()> {
    let session = global.session()?;
    let settings = match args.require_step_up {
        Some(choice) => {
            let current = session.api.security().await?;
            session
                .api
                .set_security(&SecuritySettings {
                    require_step_up: matches!(choice, OnOff::On),
                    totp_enabled: current.totp_enabled,
                })
                .await?
        }
        None => session.api.security().await?,
    };
    if args.json {
        return output::print_json(&settings);
    }
    let on_off = |on: bool| if on { "on" } else { "off" };
    say!(
        "Step-up before video:  {}",
        on_off(settings.require_step_up)
    );
    say!("Two-factor login:      {}", on_off(settings.totp_enabled));
    Ok(())
}
