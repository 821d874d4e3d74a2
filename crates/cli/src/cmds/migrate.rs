//! `closedcircuit admin migrate`: moves an installation's metadata to another database
//! (the embedded SQLite file to a shared PostgreSQL, typically) and proves nothing was
//! lost by comparing every table's row count and content hash on both sides.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use cc_store::metadata_copy::{self, CopyOptions, TableDigest};

use crate::output::say;

pub const EXAMPLES: &str = "\
Examples (stop every node first; the copy must see a quiet source):
  closedcircuit admin migrate --from ./closedcircuit-data --to postgres://closedcircuit@db.internal/closedcircuit
  closedcircuit admin migrate --from sqlite:/var/lib/cc/metadata.db --to postgres://db/cc --replace-target
  closedcircuit admin migrate --from ./closedcircuit-data --to postgres://db/cc --blobs-to /mnt/media

The target's schema is created if needed. A target that already holds data is refused
unless --replace-target is given. Afterwards every table's row count and SHA-256 are
compared on both sides; any difference exits non-zero. Media stays where it is unless
--blobs-to names a directory to copy it to (this build copies file to file only).";

/// Options of `closedcircuit admin migrate`.
#[derive(clap::Args)]
pub struct MigrateArgs {
    /// Source: a data directory, sqlite:PATH, or postgres://…
    #[arg(long, value_name = "DIR|URL")]
    from: String,
    /// Target metadata database: postgres://… (or sqlite:PATH)
    #[arg(long, value_name = "URL")]
    to: String,
    /// Delete whatever the target holds before copying
    #[arg(long)]
    replace_target: bool,
    /// Rows read and written per statement
    #[arg(long, default_value_t = 500, value_name = "ROWS")]
    batch: usize,
    /// Also copy the local blob directory (DIR/blobs of the source) to this directory
    #[arg(long, value_name = "DIR")]
    blobs_to: Option<PathBuf>,
}

/// Where the source's metadata and (for embedded installations) blobs are.
struct Source {
    url: String,
    blobs: Option<PathBuf>,
}

fn source(from: &str) -> anyhow::Result<Source> {
    if from.starts_with("postgres:") || from.starts_with("postgresql:") {
        return Ok(Source {
            url: from.to_owned(),
            blobs: None,
        });
    }
    let path = match from.strip_prefix("sqlite:") {
        Some(rest) => PathBuf::from(rest.strip_prefix("//").unwrap_or(rest)),
        None => PathBuf::from(from),
    };
    let db = if path.is_dir() {
        path.join("metadata.db")
    } else {
        path
    };
    if !db.is_file() {
        bail!(
            "{} is not a Closed Circuit metadata database; pass a data directory, sqlite:PATH or postgres://…",
            db.display()
        );
    }
    let blobs = db.parent().map(|dir| dir.join("blobs"));
    Ok(Source {
        url: format!("sqlite://{}", db.display()),
        blobs,
    })
}

/// Runs `admin migrate`.
pub async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let source = source(&args.from)?;
    let from = metadata_copy::open_metadata(&source.url)
        .await
        .context("cannot open the source")?;
    let to = metadata_copy::open_metadata(&args.to)
        .await
        .context("cannot open the target")?;
    say!(
        "Copying metadata from {} to {}…",
        from.backend().name(),
        to.backend().name()
    );
    let mut stderr = std::io::stderr();
    let mut line_open = false;
    let terminal = stderr.is_terminal();
    metadata_copy::copy(
        &from,
        &to,
        CopyOptions {
            batch: args.batch,
            replace: args.replace_target,
        },
        |table, rows| {
            // A terminal sees a live count per table; a log gets one line per table.
            if !terminal {
                if rows == 0 {
                    let _ = writeln!(stderr, "  copying {table}");
                }
                return;
            }
            if rows == 0 && line_open {
                let _ = writeln!(stderr);
            }
            line_open = true;
            let _ = write!(stderr, "\r  {table:<20} {rows:>10} rows");
        },
    )
    .await
    .map_err(|e| match e {
        cc_store::StoreError::Conflict(_) => anyhow::anyhow!(
            "the target database already holds data; pass --replace-target to delete it first"
        ),
        other => other.into(),
    })?;
    if line_open {
        let _ = writeln!(stderr);
    }
    let before = metadata_copy::digests(&from).await?;
    let after = metadata_copy::digests(&to).await?;
    let same = print_comparison(&before, &after);
    from.close().await;
    to.close().await;
    if !same {
        bail!("the target differs from the source; see the table above");
    }
    say!("Metadata verified: every table's row count and SHA-256 match.");
    match (args.blobs_to, source.blobs) {
        (Some(target), Some(blobs)) => copy_blobs(&blobs, &target)?,
        (Some(_), None) => {
            bail!("--blobs-to needs a source with local blobs (a data directory or sqlite:PATH)")
        }
        (None, Some(blobs)) => say!(
            "Media stays in {}; point the new nodes' blobs_url at it (file://…).",
            blobs.display()
        ),
        (None, None) => {}
    }
    Ok(())
}

/// Prints one line per table; returns whether every table matches.
fn print_comparison(before: &[TableDigest], after: &[TableDigest]) -> bool {
    say!(
        "{:<20} {:>10} {:>10}  {:<64}  check",
        "table",
        "source",
        "target",
        "sha256"
    );
    let mut same = before.len() == after.len();
    for (b, a) in before.iter().zip(after) {
        let ok = b == a;
        same &= ok;
        say!(
            "{:<20} {:>10} {:>10}  {}  {}",
            b.table,
            b.rows,
            a.rows,
            b.sha256,
            if ok { "ok" } else { "MISMATCH" }
        );
        if !ok {
            say!("{:<42}  {}  (target)", "", a.sha256);
        }
    }
    same
}

/// Copies every file below `from` to the same place below `to`, keeping files already
/// there when their size matches, then checks both trees hold the same files and bytes.
fn copy_blobs(from: &Path, to: &Path) -> anyhow::Result<()> {
    let files = files_below(from)?;
    let total = files.len();
    let mut bytes = 0u64;
    for (i, file) in files.iter().enumerate() {
        let relative = file.strip_prefix(from)?;
        let target = to.join(relative);
        let size = std::fs::metadata(file)?.len();
        match std::fs::metadata(&target) {
            Ok(m) if m.len() == size => {}
            Ok(_) => bail!(
                "{} already exists with different contents",
                target.display()
            ),
            Err(_) => {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::copy(file, &target)
                    .with_context(|| format!("cannot copy {}", file.display()))?;
                std::fs::File::open(&target)?.sync_all()?;
            }
        }
        bytes += size;
        if (i + 1) % 100 == 0 || i + 1 == total {
            eprint!("\r  blobs {:>10} of {total} files", i + 1);
        }
    }
    if total > 0 {
        eprintln!();
    }
    let copied: u64 = files_below(to)?
        .iter()
        .filter(|f| f.strip_prefix(to).is_ok_and(|r| from.join(r).is_file()))
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    if copied != bytes {
        bail!(
            "blob copy incomplete: {bytes} bytes in {}, {copied} in {}",
            from.display(),
            to.display()
        );
    }
    say!(
        "Media copied: {total} files, {bytes} bytes, to {}.",
        to.display()
    );
    Ok(())
}

fn files_below(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && d == dir => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", d.display())),
        };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_found_by_url_or_directory() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("metadata.db"), b"")?;
        let from_dir = source(&dir.path().display().to_string())?;
        assert_eq!(
            from_dir.url,
            format!("sqlite://{}", dir.path().join("metadata.db").display())
        );
        assert_eq!(from_dir.blobs, Some(dir.path().join("blobs")));
        let db = dir.path().join("metadata.db").display().to_string();
        assert_eq!(source(&format!("sqlite:{db}"))?.url, from_dir.url);
        assert_eq!(source(&format!("sqlite://{db}"))?.url, from_dir.url);
        assert!(source("postgres://db/cc")?.blobs.is_none());
        assert!(source(&dir.path().join("nothing").display().to_string()).is_err());
        Ok(())
    }

    #[test]
    fn blobs_are_copied_and_checked() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let (from, to) = (dir.path().join("from"), dir.path().join("to"));
        std::fs::create_dir_all(from.join("cameras/a/e"))?;
        std::fs::write(from.join("cameras/a/e/1.clip"), b"clip bytes")?;
        std::fs::write(from.join("cameras/a/e/1.thumb"), b"thumb")?;
        copy_blobs(&from, &to)?;
        assert_eq!(std::fs::read(to.join("cameras/a/e/1.clip"))?, b"clip bytes");
        copy_blobs(&from, &to)?;
        std::fs::write(to.join("cameras/a/e/1.thumb"), b"changed!")?;
        assert!(copy_blobs(&from, &to).is_err());
        Ok(())
    }
}
