//! `closedcircuit share …`: inviting people to a camera, accepting invitations, listing
//! members, and removing them (which rotates the camera to a new content key).

use anyhow::{bail, Context as _};
use cc_client::sharing::{self, InviteOptions};
use cc_client::Session;
use cc_core::api::{Invitation, Role, ShareInfo, ShareStatus, TransferOffer};
use cc_core::keys::verifying_key_from_bytes;
use cc_core::CameraId;
use clap::{Subcommand, ValueEnum};
use serde_json::json;

use super::Global;
use crate::output::{self, say};
use crate::timespec::parse_until;

const EXAMPLES: &str = "\
Examples:
  closedcircuit share invite --camera 0190c6d2-… --email friend@example.org --role viewer
  closedcircuit share invite --camera 0190c6d2-… --email sitter@example.org --role viewer --expires 3d
  closedcircuit share accept
  closedcircuit share list --camera 0190c6d2-…
  closedcircuit share revoke --camera 0190c6d2-… --email friend@example.org

Keys are re-encrypted on this machine; the server never sees a camera's content key.
Compare the verification phrase with the other person (in person or on a call) before
trusting a share: it proves your clients use each other's real keys.";

#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    #[command(subcommand)]
    command: ShareCommand,
}

#[derive(Subcommand)]
enum ShareCommand {
    /// Invite someone to a camera (owner or admin)
    #[command(
        after_help = "Examples:\n  closedcircuit share invite --camera 0190c6d2-… --email friend@example.org --role viewer\n  closedcircuit share invite --camera 0190c6d2-… --email partner@example.org --role admin --history\n  closedcircuit share invite --camera 0190c6d2-… --email sitter@example.org --role viewer --expires 2024-06-01T00:00:00Z"
    )]
    Invite(InviteArgs),
    /// Accept invitations and camera transfers addressed to you (all, or one camera's)
    #[command(
        after_help = "Examples:\n  closedcircuit share accept\n  closedcircuit share accept --camera 0190c6d2-…"
    )]
    Accept(AcceptArgs),
    /// List a camera's members and pending invitations, and invitations to you
    #[command(
        after_help = "Examples:\n  closedcircuit share list\n  closedcircuit share list --camera 0190c6d2-… --json"
    )]
    List(ListArgs),
    /// Remove someone from a camera; as its owner, rotate to a new content key at once
    #[command(
        after_help = "Example:\n  closedcircuit share revoke --camera 0190c6d2-… --email friend@example.org\n\nThey lose access at once. Events from then on use a new key they never get;\ncopies they already made stay readable to them."
    )]
    Revoke(RevokeArgs),
}

/// A role to give an invitee.
#[derive(Clone, Copy, ValueEnum)]
enum InviteRole {
    /// Watch events and live notices
    Viewer,
    /// Also invite and remove people, and read the access log
    Admin,
}

impl From<InviteRole> for Role {
    fn from(role: InviteRole) -> Self {
        match role {
            InviteRole::Viewer => Role::Viewer,
            InviteRole::Admin => Role::Admin,
        }
    }
}

#[derive(clap::Args)]
struct InviteArgs {
    /// The camera's ID
    #[arg(long)]
    camera: CameraId,
    /// The invitee's account email
    #[arg(long)]
    email: String,
    /// What they may do
    #[arg(long, value_enum)]
    role: InviteRole,
    /// Also share every earlier event (all past content keys), not just from now on
    #[arg(long)]
    history: bool,
    /// When their access ends: RFC 3339, or a span from now like 2h, 3d, 1w
    #[arg(long, value_name = "TIME")]
    expires: Option<String>,
}

#[derive(clap::Args)]
struct AcceptArgs {
    /// Accept only the invitation to this camera
    #[arg(long)]
    camera: Option<CameraId>,
}

#[derive(clap::Args)]
struct ListArgs {
    /// Only this camera (default: every camera you own or administer)
    #[arg(long)]
    camera: Option<CameraId>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct RevokeArgs {
    /// The camera's ID
    #[arg(long)]
    camera: CameraId,
    /// The email of the person to remove
    #[arg(long)]
    email: String,
}

/// Runs a `share` subcommand.
pub async fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    match args.command {
        ShareCommand::Invite(args) => invite(global, args).await,
        ShareCommand::Accept(args) => accept(global, args).await,
        ShareCommand::List(args) => list(global, args).await,
        ShareCommand::Revoke(args) => revoke(global, args).await,
    }
}

async fn invite(global: &Global, args: InviteArgs) -> anyhow::Result<()> {
    let expires_at = args
        .expires
        .as_deref()
        .map(|text| parse_until(text, chrono::Utc::now()))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let session = global.session()?;
    let invitee = sharing::lookup(&session, &args.email)
        .await
        .with_context(|| format!("cannot find an account for {}", args.email))?;
    say!(
        "Verification phrase with {}: {}",
        invitee.email,
        sharing::phrase_with(&session, &invitee)
    );
    say!(
        "Compare this with {} before trusting the share.",
        invitee.email
    );
    let options = InviteOptions {
        role: args.role.into(),
        history: args.history,
        expires_at,
    };
    let epochs = sharing::invite(&session, args.camera, &invitee, &options).await?;
    let shared = if args.history {
        format!("all {} key epoch(s) of its history", epochs.len())
    } else {
        "events from now on".to_owned()
    };
    say!(
        "Invited {} to camera {} as {} ({shared}{}).",
        invitee.email,
        args.camera,
        role_name(options.role),
        expires_at
            .map(|t| format!(", until {}", output::local_time(t)))
            .unwrap_or_default()
    );
    say!("They accept with `closedcircuit share accept`.");
    Ok(())
}

async fn accept(global: &Global, args: AcceptArgs) -> anyhow::Result<()> {
    let session = global.session()?;
    let chosen: Vec<Invitation> = sharing::invitations(&session)
        .await?
        .into_iter()
        .filter(|i| args.camera.is_none_or(|c| c == i.camera_id))
        .collect();
    let offers: Vec<TransferOffer> = cc_client::transfer::offers(&session)
        .await?
        .into_iter()
        .filter(|o| args.camera.is_none_or(|c| c == o.camera_id))
        .collect();
    if chosen.is_empty() && offers.is_empty() {
        match args.camera {
            Some(camera) => bail!("you have no open invitation to camera {camera}"),
            None => {
                say!("No open invitations.");
                return Ok(());
            }
        }
    }
    super::transfer::accept_offers(&session, &offers).await?;
    for invitation in &chosen {
        say!(
            "Camera {} from {} ({}):",
            invitation.camera_id,
            invitation.inviter.email,
            role_name(invitation.role)
        );
        say!(
            "  owner {} (fingerprint {})",
            invitation.owner.email,
            owner_fingerprint(&invitation.owner.signing_key)
        );
        say!(
            "  verification phrase with {}: {}",
            invitation.inviter.email,
            sharing::phrase_with(&session, &invitation.inviter)
        );
        sharing::accept(&session, invitation).await?;
        say!(
            "  accepted; compare the phrase with {} before trusting this camera.",
            invitation.inviter.email
        );
    }
    Ok(())
}

fn owner_fingerprint(signing_key: &str) -> String {
    cc_core::b64::decode(signing_key)
        .ok()
        .and_then(|bytes| verifying_key_from_bytes(&bytes))
        .map(|key| cc_core::keys::fingerprint(&key))
        .unwrap_or_else(|| "(not a valid key)".to_owned())
}

async fn list(global: &Global, args: ListArgs) -> anyhow::Result<()> {
    let session = global.session()?;
    let cameras = match args.camera {
        Some(camera) => vec![camera],
        None => session
            .api
            .cameras()
            .await?
            .into_iter()
            .filter(|c| matches!(c.role, Role::Owner | Role::Admin))
            .map(|c| c.camera_id)
            .collect(),
    };
    let mut members = Vec::new();
    for camera in cameras {
        members.extend(sharing::shares(&session, camera).await?);
    }
    let invitations = sharing::invitations(&session).await?;
    if args.json {
        let members: Vec<_> = members.iter().map(|s| share_json(&session, s)).collect();
        let invitations: Vec<_> = invitations
            .iter()
            .map(|i| {
                json!({
                    "camera_id": i.camera_id,
                    "inviter": i.inviter.email,
                    "owner": i.owner.email,
                    "role": i.role,
                    "created_at": i.created_at,
                    "expires_at": i.expires_at,
                    "verification_phrase": sharing::phrase_with(&session, &i.inviter),
                })
            })
            .collect();
        return output::print_json(&json!({ "members": members, "invitations": invitations }));
    }
    if members.is_empty() {
        say!("No members to show.");
    } else {
        let rows: Vec<Vec<String>> = members.iter().map(|s| share_row(&session, s)).collect();
        output::print_table(
            &[
                "CAMERA",
                "EMAIL",
                "ROLE",
                "STATUS",
                "SINCE",
                "EXPIRES",
                "VERIFICATION PHRASE",
            ],
            &rows,
        );
    }
    if !invitations.is_empty() {
        say!();
        say!("Invitations to you (accept with `closedcircuit share accept`):");
        let rows: Vec<Vec<String>> = invitations
            .iter()
            .map(|i| {
                vec![
                    i.camera_id.to_string(),
                    i.inviter.email.clone(),
                    role_name(i.role).to_owned(),
                    output::local_time(i.created_at),
                    expires(i.expires_at),
                    sharing::phrase_with(&session, &i.inviter),
                ]
            })
            .collect();
        output::print_table(
            &[
                "CAMERA",
                "FROM",
                "ROLE",
                "SINCE",
                "EXPIRES",
                "VERIFICATION PHRASE",
            ],
            &rows,
        );
    }
    Ok(())
}

fn share_row(session: &Session, share: &ShareInfo) -> Vec<String> {
    vec![
        share.camera_id.to_string(),
        share.user.email.clone(),
        role_name(share.role).to_owned(),
        status_name(share.status).to_owned(),
        output::local_time(share.since),
        expires(share.expires_at),
        phrase_unless_me(session, share),
    ]
}

fn share_json(session: &Session, share: &ShareInfo) -> serde_json::Value {
    json!({
        "camera_id": share.camera_id,
        "user_id": share.user.user_id,
        "email": share.user.email,
        "role": share.role,
        "status": share.status,
        "since": share.since,
        "expires_at": share.expires_at,
        "verification_phrase": phrase_unless_me(session, share),
    })
}

fn phrase_unless_me(session: &Session, share: &ShareInfo) -> String {
    if share.user.user_id == session.profile.user_id {
        "(you)".to_owned()
    } else {
        sharing::phrase_with(session, &share.user)
    }
}

fn expires(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map(output::local_time)
        .unwrap_or_else(|| "never".to_owned())
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Owner => "owner",
        Role::Admin => "admin",
        Role::Viewer => "viewer",
    }
}

fn status_name(status: ShareStatus) -> &'static str {
    match status {
        ShareStatus::Active => "active",
        ShareStatus::Pending => "pending",
    }
}

async fn revoke(global: &Global, args: RevokeArgs) -> anyhow::Result<()> {
    let session = global.session()?;
    let revoked = sharing::revoke(&session, args.camera, &args.email).await?;
    let name = &revoked.user.email;
    match revoked.rotation {
        Some(Ok(epoch)) => {
            say!("{name} can no longer see this camera. Events from now on use a new key they never get; copies they already made stay readable to them.");
            say!("(Camera {} is now at key epoch {epoch}.)", args.camera);
        }
        Some(Err(e)) => {
            say!("{name} can no longer see this camera.");
            return Err(anyhow::Error::new(e).context(
                "moving the camera to a new key failed; `closedcircuit camera list` tries again",
            ));
        }
        None => {
            say!("{name} can no longer see this camera. Its owner's client moves it to a new key they never get the next time the owner runs `closedcircuit camera list`; copies they already made stay readable to them.");
        }
    }
    Ok(())
}
