//! `closedcircuit camera live`: watches a camera live. Every frame is verified and
//! decrypted here; the newest is written to a file an image viewer can keep open.

use std::path::PathBuf;

use anyhow::Context;
use cc_client::files;
use cc_client::live::{LiveEvent, LiveViewer};
use cc_client::media::sniff_extension;
use cc_core::CameraId;

use super::Global;
use crate::output::say;

pub const HELP: &str = "\
Opening live view asks the camera to stream; it sends two encrypted frames a second
while you watch. The server relays them without being able to open them and keeps
none; opening live view is written to the camera's access log. A frame that does not
verify (another camera's, a replay, a forgery) is reported and never written.

Examples:
  closedcircuit camera live 0190c6d2-…                      (writes live.bmp, replaced per frame)
  closedcircuit camera live 0190c6d2-… --out frames --all   (keeps every frame)
  closedcircuit camera live 0190c6d2-… --frames 10";

#[derive(clap::Args)]
pub struct Args {
    /// The camera's ID
    camera: CameraId,
    /// Where frames go: a directory (created if needed)
    #[arg(long, default_value = ".", value_name = "DIR")]
    out: PathBuf,
    /// Keep every frame as live-<N>.<ext> instead of replacing live.<ext>
    #[arg(long)]
    all: bool,
    /// Stop after this many frames [default: until Ctrl-C]
    #[arg(long, value_name = "N")]
    frames: Option<u64>,
}

pub async fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let session = global.session()?;
    let mut viewer = match LiveViewer::open(&session, args.camera).await {
        Err(e) if e.problem_code() == Some("step_up_required") => {
            anyhow::bail!("{e}\nThis account asks for verification before video: run `closedcircuit account step-up`, then try again")
        }
        other => other?,
    };
    files::create_private_dir(&args.out)?;
    say!(
        "Watching {} live; frames go to {} (Ctrl-C to stop)",
        viewer.camera_name(),
        args.out.display()
    );
    let mut shown = 0u64;
    while args.frames.is_none_or(|max| shown < max) {
        let event = tokio::select! {
            event = viewer.next() => event?,
            signal = tokio::signal::ctrl_c() => {
                signal.context("cannot listen for Ctrl-C")?;
                break;
            }
        };
        match event {
            Some(LiveEvent::Image(image)) => {
                shown += 1;
                let extension = sniff_extension(&image.bytes);
                let name = if args.all {
                    format!("live-{:06}.{extension}", image.seq)
                } else {
                    format!("live.{extension}")
                };
                let path = args.out.join(name);
                files::write_private(&path, &image.bytes)?;
                let age = chrono::Utc::now() - image.captured_at;
                say!(
                    "frame {} ({} KiB, {:.1} s old) → {}",
                    image.seq,
                    image.bytes.len().div_ceil(1024),
                    age.num_milliseconds() as f64 / 1000.0,
                    path.display()
                );
            }
            Some(LiveEvent::Rejected(reason)) => {
                eprintln!("a live frame did not verify and was NOT shown: {reason}")
            }
            Some(LiveEvent::Lagged(missed)) => eprintln!("skipped {missed} frames to catch up"),
            Some(LiveEvent::Silent(after)) => eprintln!(
                "no frame for {}s: the camera is offline or not streaming; still waiting",
                after.as_secs()
            ),
            None => {
                say!("Live view ended by the server (the camera or your access to it is gone)");
                break;
            }
        }
    }
    say!("{shown} frames");
    Ok(())
}
