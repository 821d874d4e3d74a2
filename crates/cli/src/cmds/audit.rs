//! `closedcircuit audit`: who read what from a camera, and when, from the server's
//! access log (owners and admins); `audit verify` is the operator's check of the log's
//! hash chain (the same as `admin audit-verify`).

use cc_core::api::{AccessEntry, AccessQuery};
use cc_core::CameraId;

use anyhow::Context as _;

use super::admin::{audit_verify, AuditVerifyArgs};
use super::Global;
use crate::output::{self, say};
use crate::timespec::parse_since;

const EXAMPLES: &str = "\
Examples:
  closedcircuit audit --camera 0190c6d2-…
  closedcircuit audit --camera 0190c6d2-… --since 3d
  closedcircuit audit --camera 0190c6d2-… --since 2024-05-01T00:00:00Z --json
  closedcircuit audit verify --data-dir ./cc-data      (on the server host)

Every read of a thumbnail, clip, grant or live view is logged with the account, the
session and the IP address it came from.";

/// Options of `closedcircuit audit`.
#[derive(clap::Args)]
#[command(
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Args {
    #[command(subcommand)]
    command: Option<AuditCommand>,
    /// The camera whose access log to show
    #[arg(long, required = true)]
    camera: Option<CameraId>,
    /// Only reads at or after this time: RFC 3339, or a span back like 30m, 2h, 3d
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// At most this many entries (the server caps it at 1000)
    #[arg(long, default_value_t = 200)]
    limit: u32,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(clap::Subcommand)]
enum AuditCommand {
    /// Check the access log's hash chain on the server host; exits non-zero at the first
    /// entry that was changed, removed or reordered
    Verify(AuditVerifyArgs),
}

/// Prints a camera's access log, or verifies the whole log.
pub async fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    if let Some(AuditCommand::Verify(verify)) = args.command {
        return audit_verify(verify).await;
    }
    let camera = args.camera.context("--camera is required")?;
    let since = args
        .since
        .as_deref()
        .map(|text| parse_since(text, chrono::Utc::now()))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let session = global.session()?;
    let query = AccessQuery {
        since,
        limit: Some(args.limit),
    };
    let entries = session.api.access_log(camera, &query).await?;
    if args.json {
        return output::print_json(&entries);
    }
    if entries.is_empty() {
        say!("Nobody read anything from camera {camera} in that time.");
        return Ok(());
    }
    print_entries(&entries);
    Ok(())
}

/// Prints access-log entries as a table: time, who, object, event, IP.
pub fn print_entries(entries: &[AccessEntry]) {
    let rows: Vec<Vec<String>> = entries.iter().map(row).collect();
    output::print_table(&["TIME", "WHO", "OBJECT", "EVENT", "IP"], &rows);
}

fn row(entry: &AccessEntry) -> Vec<String> {
    vec![
        output::local_time(entry.at),
        entry
            .email
            .clone()
            .unwrap_or_else(|| format!("(deleted account {})", entry.user_id)),
        entry.object.clone(),
        entry
            .event_id
            .map(|e| e.to_string())
            .unwrap_or_else(|| "-".to_owned()),
        entry.ip.clone(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use cc_core::{EventId, SessionId, UserId};

    #[test]
    fn rows_name_deleted_accounts_and_missing_events() {
        let user = UserId::new_v7();
        let entry = AccessEntry {
            seq: 1,
            at: chrono::Utc::now(),
            user_id: user,
            email: None,
            session_id: SessionId::new_random(),
            camera_id: CameraId::new_v7(),
            event_id: None,
            object: "grants".into(),
            ip: "127.0.0.1".into(),
        };
        let cells = row(&entry);
        assert_eq!(cells[1], format!("(deleted account {user})"));
        assert_eq!(cells[3], "-");
        let event = EventId::new_v7();
        let named = AccessEntry {
            email: Some("bob@example.org".into()),
            event_id: Some(event),
            ..entry
        };
        let cells = row(&named);
        assert_eq!(cells[1], "bob@example.org");
        assert_eq!(cells[3], event.to_string());
    }
}
