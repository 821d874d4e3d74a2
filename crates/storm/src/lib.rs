//! `closedcircuit storm`: brings N cameras across M households online at once, has them
//! upload events and answer requests for live view, while viewers of every household
//! list and open events and watch live. The leak oracle checks every item a viewer
//! receives, live segments included; at the end every acknowledged event
//! must be listed for its household. The outage that motivated this product is the
//! scenario: the storm must make the service slower, never wrong.

pub mod bench;
mod camera;
pub mod download;
mod household;
mod http;
mod live;
pub mod reconnect;
mod stats;
mod viewer;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde::Serialize;

use household::Household;
use http::Http;
use stats::{Counters, Latencies};

#[derive(Debug, thiserror::Error)]
pub enum StormError {
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    #[error("{what} answered {status}: {body}")]
    Status {
        what: String,
        status: u16,
        body: String,
    },
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("could not start a server: {0}")]
    Server(String),
}

/// When cameras come online.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arrival {
    /// All at once, as after an outage.
    All,
    /// Spread evenly over this many seconds.
    Ramp(f64),
}

impl std::str::FromStr for Arrival {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "all" => Ok(Arrival::All),
            _ => s
                .strip_prefix("ramp:")
                .and_then(|n| n.parse::<f64>().ok())
                .filter(|n| n.is_finite() && *n >= 0.0)
                .map(Arrival::Ramp)
                .ok_or_else(|| format!("expected `all` or `ramp:SECONDS`, not {s:?}")),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    /// Running nodes behind one name; none: start one on a temporary data directory.
    /// Cameras and viewers are spread over them and move on when theirs goes away.
    pub servers: Vec<String>,
    pub households: usize,
    pub cameras_per: usize,
    pub viewers_per: usize,
    pub events_per: usize,
    pub arrival: Arrival,
    /// Viewers keep going at least this long after the storm starts.
    pub duration: Duration,
    /// Make the started server's membership cache lie (ignored with `server`).
    pub lying_cache: bool,
    pub seed: u64,
    /// Print progress to stderr once a second.
    pub progress: bool,
}

/// What the storm found. `leaks` and `lost_events` must be zero.
#[derive(Debug, Serialize)]
pub struct Report {
    pub households: usize,
    pub cameras: usize,
    pub connected: u64,
    pub seconds_to_all_connected: f64,
    pub events_acked: u64,
    pub leaks: u64,
    pub leak_details: Vec<String>,
    pub lost_events: u64,
    pub items_checked: u64,
    /// Live segments among `items_checked`.
    pub live_segments_checked: u64,
    /// Live segments dropped because they were no longer live (a loaded machine).
    pub live_segments_late: u64,
    pub responses_503: u64,
    pub responses_5xx: u64,
    /// Clients that moved to another node because theirs stopped answering.
    pub failovers: u64,
    pub viewer_errors: Vec<String>,
    pub viewer_p50_ms_idle: f64,
    pub viewer_p99_ms_idle: f64,
    pub viewer_p50_ms_storm: f64,
    pub viewer_p99_ms_storm: f64,
    pub seconds_total: f64,
    pub lying_cache: bool,
}

impl Report {
    /// No leak, nothing lost, no server error, every viewer ran to the end.
    pub fn passed(&self) -> bool {
        self.leaks == 0
            && self.lost_events == 0
            && self.responses_5xx == 0
            && self.viewer_errors.is_empty()
            && self.connected == self.cameras as u64
    }

    pub fn table(&self) -> String {
        let rows = [
            ("households", self.households.to_string()),
            ("cameras", self.cameras.to_string()),
            ("connected", self.connected.to_string()),
            (
                "time to all connected",
                format!("{:.2} s", self.seconds_to_all_connected),
            ),
            ("events acknowledged", self.events_acked.to_string()),
            (
                "items checked by the oracle",
                self.items_checked.to_string(),
            ),
            (
                "  of which live segments",
                self.live_segments_checked.to_string(),
            ),
            (
                "live segments dropped as late",
                self.live_segments_late.to_string(),
            ),
            ("leaks (must be 0)", self.leaks.to_string()),
            ("lost events (must be 0)", self.lost_events.to_string()),
            ("5xx other than 503", self.responses_5xx.to_string()),
            ("503 (told to retry)", self.responses_503.to_string()),
            ("moved to another node", self.failovers.to_string()),
            (
                "viewer p50 / p99 idle",
                format!(
                    "{:.1} / {:.1} ms",
                    self.viewer_p50_ms_idle, self.viewer_p99_ms_idle
                ),
            ),
            (
                "viewer p50 / p99 in storm",
                format!(
                    "{:.1} / {:.1} ms",
                    self.viewer_p50_ms_storm, self.viewer_p99_ms_storm
                ),
            ),
            ("lying cache", self.lying_cache.to_string()),
            ("total time", format!("{:.1} s", self.seconds_total)),
        ];
        rows.iter().map(|(k, v)| format!("{k:<30} {v}\n")).collect()
    }
}

/// A server this process started, for as long as the storm runs.
struct OwnServer {
    url: String,
    dir: tempfile::TempDir,
}

impl OwnServer {
    fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }
}

async fn own_server(lying_cache: bool, seed: u64) -> Result<OwnServer, StormError> {
    let dir = tempfile::tempdir().map_err(|e| StormError::Server(e.to_string()))?;
    let config = cc_server::Config {
        data_dir: dir.path().join("data"),
        lying_cache: lying_cache.then_some(seed),
        ..cc_server::Config::default()
    };
    let state = cc_server::open(config)
        .await
        .map_err(|e| StormError::Server(e.to_string()))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| StormError::Server(e.to_string()))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StormError::Server(e.to_string()))?;
    let app = cc_server::app(state).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(OwnServer {
        url: format!("http://{addr}"),
        dir,
    })
}

/// Runs the storm and reports.
pub async fn run(options: Options) -> Result<Report, StormError> {
    let begun = Instant::now();
    let own = match options.servers.is_empty() {
        false => None,
        true => Some(own_server(options.lying_cache, options.seed).await?),
    };
    let nodes = match &own {
        Some(own) => vec![own.url.clone()],
        None => options.servers.clone(),
    };
    let http = Http::with_nodes(&nodes)?;
    let run_id = format!("{:x}", rand::random::<u32>());
    let counters = Arc::new(Counters::default());

    if options.progress {
        eprintln!(
            "storm: setting up {} households with {} cameras each…",
            options.households, options.cameras_per
        );
    }
    let mut households = Vec::with_capacity(options.households);
    for chunk in (0..options.households).collect::<Vec<_>>().chunks(16) {
        let made = join_all(
            chunk
                .iter()
                .map(|&i| Household::create(&http, &run_id, i, options.cameras_per)),
        )
        .await;
        for household in made {
            households.push(Arc::new(household?));
        }
    }
    let cameras: usize = households.iter().map(|h| h.cameras.len()).sum();

    // Viewers open the app first: idle latency, then the storm.
    let (idle, storm) = (
        Arc::new(Latencies::default()),
        Arc::new(Latencies::default()),
    );
    let (storming, stop) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let mut viewers = Vec::new();
    for household in &households {
        for _ in 0..options.viewers_per {
            viewers.push(tokio::spawn(viewer::watch(
                http.pinned(viewers.len()),
                household.clone(),
                counters.clone(),
                idle.clone(),
                storm.clone(),
                storming.clone(),
                stop.clone(),
            )));
        }
    }
    // Idle baseline: until every viewer has logged in and looked a few times.
    let idle_until = Instant::now() + Duration::from_secs(60);
    while idle.count() < viewers.len() * 5 && Instant::now() < idle_until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    storming.store(true, Ordering::Relaxed);
    let storm_start = Instant::now();

    let progress = options.progress.then(|| {
        let counters = counters.clone();
        let total = (cameras, cameras * options.events_per);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                eprintln!(
                    "storm: {}/{} connected, {}/{} events acknowledged, {} told to retry, {} leaks",
                    Counters::get(&counters.connected),
                    total.0,
                    Counters::get(&counters.acked),
                    total.1,
                    Counters::get(&counters.unavailable),
                    Counters::get(&counters.leaks),
                );
            }
        })
    });

    let mut tasks = Vec::with_capacity(cameras);
    let mut index = 0usize;
    for household in &households {
        for n in 0..household.cameras.len() {
            let delay = match options.arrival {
                Arrival::All => Duration::ZERO,
                Arrival::Ramp(secs) => {
                    Duration::from_secs_f64(secs * index as f64 / cameras.max(1) as f64)
                }
            };
            index += 1;
            let (http, household, counters, stop) = (
                http.pinned(index),
                household.clone(),
                counters.clone(),
                stop.clone(),
            );
            let events = options.events_per;
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let camera = &household.cameras[n];
                camera::connect(&http, camera, &counters).await?;
                counters.connected.fetch_add(1, Ordering::Relaxed);
                let connected_at = Instant::now();
                let live = tokio::spawn(live::camera(
                    http.clone(),
                    household.clone(),
                    n,
                    counters.clone(),
                    stop.clone(),
                ));
                let mut acked = Vec::with_capacity(events);
                for _ in 0..events {
                    acked.push(camera::upload(&http, camera, &counters).await?);
                    counters.acked.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<_, StormError>((household.index, camera.camera_id, acked, connected_at, live))
            }));
        }
    }
    let mut acked_by_camera = Vec::new();
    let mut last_connect = storm_start;
    let mut camera_errors = Vec::new();
    let mut live_sides = Vec::new();
    for task in tasks {
        match task.await {
            Ok(Ok((h, camera, acked, connected_at, live))) => {
                last_connect = last_connect.max(connected_at);
                acked_by_camera.push((h, camera, acked));
                live_sides.push(live);
            }
            Ok(Err(e)) => camera_errors.push(e.to_string()),
            Err(e) => camera_errors.push(e.to_string()),
        }
    }
    let remaining = options.duration.saturating_sub(storm_start.elapsed());
    tokio::time::sleep(remaining).await;
    stop.store(true, Ordering::Relaxed);
    let mut viewer_errors = camera_errors;
    for viewer in viewers {
        match viewer.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => viewer_errors.push(e.to_string()),
            Err(e) => viewer_errors.push(e.to_string()),
        }
    }
    for live in live_sides {
        match live.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => viewer_errors.push(format!("camera live side: {e}")),
            Err(e) => viewer_errors.push(e.to_string()),
        }
    }
    if let Some(p) = progress {
        p.abort();
    }

    // Every acknowledged event must be there for its household.
    let mut lost = 0u64;
    for household in &households {
        let token = household.login(&http).await?;
        for (_, camera, acked) in acked_by_camera
            .iter()
            .filter(|(h, _, _)| *h == household.index)
        {
            let listed = viewer::all_events(&http, &token, *camera).await?;
            lost += acked.iter().filter(|e| !listed.contains(e)).count() as u64;
        }
    }

    let (idle_p50, idle_p99) = idle.percentiles();
    let (storm_p50, storm_p99) = storm.percentiles();
    Ok(Report {
        households: households.len(),
        cameras,
        connected: Counters::get(&counters.connected),
        seconds_to_all_connected: (last_connect - storm_start).as_secs_f64(),
        events_acked: Counters::get(&counters.acked),
        leaks: Counters::get(&counters.leaks),
        leak_details: counters.leak_details(),
        lost_events: lost,
        items_checked: Counters::get(&counters.items_checked),
        live_segments_checked: Counters::get(&counters.live_checked),
        live_segments_late: Counters::get(&counters.live_late),
        responses_503: Counters::get(&counters.unavailable)
            + http.retried_503.load(Ordering::Relaxed),
        responses_5xx: Counters::get(&counters.server_errors),
        failovers: http.failovers.load(Ordering::Relaxed),
        viewer_errors,
        viewer_p50_ms_idle: idle_p50,
        viewer_p99_ms_idle: idle_p99,
        viewer_p50_ms_storm: storm_p50,
        viewer_p99_ms_storm: storm_p99,
        seconds_total: begun.elapsed().as_secs_f64(),
        lying_cache: options.lying_cache && options.servers.is_empty(),
    })
}
