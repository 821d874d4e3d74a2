//! `closedcircuit`: one binary for the server, for the people who own and watch cameras,
//! and for the cameras themselves. User commands encrypt and decrypt on this machine;
//! the server only ever sees ciphertext.

mod cmds;
mod output;
mod password;
mod timespec;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cmds::{account, admin, audit, bench, camera, events, serve, share, storm, Global};

const EXAMPLES: &str = "\
Getting started:
  closedcircuit serve --data-dir ./cc-data &
  closedcircuit account signup --email me@example.org
  closedcircuit camera claim --name 'Front door'
  closedcircuit camera agent --claim CC1-… --state-dir ./front-door   (on the camera)
  closedcircuit events list
  closedcircuit events get EVENT_ID --out ./events
  closedcircuit share invite --camera CAMERA_ID --email friend@example.org --role viewer

Every command also works without a terminal: pass the password with --password-stdin
or CLOSEDCIRCUIT_PASSWORD, and use --json for machine-readable output. Failures exit
non-zero and print `error: …`, with the server's problem code when it sent one.";

/// Closed Circuit: end-to-end-encrypted home security cameras.
#[derive(Parser)]
#[command(name = "closedcircuit", version, after_help = EXAMPLES)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (it stores only ciphertext and never holds a key that opens it)
    Serve(serve::Args),
    /// Sign up, log in and out, and export your identity
    Account(account::Args),
    /// Pair, list, rename and remove cameras; run a camera agent
    Camera(camera::Args),
    /// List, fetch and watch events, verified and decrypted on this machine
    Events(events::Args),
    /// Share cameras with other people: invite, accept, list, revoke
    Share(share::Args),
    /// Show who read what from a camera, and when (owners and admins)
    Audit(audit::Args),
    /// Operator commands, run on the server host against its data directory
    Admin(admin::Args),
    /// Simulate a reconnect storm of many cameras, with a leak oracle on every viewer
    Storm(storm::Args),
    /// Measure the service against ceilings measured on this machine in the same run
    Bench(bench::Args),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(matches!(cli.command, Command::Serve(_)));
    let result = match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Account(args) => account::run(&cli.global, args).await,
        Command::Camera(args) => camera::run(&cli.global, args).await,
        Command::Events(args) => events::run(&cli.global, args).await,
        Command::Share(args) => share::run(&cli.global, args).await,
        Command::Audit(args) => audit::run(&cli.global, args).await,
        Command::Storm(args) => storm::run(&cli.global, args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Admin(args) => admin::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::report_error(&e);
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr: the server logs requests at `info`, other commands only warnings
/// (retries, reconnections). `RUST_LOG` overrides either.
fn init_tracing(server: bool) {
    let default = if server { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(server)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
