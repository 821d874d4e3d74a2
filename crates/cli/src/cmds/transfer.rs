//! `closedcircuit camera transfer …`: handing a camera, with its recordings, to another
//! account. The recipient takes it with `closedcircuit share accept`.

use std::io::IsTerminal;

use anyhow::{bail, Context as _};
use cc_client::{sharing, transfer, Session};
use cc_core::api::TransferOffer;
use cc_core::CameraId;

use super::Global;
use crate::output::{self, say};

pub const HELP: &str = "\
Examples:
  closedcircuit camera transfer 0190c6d2-… --to new-owner@example.org
  closedcircuit camera transfer 0190c6d2-… --cancel

The new owner accepts with `closedcircuit share accept`. Their client then moves the
camera to a new content key signed by their own key; from then on you can no longer see
the camera or its events, and the camera and its other members follow the change
because you signed it. Compare the verification phrase with the new owner first.";

#[derive(clap::Args)]
pub struct Args {
    /// The camera's ID
    id: CameraId,
    /// Email of the account that becomes the owner
    #[arg(long, required_unless_present = "cancel", conflicts_with = "cancel")]
    to: Option<String>,
    /// Withdraw a pending offer instead
    #[arg(long)]
    cancel: bool,
    /// Do not ask for confirmation
    #[arg(long)]
    yes: bool,
}

pub async fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let session = global.session()?;
    let Some(email) = args.to.as_deref() else {
        transfer::cancel(&session, args.id).await?;
        say!("Withdrew the offer of camera {}.", args.id);
        return Ok(());
    };
    let to = sharing::lookup(&session, email)
        .await
        .with_context(|| format!("cannot find an account for {email}"))?;
    say!(
        "Verification phrase with {}: {}",
        to.email,
        sharing::phrase_with(&session, &to)
    );
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            bail!("transferring a camera ends your access to it; pass --yes to confirm");
        }
        let question = format!(
            "Give camera {} and all its recordings to {}? You lose access once they accept.",
            args.id, to.email
        );
        if !output::confirm(&question)? {
            bail!("not transferred");
        }
    }
    let epochs = transfer::offer(&session, args.id, &to).await?;
    say!(
        "Offered camera {} to {} with the keys to all {epochs} epoch(s) of its recordings.",
        args.id,
        to.email
    );
    say!("They accept with `closedcircuit share accept`; until then it stays yours (`--cancel` withdraws).");
    Ok(())
}

/// Takes over the offered cameras, as part of `share accept`.
pub async fn accept_offers(session: &Session, offers: &[TransferOffer]) -> anyhow::Result<()> {
    for offer in offers {
        say!(
            "Camera {} offered to you by its owner {}:",
            offer.camera_id,
            offer.from.email
        );
        say!(
            "  verification phrase with {}: {}",
            offer.from.email,
            sharing::phrase_with(session, &offer.from)
        );
        let accepted = transfer::accept(session, offer).await?;
        say!(
            "  you now own {} (content key epoch {}); {} no longer has access.",
            accepted.name,
            accepted.epoch,
            offer.from.email
        );
    }
    Ok(())
}
