//! `closedcircuit bench download`: clip download through the whole server (session
//! check, the one door, the access-log append committed before the first byte, range
//! requests) against the same files served as plain static files over loopback by a
//! stock static-file server, in the same run, with the same client and concurrency.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use futures_util::future::join_all;
use reqwest::header::RANGE;
use serde::Serialize;

use crate::camera::{prepare, send};
use crate::household::Household;
use crate::http::Http;
use crate::stats::Counters;
use crate::{own_server, StormError};

const THUMB: usize = 64 * 1024;
const CLIP: usize = 1024 * 1024;

#[derive(Debug, Serialize)]
pub struct DownloadReport {
    pub clips: usize,
    pub requests: usize,
    pub concurrency: usize,
    /// Every other request asks for a byte range (the second half of the clip).
    pub ranged_share: f64,
    pub project_mib_per_second: f64,
    pub project_requests_per_second: f64,
    pub ceiling_mib_per_second: f64,
    pub ceiling_requests_per_second: f64,
    pub ratio: f64,
}

impl DownloadReport {
    pub fn table(&self) -> String {
        format!(
            "clip download ({} requests over {} clips of ~1 MiB, {} at once, half of them ranged)\n  \
             project:  {:>8.1} MiB/s  {:>7.1} requests/s (session, the one door, access log committed, range)\n  \
             ceiling:  {:>8.1} MiB/s  {:>7.1} requests/s (same files, plain static file server, loopback)\n  \
             ratio:    {:>8.2}x (goal >= 0.8x)\n",
            self.requests,
            self.clips,
            self.concurrency,
            self.project_mib_per_second,
            self.project_requests_per_second,
            self.ceiling_mib_per_second,
            self.ceiling_requests_per_second,
            self.ratio
        )
    }
}

fn io(e: impl std::fmt::Display) -> StormError {
    StormError::Server(e.to_string())
}

/// Uploads `clips` events, then downloads clips `requests` times, `concurrency` at once,
/// through the server and through a static file server.
pub async fn download(
    clips: usize,
    requests: usize,
    concurrency: usize,
) -> Result<DownloadReport, StormError> {
    let (clips, concurrency) = (clips.max(1), concurrency.max(1));
    let server = own_server(false, 0).await?;
    let http = Http::new(&server.url)?;
    let household = Household::create(&http, &format!("{:x}", rand::random::<u32>()), 0, 1).await?;
    let camera = household.cameras.first().ok_or_else(|| io("no camera"))?;
    let counters = Counters::default();
    let mut paths = Vec::with_capacity(clips);
    for _ in 0..clips {
        let event = prepare(camera, THUMB, CLIP)?;
        send(&http, camera, &event, &counters).await?;
        paths.push(format!(
            "/v1/cameras/{}/events/{}/clip",
            camera.camera_id, event.event
        ));
    }
    let token = household.login(&http).await?;
    let project = measure(
        &http.client,
        &server.url,
        &paths,
        Some(&token),
        requests,
        concurrency,
    )
    .await?;

    let files = clip_files(&server.data_dir().join("blobs"))?;
    let static_root = server.data_dir().join("blobs");
    let ceiling_url = static_server(static_root.clone()).await?;
    let static_paths: Vec<String> = files
        .iter()
        .filter_map(|f| f.strip_prefix(&static_root).ok())
        .map(|rel| format!("/{}", rel.to_string_lossy()))
        .collect();
    let ceiling = measure(
        &http.client,
        &ceiling_url,
        &static_paths,
        None,
        requests,
        concurrency,
    )
    .await?;
    Ok(DownloadReport {
        clips,
        requests,
        concurrency,
        ranged_share: 0.5,
        project_mib_per_second: project.mib_per_second(),
        project_requests_per_second: project.requests_per_second(),
        ceiling_mib_per_second: ceiling.mib_per_second(),
        ceiling_requests_per_second: ceiling.requests_per_second(),
        ratio: project.mib_per_second() / ceiling.mib_per_second(),
    })
}

struct Throughput {
    bytes: usize,
    requests: usize,
    seconds: f64,
}

impl Throughput {
    fn mib_per_second(&self) -> f64 {
        self.bytes as f64 / (1024.0 * 1024.0) / self.seconds
    }

    fn requests_per_second(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

/// `requests` GETs spread over `paths`, `concurrency` at once; odd requests ask for the
/// second half of the clip with a `Range` header. Every answer must be complete.
async fn measure(
    client: &reqwest::Client,
    base: &str,
    paths: &[String],
    token: Option<&str>,
    requests: usize,
    concurrency: usize,
) -> Result<Throughput, StormError> {
    if paths.is_empty() {
        return Err(io("nothing to download"));
    }
    let next = AtomicUsize::new(0);
    let bytes = AtomicUsize::new(0);
    let started = Instant::now();
    let workers = (0..concurrency).map(|_| async {
        loop {
            let n = next.fetch_add(1, Ordering::Relaxed);
            if n >= requests {
                return Ok::<_, StormError>(());
            }
            let mut request = client.get(format!("{base}{}", paths[n % paths.len()]));
            if let Some(t) = token {
                request = request.bearer_auth(t);
            }
            if n % 2 == 1 {
                request = request.header(RANGE, format!("bytes={}-", CLIP / 2));
            }
            let response = request.send().await?;
            let status = response.status();
            if !status.is_success() {
                return Err(io(format!("download answered {status}")));
            }
            let body = response.bytes().await?;
            let want_ranged = n % 2 == 1;
            if want_ranged != (status == reqwest::StatusCode::PARTIAL_CONTENT) {
                return Err(io(format!("range request answered {status}")));
            }
            bytes.fetch_add(body.len(), Ordering::Relaxed);
        }
    });
    for result in join_all(workers).await {
        result?;
    }
    Ok(Throughput {
        bytes: bytes.load(Ordering::Relaxed),
        requests,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The stored clips: the blob files of about a clip's size.
fn clip_files(root: &Path) -> Result<Vec<PathBuf>, StormError> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.is_dir() {
                stack.push(path);
            } else if std::fs::metadata(&path).map_err(io)?.len() >= CLIP as u64 {
                found.push(path);
            }
        }
    }
    Ok(found)
}

/// A stock static-file server (tower-http's `ServeDir`) for `root` on a loopback port.
async fn static_server(root: PathBuf) -> Result<String, StormError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(io)?;
    let addr: SocketAddr = listener.local_addr().map_err(io)?;
    let app = axum::Router::new().fallback_service(tower_http::services::ServeDir::new(root));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}"))
}
