//! `closedcircuit bench ingest`: durable event ingest through the whole server (HTTP,
//! manifest verification, hashing, fsynced blobs, committed row) against a ceiling
//! measured in the same run on the same disk: the same bytes written one event at a
//! time with fsync, plus one SQLite WAL insert each, without HTTP.

use std::path::Path;
use std::str::FromStr;
use std::time::Instant;

use futures_util::future::join_all;
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};

use crate::camera::{prepare, send, Prepared};
use crate::household::Household;
use crate::http::Http;
use crate::stats::Counters;
use crate::{own_server, StormError};

const THUMB: usize = 64 * 1024;
const CLIP: usize = 1024 * 1024;

#[derive(Debug, Serialize)]
pub struct IngestReport {
    pub events: usize,
    pub cameras: usize,
    pub bytes_per_event: usize,
    pub events_per_second: f64,
    pub ceiling_events_per_second: f64,
    pub ratio: f64,
}

impl IngestReport {
    pub fn table(&self) -> String {
        format!(
            "event ingest ({} events of {} KiB, {} cameras at once)\n  \
             project:  {:>8.1} events/s (HTTP, verify, fsynced blobs, committed row, then ack)\n  \
             ceiling:  {:>8.1} events/s (same bytes, fsync per file, one WAL insert each, no HTTP)\n  \
             ratio:    {:>8.2}x (goal >= 0.8x)\n",
            self.events,
            self.bytes_per_event / 1024,
            self.cameras,
            self.events_per_second,
            self.ceiling_events_per_second,
            self.ratio
        )
    }
}

fn io(e: impl std::fmt::Display) -> StormError {
    StormError::Server(e.to_string())
}

pub async fn ingest(events: usize, cameras: usize) -> Result<IngestReport, StormError> {
    let cameras = cameras.clamp(1, events.max(1));
    let server = own_server(false, 0).await?;
    let http = Http::new(&server.url)?;
    let household =
        Household::create(&http, &format!("{:x}", rand::random::<u32>()), 0, cameras).await?;
    // Cameras encrypt on their own hardware: prepare everything before the clock starts.
    let mut work: Vec<Vec<Prepared>> = household.cameras.iter().map(|_| Vec::new()).collect();
    for i in 0..events {
        let camera = &household.cameras[i % cameras];
        work[i % cameras].push(prepare(camera, THUMB, CLIP)?);
    }
    let bytes_per_event = work.iter().flatten().map(Prepared::len).sum::<usize>() / events.max(1);
    let counters = Counters::default();
    let started = Instant::now();
    let uploads = household.cameras.iter().zip(&work).map(|(camera, queue)| {
        let (http, counters) = (&http, &counters);
        async move {
            for event in queue {
                send(http, camera, event, counters).await?;
            }
            Ok::<_, StormError>(())
        }
    });
    for result in join_all(uploads).await {
        result?;
    }
    let project = events as f64 / started.elapsed().as_secs_f64();

    let dir = tempfile::tempdir().map_err(io)?;
    let sample: Vec<&Prepared> = work.iter().flatten().collect();
    let ceiling = ceiling(dir.path(), &sample).await?;
    Ok(IngestReport {
        events,
        cameras,
        bytes_per_event,
        events_per_second: project,
        ceiling_events_per_second: ceiling,
        ratio: project / ceiling,
    })
}

/// One event at a time: two files written, fsynced, renamed, directory fsynced; one row
/// inserted and committed in SQLite WAL with `synchronous = FULL`.
async fn ceiling(dir: &Path, events: &[&Prepared]) -> Result<f64, StormError> {
    let url = format!("sqlite://{}?mode=rwc", dir.join("ceiling.db").display());
    let mut db = SqliteConnectOptions::from_str(&url)
        .map_err(io)?
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .connect()
        .await
        .map_err(io)?;
    sqlx::query("CREATE TABLE events (id TEXT PRIMARY KEY, thumb BIGINT, clip BIGINT)")
        .execute(&mut db)
        .await
        .map_err(io)?;
    let started = Instant::now();
    for (i, event) in events.iter().enumerate() {
        let (thumb, clip) = event.parts();
        let dir = dir.to_owned();
        let (thumb, clip) = (thumb.to_vec(), clip.to_vec());
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            for (name, bytes) in [(format!("{i}.thumb"), thumb), (format!("{i}.clip"), clip)] {
                let staged = dir.join(format!("{name}.tmp"));
                let mut file = std::fs::File::create(&staged)?;
                std::io::Write::write_all(&mut file, &bytes)?;
                file.sync_all()?;
                std::fs::rename(&staged, dir.join(name))?;
                std::fs::File::open(&dir)?.sync_all()?;
            }
            Ok(())
        })
        .await
        .map_err(io)?
        .map_err(io)?;
        sqlx::query("INSERT INTO events (id, thumb, clip) VALUES ($1, $2, $3)")
            .bind(event.event.to_string())
            .bind(THUMB as i64)
            .bind(CLIP as i64)
            .execute(&mut db)
            .await
            .map_err(io)?;
    }
    let rate = events.len() as f64 / started.elapsed().as_secs_f64();
    db.close().await.map_err(io)?;
    Ok(rate)
}
