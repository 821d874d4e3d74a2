//! `closedcircuit camera agent`: runs a camera. It pairs once with a claim code (or
//! resumes from its state directory), then records events from a synthetic source or
//! files, encrypts them to its content recipient, signs them and uploads them. Beside
//! that it holds its device stream, and streams live view while a member watches.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use cc_client::agent::{self, Agent, AgentState, Pairing, StateDir, Upload};
use cc_client::live_camera::{self, LiveNotice};
use cc_client::media::Source;
use cc_core::EventId;

use super::Global;
use crate::output::say;

const EXAMPLES: &str = "\
The state directory keeps the device key and the pairing (never a key that decrypts:
a camera can only encrypt). With it, the agent reconnects without a new claim, to
the server it paired with unless --server says otherwise.

While a member watches (`closedcircuit camera live`, or Live in the web app), the
agent sends two encrypted frames a second; the server relays them and keeps none.
--no-live turns live view off for this camera.

Examples:
  closedcircuit camera agent --claim CC1-… --state-dir ./front-door --server http://192.168.1.10:8080
  closedcircuit camera agent --state-dir ./front-door --events 3 --interval 1
  closedcircuit camera agent --state-dir ./porch --source clip1.mp4 snapshot.jpg";

/// Give up when this many events in a row were refused by the server.
const MAX_REJECTED_IN_A_ROW: u32 = 10;

#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Claim code from `closedcircuit camera claim` (needed only the first time)
    #[arg(long, env = "CLOSEDCIRCUIT_CLAIM", value_name = "CODE")]
    claim: Option<String>,
    /// Where the camera keeps its device key and pairing
    #[arg(long, env = "CLOSEDCIRCUIT_STATE_DIR", value_name = "DIR")]
    state_dir: PathBuf,
    /// `synthetic` (generated media with a known marker) or image/video files to cycle through
    #[arg(long, num_args = 1.., default_value = "synthetic", value_name = "synthetic|FILE")]
    source: Vec<String>,
    /// Stop after this many acknowledged events [default: run until Ctrl-C]
    #[arg(long, value_name = "N")]
    events: Option<u64>,
    /// Seconds between events
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    interval: f64,
    /// Never stream live view, even when a member asks
    #[arg(long)]
    no_live: bool,
}

pub async fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let interval = Duration::try_from_secs_f64(args.interval)
        .context("--interval must be a non-negative number of seconds")?;
    tokio::select! {
        result = record(global, &args, interval) => result,
        signal = tokio::signal::ctrl_c() => {
            signal.context("cannot listen for Ctrl-C")?;
            eprintln!("Stopped.");
            Ok(())
        }
    }
}

async fn record(global: &Global, args: &Args, interval: Duration) -> anyhow::Result<()> {
    let source = source(&args.source).await?;
    let dir = StateDir::new(&args.state_dir);
    let (mut state, device, pairing) = agent::pair_or_resume(
        &dir,
        args.claim.as_deref(),
        global.server.as_deref(),
        || say!("waiting for the owner to approve…"),
    )
    .await?;
    match pairing {
        Pairing::Paired => say!("Paired as camera {}", state.camera_id),
        Pairing::Resumed => {
            if args.claim.is_some() {
                eprintln!("note: this camera is already paired; the claim code is not needed");
            }
            say!("Resuming as camera {} (already paired)", state.camera_id);
        }
    }
    let mut live_state = state.clone();
    let camera = Agent::connect(&dir, &mut state, device.clone()).await?;
    say!(
        "Connected to {} as camera {}",
        state.server,
        camera.camera_id()
    );
    if args.no_live {
        return upload_events(args, interval, source, camera, state).await;
    }
    let mut live_camera = Agent::connect(&dir, &mut live_state, device).await?;
    let live_source = self::source(&args.source).await?;
    tokio::select! {
        result = upload_events(args, interval, source, camera, state) => result,
        result = live_camera::run(&mut live_camera, &mut live_state, live_source, report_live) => {
            result.context("live view")
        }
    }
}

/// Tells the operator what the live side is doing.
fn report_live(notice: LiveNotice) {
    match notice {
        LiveNotice::Listening => say!("Waiting for viewers (live view on request)"),
        LiveNotice::Streaming => say!("Live view requested: streaming"),
        LiveNotice::Stopped { sent } => say!("Live view ended after {sent} frames"),
        LiveNotice::Rotated { epoch } => {
            say!("The owner rotated this camera's key; live view now uses epoch {epoch}")
        }
        LiveNotice::SegmentFailed(e) => eprintln!("a live frame was not delivered: {e}"),
        LiveNotice::Disconnected { reason, retry_in } => eprintln!(
            "device stream: {reason}; reconnecting in {:.1}s",
            retry_in.as_secs_f64()
        ),
    }
}

/// Records, seals and uploads events until `--events` are acknowledged (or forever).
async fn upload_events(
    args: &Args,
    interval: Duration,
    mut source: Source,
    mut camera: Agent,
    mut state: AgentState,
) -> anyhow::Result<()> {
    let mut acked = 0u64;
    let mut rejected_in_a_row = 0u32;
    for n in 0u64.. {
        if args.events.is_some_and(|max| acked >= max) {
            break;
        }
        if n > 0 {
            tokio::time::sleep(interval).await;
        }
        let event_id = EventId::new_v7();
        let kind = agent::kind_for(n);
        let media = source.next(event_id).await?;
        let sealed = camera.seal(event_id, kind, &media)?;
        let outcome = match camera.upload(event_id, &sealed).await {
            Err(e) if e.problem_code() == Some("stale_epoch") => {
                eprintln!("The owner rotated this camera's key; fetching the new certificate.");
                camera.refresh(&mut state).await?;
                let resealed = camera.seal(event_id, kind, &media)?;
                camera.upload(event_id, &resealed).await?
            }
            other => other?,
        };
        match outcome {
            Upload::Acked(_) => {
                acked += 1;
                rejected_in_a_row = 0;
                say!("event {event_id} ({kind}) acknowledged");
            }
            Upload::Rejected(e) => {
                rejected_in_a_row += 1;
                eprintln!("event {event_id} ({kind}) rejected: {e}; skipping it");
                if rejected_in_a_row >= MAX_REJECTED_IN_A_ROW {
                    bail!("the server rejected {rejected_in_a_row} events in a row; giving up");
                }
            }
        }
    }
    Ok(())
}

async fn source(args: &[String]) -> anyhow::Result<Source> {
    match args {
        [only] if only == "synthetic" => Ok(Source::synthetic()),
        files if files.iter().any(|f| f == "synthetic") => {
            bail!("--source takes either `synthetic` or a list of files, not both")
        }
        files => Ok(Source::files(files.iter().map(PathBuf::from).collect()).await?),
    }
}
