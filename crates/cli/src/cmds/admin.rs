//! `closedcircuit admin …`: operator commands run on the server host. They open the
//! server's data directory directly, so they need no account, and they see only what
//! the server itself sees (metadata and the access log, never media or keys).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::bail;
use cc_core::api::AccessEntry;
use cc_store::Store;
use clap::Subcommand;
use serde_json::json;

use super::audit::print_entries;
use crate::output::{self, say};
use crate::timespec::parse_since;

const EXAMPLES: &str = "\
Examples (on the server host):
  closedcircuit admin audit-verify --data-dir ./cc-data
  closedcircuit admin breach-report --since 2024-05-01T00:00:00Z --until 2024-05-08T00:00:00Z
  closedcircuit admin breach-report --since 7d --until 0s --json

The access log is a hash chain: audit-verify recomputes it and exits non-zero at the
first entry that was changed, removed or reordered.";

/// Options of `closedcircuit admin`.
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Check the access log's hash chain; exits non-zero when it is broken
    #[command(after_help = "Example:\n  closedcircuit admin audit-verify --data-dir ./cc-data")]
    AuditVerify(AuditVerifyArgs),
    /// List reads by accounts that were not members of the camera at the time, per owner
    #[command(
        after_help = "Examples:\n  closedcircuit admin breach-report --since 2024-05-01T00:00:00Z --until 2024-05-08T00:00:00Z\n  closedcircuit admin breach-report --since 30d --until 0s --json\n\nSend each owner the entries listed under their account."
    )]
    BreachReport(BreachArgs),
    /// Set an account's storage quota; uploads past it are refused with `quota_exceeded`
    #[command(
        after_help = "Examples:\n  closedcircuit admin quota --email me@example.org --bytes 10000000000\n  closedcircuit admin quota --email me@example.org --bytes off"
    )]
    Quota(QuotaArgs),
    /// Copy the metadata to another database (embedded SQLite to PostgreSQL), verified
    /// table by table with row counts and SHA-256
    #[command(after_help = super::migrate::EXAMPLES)]
    Migrate(super::migrate::MigrateArgs),
}

#[derive(clap::Args)]
struct QuotaArgs {
    #[command(flatten)]
    data: DataDirArg,
    /// The account's email
    #[arg(long)]
    email: String,
    /// Quota in bytes, or `off` for unlimited
    #[arg(long)]
    bytes: String,
}

#[derive(clap::Args)]
struct DataDirArg {
    /// The server's data directory (as given to `closedcircuit serve`)
    #[arg(
        long,
        env = "CLOSEDCIRCUIT_DATA_DIR",
        default_value = "closedcircuit-data"
    )]
    data_dir: PathBuf,
    /// The server's metadata database when it is not the data directory's (as
    /// `serve --metadata-url`, e.g. postgres://…); --data-dir is then not read
    #[arg(
        long,
        env = "CC_METADATA_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    metadata_url: Option<String>,
}

#[derive(clap::Args)]
pub struct AuditVerifyArgs {
    #[command(flatten)]
    data: DataDirArg,
}

#[derive(clap::Args)]
struct BreachArgs {
    #[command(flatten)]
    data: DataDirArg,
    /// Start of the window: RFC 3339, or a span back like 7d
    #[arg(long, value_name = "TIME")]
    since: String,
    /// End of the window (exclusive): RFC 3339, or a span back like 0s (now)
    #[arg(long, value_name = "TIME")]
    until: String,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

/// Runs an `admin` subcommand.
pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        AdminCommand::AuditVerify(args) => audit_verify(args).await,
        AdminCommand::BreachReport(args) => breach_report(args).await,
        AdminCommand::Quota(args) => quota(args).await,
        AdminCommand::Migrate(args) => super::migrate::run(args).await,
    }
}

async fn quota(args: QuotaArgs) -> anyhow::Result<()> {
    let bytes = match args.bytes.as_str() {
        "off" => None,
        n => Some(
            n.parse::<u64>()
                .map_err(|_| anyhow::anyhow!("expected a number of bytes or `off`, not {n:?}"))?,
        ),
    };
    open(&args.data)
        .await?
        .set_quota(&args.email, bytes)
        .await?;
    match bytes {
        Some(b) => println!("Quota of {} set to {b} bytes", args.email),
        None => println!("{} has no quota", args.email),
    }
    Ok(())
}

/// Opens the server's metadata: the `--metadata-url` database, else the data
/// directory's; refuses to create an empty one by mistake.
async fn open(data: &DataDirArg) -> anyhow::Result<Store> {
    let url = match &data.metadata_url {
        Some(url) => {
            cc_server::config::Metadata::from_url(url)?;
            url.clone()
        }
        None => {
            let db = data.data_dir.join("metadata.db");
            if !db.is_file() {
                bail!(
                    "{} is not a Closed Circuit data directory (no metadata.db); pass --data-dir DIR or --metadata-url URL",
                    data.data_dir.display()
                );
            }
            format!("sqlite://{}", db.display())
        }
    };
    Ok(cc_store::metadata_copy::open_metadata(&url).await?)
}

/// Recomputes the access log's hash chain; an error names the first broken entry.
pub async fn audit_verify(args: AuditVerifyArgs) -> anyhow::Result<()> {
    let report = open(&args.data).await?.verify_access_log().await?;
    match report.first_broken_seq {
        None => {
            say!(
                "Access log intact: {} entries, hash chain verified.",
                report.entries
            );
            Ok(())
        }
        Some(seq) => bail!(
            "the access log is BROKEN at entry {seq} (of {} entries): an entry was changed, removed or reordered there",
            report.entries
        ),
    }
}

async fn breach_report(args: BreachArgs) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    let since = parse_since(&args.since, now).map_err(anyhow::Error::msg)?;
    let until = parse_since(&args.until, now).map_err(anyhow::Error::msg)?;
    if until <= since {
        bail!("--until must be later than --since");
    }
    let found = open(&args.data).await?.breach_report(since, until).await?;
    let grouped = by_owner(found.into_iter().map(|b| (b.owner_email, b.entry)));
    if args.json {
        let items: Vec<_> = grouped
            .iter()
            .map(|(owner, entries)| json!({ "owner_email": owner, "entries": entries }))
            .collect();
        return output::print_json(&items);
    }
    if grouped.is_empty() {
        say!(
            "No reads by non-members between {} and {}.",
            output::local_time(since),
            output::local_time(until)
        );
        return Ok(());
    }
    for (owner, entries) in &grouped {
        say!("Owner {owner}: {} read(s) by non-members", entries.len());
        print_entries(entries);
        say!();
    }
    Ok(())
}

/// Groups entries by owner account, owners in order, entries in log order.
fn by_owner(
    entries: impl IntoIterator<Item = (String, AccessEntry)>,
) -> BTreeMap<String, Vec<AccessEntry>> {
    let mut grouped: BTreeMap<String, Vec<AccessEntry>> = BTreeMap::new();
    for (owner, entry) in entries {
        grouped.entry(owner).or_default().push(entry);
    }
    for entries in grouped.values_mut() {
        entries.sort_by_key(|e| e.seq);
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;
    use cc_core::{CameraId, SessionId, UserId};

    fn entry(seq: i64) -> AccessEntry {
        AccessEntry {
            seq,
            at: chrono::Utc::now(),
            user_id: UserId::new_v7(),
            email: None,
            session_id: SessionId::new_random(),
            camera_id: CameraId::new_v7(),
            event_id: None,
            object: "clip".into(),
            ip: "10.0.0.1".into(),
        }
    }

    #[test]
    fn breaches_group_per_owner_in_log_order() {
        let grouped = by_owner([
            ("b@x".to_owned(), entry(3)),
            ("a@x".to_owned(), entry(2)),
            ("b@x".to_owned(), entry(1)),
        ]);
        assert_eq!(grouped.keys().collect::<Vec<_>>(), ["a@x", "b@x"]);
        let seqs: Vec<i64> = grouped["b@x"].iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1, 3]);
    }
}
