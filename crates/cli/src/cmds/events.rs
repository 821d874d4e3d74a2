//! `closedcircuit events …`: listing, fetching and watching events. Each event is
//! verified against its camera's owner-signed certificate before it is shown; one that
//! does not verify is reported as such, never displayed.

use std::path::PathBuf;

use anyhow::{bail, Context};
use cc_client::events::{self, EventView, ListOptions};
use cc_client::watch::{WatchEvent, Watcher};
use cc_core::manifest::EventKind;
use cc_core::{CameraId, EventId};
use clap::Subcommand;
use serde_json::json;

use super::Global;
use crate::output::{self, say};
use crate::timespec::parse_since;

const EXAMPLES: &str = "\
Examples:
  closedcircuit events list --since 2h --kind person
  closedcircuit events get 0190c6d9-… --out ./events
  closedcircuit events get 0190c6d9-… --raw --out ./audit
  closedcircuit events watch --json";

#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    #[command(subcommand)]
    command: EventsCommand,
}

#[derive(Subcommand)]
enum EventsCommand {
    /// List recent events of your cameras, newest first, each verified
    #[command(
        after_help = "Examples:\n  closedcircuit events list\n  closedcircuit events list --camera 0190c6d2-… --since 3d --limit 100\n  closedcircuit events list --since 2024-05-01T08:00:00Z --json\n\nAn event that does not verify is listed marked NOT VERIFIED (\"verified\": false in JSON),\nwith the reason on stderr."
    )]
    List(ListArgs),
    /// Download, verify and decrypt one event's thumbnail and clip
    #[command(
        after_help = "Examples:\n  closedcircuit events get 0190c6d9-… --out ./events\n      writes ./events/<id>.thumb.<ext> and ./events/<id>.clip.<ext>\n  closedcircuit events get 0190c6d9-… --raw --out ./audit\n      writes ./audit/<id>/{thumb.age,clip.age,grant.age,manifest.json,certificate.json}\n      (see `account export-identity --help` to decrypt them with the age tool)\n\nNothing is written unless the event verifies."
    )]
    Get(GetArgs),
    /// Follow new events live, one line each, verified
    #[command(
        after_help = "Examples:\n  closedcircuit events watch\n  closedcircuit events watch --camera 0190c6d2-… --json   (one JSON object per line)"
    )]
    Watch(WatchArgs),
}

#[derive(clap::Args)]
struct ListArgs {
    /// Only this camera
    #[arg(long, value_name = "CAMERA_ID")]
    camera: Option<CameraId>,
    /// Only events of this kind: motion, person or sound
    #[arg(long)]
    kind: Option<EventKind>,
    /// Only events since this time: RFC 3339, or a span back from now like 30m, 2h, 3d, 1w
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// How many events at most
    #[arg(long, default_value_t = 20, value_name = "N")]
    limit: u32,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct GetArgs {
    /// The event's ID
    event: EventId,
    /// The camera the event belongs to [default: look through all your cameras]
    #[arg(long, value_name = "CAMERA_ID")]
    camera: Option<CameraId>,
    /// Directory to write into
    #[arg(long, default_value = ".", value_name = "DIR")]
    out: PathBuf,
    /// Write the files as stored (still encrypted) with the manifest, certificate and
    /// your grant, for auditing with the standard `age` tool
    #[arg(long)]
    raw: bool,
}

#[derive(clap::Args)]
struct WatchArgs {
    /// Only this camera
    #[arg(long, value_name = "CAMERA_ID")]
    camera: Option<CameraId>,
    /// Print one JSON object per line
    #[arg(long)]
    json: bool,
}

pub async fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    match args.command {
        EventsCommand::List(args) => list(global, args).await,
        EventsCommand::Get(args) => get(global, args).await,
        EventsCommand::Watch(args) => watch(global, args).await,
    }
}

async fn list(global: &Global, args: ListArgs) -> anyhow::Result<()> {
    if args.limit == 0 {
        bail!("--limit must be at least 1");
    }
    let since = args
        .since
        .as_deref()
        .map(|text| parse_since(text, chrono::Utc::now()))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let session = global.session()?;
    let options = ListOptions {
        camera: args.camera,
        kind: args.kind,
        since,
        limit: args.limit,
    };
    let views = events::list(&session, &options).await?;
    if args.json {
        let items: Vec<_> = views.iter().map(event_json).collect();
        output::print_json(&items)?;
    } else if views.is_empty() {
        say!("No events.");
    } else {
        let rows: Vec<Vec<String>> = views.iter().map(event_row).collect();
        output::print_table(
            &["TIME", "CAMERA", "KIND", "EVENT", "CLIP", "VERIFIED"],
            &rows,
        );
    }
    let failed: Vec<&EventView> = views.iter().filter(|v| v.verified.is_err()).collect();
    for view in &failed {
        if let Err(reason) = &view.verified {
            eprintln!(
                "warning: event {} from camera {} does not verify: {reason}",
                view.info.event_id, view.info.camera_id
            );
        }
    }
    Ok(())
}

fn event_row(view: &EventView) -> Vec<String> {
    vec![
        output::local_time(view.info.started_at),
        view.camera_name.clone(),
        view.info.kind.to_string(),
        view.info.event_id.to_string(),
        output::size(view.info.clip_size),
        if view.verified.is_ok() {
            "yes".to_owned()
        } else {
            "NOT VERIFIED".to_owned()
        },
    ]
}

fn event_json(view: &EventView) -> serde_json::Value {
    json!({
        "event_id": view.info.event_id,
        "camera_id": view.info.camera_id,
        "camera_name": view.camera_name,
        "kind": view.info.kind,
        "started_at": view.info.started_at,
        "duration_ms": view.info.duration_ms,
        "epoch": view.info.epoch,
        "thumb_size": view.info.thumb_size,
        "clip_size": view.info.clip_size,
        "received_at": view.info.received_at,
        "verified": view.verified.is_ok(),
        "error": view.verified.as_ref().err(),
    })
}

async fn get(global: &Global, args: GetArgs) -> anyhow::Result<()> {
    let session = global.session()?;
    if args.raw {
        let paths = events::export_raw(&session, args.camera, args.event, &args.out).await?;
        say!("Event {} verified; wrote it as stored:", args.event);
        for path in paths {
            say!("  {}", path.display());
        }
        return Ok(());
    }
    let opened = events::open(&session, args.camera, args.event).await?;
    let paths = events::write_opened(&args.out, &opened)
        .with_context(|| format!("cannot save event {}", args.event))?;
    say!(
        "Event {} ({}) from camera {} at {}, verified and decrypted:",
        opened.manifest.event_id,
        opened.manifest.kind,
        opened.camera.display_name(),
        output::local_time(opened.manifest.started_at)
    );
    for path in paths {
        say!("  {}", path.display());
    }
    Ok(())
}

async fn watch(global: &Global, args: WatchArgs) -> anyhow::Result<()> {
    let session = global.session()?;
    let mut watcher = Watcher::new(&session, args.camera);
    let mut announced = false;
    loop {
        let next = tokio::select! {
            next = watcher.next() => next?,
            signal = tokio::signal::ctrl_c() => {
                signal.context("cannot listen for Ctrl-C")?;
                return Ok(());
            }
        };
        match next {
            WatchEvent::Connected if !announced => {
                announced = true;
                eprintln!("Watching for new events (Ctrl-C to stop)…");
            }
            WatchEvent::Connected => {
                eprintln!("Reconnected; events during the gap are in `closedcircuit events list`.");
            }
            WatchEvent::Event(view) => {
                if !print_watched(&view, args.json)? {
                    return Ok(());
                }
            }
            WatchEvent::Lagged(missed) => {
                eprintln!(
                    "warning: {missed} event(s) were missed; see `closedcircuit events list`"
                );
            }
            WatchEvent::Malformed(why) => eprintln!("warning: {why}"),
            WatchEvent::Disconnected { reason, retry_in } => eprintln!(
                "Disconnected ({reason}); reconnecting in {:.1}s",
                retry_in.as_secs_f64()
            ),
        }
    }
}

/// Prints one watched event; false when stdout is closed, which ends the watch.
fn print_watched(view: &EventView, json: bool) -> anyhow::Result<bool> {
    if let Err(reason) = &view.verified {
        eprintln!(
            "warning: event {} from camera {} does not verify: {reason}",
            view.info.event_id, view.info.camera_id
        );
    }
    let line = if json {
        serde_json::to_string(&event_json(view))?
    } else {
        event_row(view).join("  ")
    };
    Ok(output::write_line(format_args!("{line}")))
}
