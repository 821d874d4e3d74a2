//! `closedcircuit storm`: the reconnect storm with its leak oracle.

use std::time::Duration;

use anyhow::bail;
use cc_storm::{Arrival, Options};

use super::Global;

const EXAMPLES: &str = "\
Examples:
  closedcircuit storm                                   # 50 households x 4 cameras on a temporary server
  closedcircuit storm --households 500 --cameras-per 4 --lying-cache
  closedcircuit storm --server http://127.0.0.1:8080 --arrival ramp:30 --json
  closedcircuit storm --server http://10.0.0.1:8080,http://10.0.0.2:8080,http://10.0.0.3:8080

Without --server (or CLOSEDCIRCUIT_SERVER; several nodes separated by commas) it starts
its own server on a temporary data directory. With several nodes, cameras and viewers
are spread over them and move to the next one when theirs stops answering. Simulated
households use the smallest key-derivation cost clients accept, so setting up hundreds
of them takes seconds. Exits non-zero on any leak, lost event or 5xx.";

/// Bring many cameras online at once and check that no viewer ever sees another
/// household's data.
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Households (accounts)
    #[arg(long, default_value_t = 50)]
    households: usize,
    /// Cameras per household
    #[arg(long, default_value_t = 4)]
    cameras_per: usize,
    /// Viewers (logged-in sessions) per household, listing and opening events throughout
    #[arg(long, default_value_t = 1)]
    viewers_per: usize,
    /// Events each camera uploads once connected
    #[arg(long, default_value_t = 2)]
    events_per: usize,
    /// When cameras come online: `all` at once, or `ramp:SECONDS`
    #[arg(long, default_value = "all")]
    arrival: Arrival,
    /// Keep the viewers going at least this many seconds after the storm starts
    #[arg(long, default_value_t = 0.0)]
    duration: f64,
    /// Seed for the lying cache
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Make the started server's membership cache lie (other keys, stale generations)
    #[arg(long)]
    lying_cache: bool,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
}

pub async fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    if !args.duration.is_finite() || args.duration < 0.0 {
        bail!("--duration must be a number of seconds");
    }
    if global.server.is_some() && args.lying_cache {
        bail!("--lying-cache applies to the server the storm starts; drop --server");
    }
    let options = Options {
        servers: global
            .server
            .iter()
            .flat_map(|s| s.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        households: args.households,
        cameras_per: args.cameras_per,
        viewers_per: args.viewers_per,
        events_per: args.events_per,
        arrival: args.arrival,
        duration: Duration::from_secs_f64(args.duration),
        lying_cache: args.lying_cache,
        seed: args.seed,
        progress: !args.json,
    };
    let report = cc_storm::run(options).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
        for leak in &report.leak_details {
            println!("LEAK: {leak}");
        }
        for error in &report.viewer_errors {
            println!("error: {error}");
        }
    }
    if !report.passed() {
        bail!("the storm found leaks, lost events or server errors");
    }
    Ok(())
}
