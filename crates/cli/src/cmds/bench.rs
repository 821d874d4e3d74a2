//! `closedcircuit bench`: the project's figures against a ceiling measured in the same
//! run on the same machine. Results are goals to report, not pass/fail tests.

use clap::Subcommand;

const EXAMPLES: &str = "\
Examples:
  cargo run --release -- bench ingest
  closedcircuit bench ingest --events 400 --cameras 32 --json
  cargo run --release -- bench download
  cargo run --release -- bench reconnect --cameras 15000

Run release builds: a debug build measures the compiler, not the design.";

#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Durable event ingest (64 KiB thumbnail + 1 MiB clip) vs fsync + one WAL insert per event
    Ingest {
        /// Events to upload
        #[arg(long, default_value_t = 200)]
        events: usize,
        /// Cameras uploading at once
        #[arg(long, default_value_t = 16)]
        cameras: usize,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Clip download through the session check, the door, the access log and ranges vs a static file server
    Download {
        /// Distinct clips (~1 MiB each) to upload first
        #[arg(long, default_value_t = 32)]
        clips: usize,
        /// Downloads to time, half of them ranged
        #[arg(long, default_value_t = 2000)]
        requests: usize,
        /// Downloads in flight at once
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Cameras reconnecting at once to a server in its own process, then holding their streams idle
    Reconnect {
        /// Cameras (simulated in this process, so never more than its open-file limit allows)
        #[arg(long, default_value_t = 15_000)]
        cameras: usize,
        /// Viewers timing requests before and during the storm
        #[arg(long, default_value_t = 20)]
        viewers: usize,
        /// Running nodes (comma-separated) instead of a server this command starts
        #[arg(long, value_delimiter = ',')]
        server: Vec<String>,
        /// The handshake rate the nodes admit (the default server's), for the ideal
        #[arg(long, default_value_t = cc_server::Limits::default().handshakes_per_second)]
        handshakes_per_second: u32,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        BenchCommand::Ingest {
            events,
            cameras,
            json,
        } => {
            let report = cc_storm::bench::ingest(events, cameras).await?;
            print_report(&report, json, &report.table())?;
        }
        BenchCommand::Download {
            clips,
            requests,
            concurrency,
            json,
        } => {
            let report = cc_storm::download::download(clips, requests, concurrency).await?;
            print_report(&report, json, &report.table())?;
        }
        BenchCommand::Reconnect {
            cameras,
            viewers,
            server,
            handshakes_per_second,
            json,
        } => {
            let options = cc_storm::reconnect::ReconnectOptions {
                cameras,
                viewers,
                servers: server,
                exe: std::env::current_exe()?,
                handshakes_per_second,
            };
            let report = cc_storm::reconnect::reconnect(options).await?;
            print_report(&report, json, &report.table())?;
        }
    }
    Ok(())
}

fn print_report(report: &impl serde::Serialize, json: bool, table: &str) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{table}");
    }
    Ok(())
}
