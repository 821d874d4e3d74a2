//! `closedcircuit camera …`: pairing a camera with a claim code, listing, renaming and
//! removing cameras, watching one live, and (`camera agent`) running a camera.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::bail;
use cc_client::cameras::{self, CameraView};
use cc_client::claims::{self, ClaimProgress};
use cc_client::keyring::Keyring;
use cc_client::sharing;
use cc_client::Session;
use cc_core::keys::fingerprint;
use cc_core::CameraId;
use clap::Subcommand;
use serde_json::json;

use super::{agent, live, transfer, Global};
use crate::output::{self, say};

const EXAMPLES: &str = "\
Examples:
  closedcircuit camera claim --name 'Front door'
  closedcircuit camera list
  closedcircuit camera rename 0190c6d2-… 'Back door'
  closedcircuit camera live 0190c6d2-…
  closedcircuit camera remove 0190c6d2-… --yes
  closedcircuit camera transfer 0190c6d2-… --to new-owner@example.org
  closedcircuit camera agent --claim CC1-… --state-dir ./front-door --source synthetic";

const CLAIM_HELP: &str = "\
Pairing never trusts the server: the claim code carries a secret and your key's
fingerprint. The camera proves it holds the secret, and checks that the certificate it
gets back is signed by you.

Examples:
  closedcircuit camera claim --name 'Front door'
  closedcircuit camera claim --name Garage --no-wait   (finish later with `camera list`)";

#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    #[command(subcommand)]
    command: CameraCommand,
}

#[derive(Subcommand)]
enum CameraCommand {
    /// Make a claim code for a new camera and wait for it to pair
    #[command(after_help = CLAIM_HELP)]
    Claim(ClaimArgs),
    /// List your cameras (finishing pairings started with --no-wait, and moving cameras
    /// someone left to a new content key)
    #[command(
        after_help = "Examples:\n  closedcircuit camera list\n  closedcircuit camera list --json"
    )]
    List(ListArgs),
    /// Give a camera a new name (encrypted: the server cannot read it)
    #[command(after_help = "Example:\n  closedcircuit camera rename 0190c6d2-… 'Back door'")]
    Rename(RenameArgs),
    /// Keep a camera's events this many days (`off`: until removed); older ones are deleted
    #[command(
        after_help = "Examples:\n  closedcircuit camera retention CAMERA_ID 30\n  closedcircuit camera retention CAMERA_ID off"
    )]
    Retention(RetentionArgs),
    /// Remove a camera and delete all its events
    #[command(
        after_help = "Examples:\n  closedcircuit camera remove 0190c6d2-…\n  closedcircuit camera remove 0190c6d2-… --yes   (no question asked; required without a terminal)"
    )]
    Remove(RemoveArgs),
    /// Give a camera and its recordings to another account (owner only)
    #[command(after_help = transfer::HELP)]
    Transfer(transfer::Args),
    /// Watch a camera live (frames verified and decrypted here)
    #[command(after_help = live::HELP)]
    Live(live::Args),
    /// Run a camera: pair with a claim code, then upload signed, encrypted events and
    /// stream live view on request
    Agent(agent::Args),
}

#[derive(clap::Args)]
struct ClaimArgs {
    /// The camera's name (encrypted before it leaves this machine)
    #[arg(long)]
    name: String,
    /// Print the code and return; `camera list` completes the pairing later
    #[arg(long)]
    no_wait: bool,
}

#[derive(clap::Args)]
struct ListArgs {
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct RenameArgs {
    /// The camera's ID
    id: CameraId,
    /// Its new name
    name: String,
}

#[derive(clap::Args)]
struct RetentionArgs {
    /// The camera's ID
    id: CameraId,
    /// Days to keep events, or `off`
    days: String,
}

#[derive(clap::Args)]
struct RemoveArgs {
    /// The camera's ID
    id: CameraId,
    /// Do not ask for confirmation
    #[arg(long)]
    yes: bool,
}

pub async fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    match args.command {
        CameraCommand::Claim(args) => claim(global, args).await,
        CameraCommand::List(args) => list(global, args).await,
        CameraCommand::Rename(args) => rename(global, args).await,
        CameraCommand::Remove(args) => remove(global, args).await,
        CameraCommand::Retention(args) => retention(global, args).await,
        CameraCommand::Transfer(args) => transfer::run(global, args).await,
        CameraCommand::Live(args) => live::run(global, args).await,
        CameraCommand::Agent(args) => agent::run(global, args).await,
    }
}

async fn claim(global: &Global, args: ClaimArgs) -> anyhow::Result<()> {
    let session = global.session()?;
    let started = claims::start(&session, &args.name).await?;
    let code = started.code.text();
    say!("Claim code: {code}");
    output::print_qr(&code);
    say!(
        "Run on the camera: closedcircuit camera agent --claim {code} --state-dir DIR --server {}",
        session.api.base()
    );
    say!(
        "The code is valid until {}. Your key fingerprint, which the camera checks: {}",
        output::local_time(started.expires_at),
        fingerprint(&session.keys.verifying_key())
    );
    if args.no_wait {
        say!("Run `closedcircuit camera list` after the camera has presented the code to finish pairing.");
        return Ok(());
    }
    let spinner = output::spinner("Waiting for the camera to present the code");
    let result = wait_for_pairing(&session, started.claim_id).await;
    if let Some(spinner) = spinner {
        spinner.finish_and_clear();
    }
    let camera = result?;
    say!(
        "Paired camera {} ({})",
        claims::check_name(&args.name)?,
        camera.camera_id
    );
    Ok(())
}

async fn wait_for_pairing(
    session: &Session,
    claim: cc_core::ClaimId,
) -> anyhow::Result<cc_core::api::CameraInfo> {
    loop {
        match claims::poll(session, claim).await {
            Ok(ClaimProgress::Paired(camera)) => return Ok(*camera),
            Ok(ClaimProgress::Gone) => {
                bail!("the claim expired or was withdrawn before a camera presented it; make a new one")
            }
            Ok(ClaimProgress::Waiting) => {}
            Err(e) if e.is_transient() => tracing::warn!("still waiting: {e}"),
            Err(e) => return Err(e.into()),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn list(global: &Global, args: ListArgs) -> anyhow::Result<()> {
    let session = global.session()?;
    let tidied = claims::tidy(&session).await?;
    for (name, camera) in &tidied.paired {
        let line = format!("Paired camera {name} ({})", camera.camera_id);
        if args.json {
            eprintln!("{line}");
        } else {
            say!("{line}");
        }
    }
    for (claim, e) in &tidied.refused {
        eprintln!("warning: claim {claim} withdrawn: {e}");
    }
    for rotation in sharing::rotate_pending(&session).await? {
        match rotation.result {
            Ok(epoch) => eprintln!(
                "note: someone left camera {} since its key last changed; it now uses a new content key (epoch {epoch}) they never get",
                rotation.camera
            ),
            Err(e) => eprintln!(
                "warning: camera {} needs a new content key because someone left it, but the rotation failed: {e}",
                rotation.camera
            ),
        }
    }
    let views = cameras::list(&session, &mut Keyring::new(), None).await?;
    if args.json {
        let items: Vec<_> = views.iter().map(camera_json).collect();
        output::print_json(&items)?;
    } else if views.is_empty() {
        say!("No cameras yet. Pair one with `closedcircuit camera claim --name NAME`.");
    } else {
        let rows: Vec<Vec<String>> = views
            .iter()
            .map(|v| {
                vec![
                    v.display_name(),
                    v.info.camera_id.to_string(),
                    role(v),
                    if v.info.online { "yes" } else { "no" }.to_owned(),
                    v.info
                        .last_event_at
                        .map(output::local_time)
                        .unwrap_or_else(|| "-".to_owned()),
                ]
            })
            .collect();
        output::print_table(&["NAME", "ID", "ROLE", "ONLINE", "LAST EVENT"], &rows);
    }
    for view in &views {
        if let Err(e) = &view.certificate {
            eprintln!("warning: {e}");
        }
    }
    if !tidied.refused.is_empty() {
        bail!("{} pairing attempt(s) were refused", tidied.refused.len());
    }
    Ok(())
}

fn role(view: &CameraView) -> String {
    serde_json::to_value(view.info.role)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn camera_json(view: &CameraView) -> serde_json::Value {
    json!({
        "camera_id": view.info.camera_id,
        "name": view.name.as_ref().ok(),
        "role": view.info.role,
        "online": view.info.online,
        "last_event_at": view.info.last_event_at,
        "paired_at": view.info.paired_at,
        "epoch": view.info.epoch,
        "verified": view.certificate.is_ok(),
        "error": view.certificate.as_ref().err().or(view.name.as_ref().err()),
    })
}

async fn retention(global: &Global, args: RetentionArgs) -> anyhow::Result<()> {
    let days = match args.days.as_str() {
        "off" => None,
        n => Some(n.parse::<u32>().ok().filter(|d| *d > 0).ok_or_else(|| {
            anyhow::anyhow!("expected a number of days (1 or more) or `off`, not {n:?}")
        })?),
    };
    global.session()?.api.set_retention(args.id, days).await?;
    match days {
        Some(d) => say!(
            "Camera {} keeps events {d} days; older ones are deleted within a minute",
            args.id
        ),
        None => say!("Camera {} keeps events until it is removed", args.id),
    }
    Ok(())
}

async fn rename(global: &Global, args: RenameArgs) -> anyhow::Result<()> {
    let session = global.session()?;
    let name = claims::check_name(&args.name)?;
    cameras::rename(&session, args.id, &name).await?;
    say!("Renamed camera {} to {name}", args.id);
    Ok(())
}

async fn remove(global: &Global, args: RemoveArgs) -> anyhow::Result<()> {
    let session = global.session()?;
    let view = cameras::list(&session, &mut Keyring::new(), Some(args.id))
        .await?
        .into_iter()
        .next();
    let name = view
        .as_ref()
        .map(CameraView::display_name)
        .unwrap_or_default();
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            bail!("removing a camera deletes all its events; pass --yes to confirm");
        }
        let question = format!(
            "Remove camera {name} ({}) and delete all its events?",
            args.id
        );
        if !output::confirm(&question)? {
            bail!("not removed");
        }
    }
    cameras::remove(&session, args.id).await?;
    say!("Removed camera {name} ({}) and all its events", args.id);
    Ok(())
}
