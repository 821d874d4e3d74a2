//! `closedcircuit bench reconnect`: thousands of cameras reconnecting at once to a
//! server running as its own process (or to running nodes), each then holding its
//! device stream open, idle. Measured against the same run's ceilings: the time the
//! admission limit allows (cameras / handshakes per second), the viewers' latency
//! before the storm, and the memory of a bare tokio task holding a socket.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::Method;
use serde::Serialize;
use tokio::io::AsyncReadExt;

use crate::camera;
use crate::household::Household;
use crate::http::{open_device_stream, Http};
use crate::stats::{Counters, Latencies};
use crate::StormError;

/// Cameras per simulated household: large households make setting up 15,000 quick.
const CAMERAS_PER_HOUSEHOLD: usize = 100;
/// Time for memory to settle once every camera is connected and idle.
const SETTLE: Duration = Duration::from_secs(3);

/// What to run.
pub struct ReconnectOptions {
    pub cameras: usize,
    pub viewers: usize,
    /// Running nodes; none: start `closedcircuit serve` from `exe` as a separate process.
    pub servers: Vec<String>,
    pub exe: PathBuf,
    /// The admission limit the nodes run with, for the ideal.
    pub handshakes_per_second: u32,
}

#[derive(Debug, Serialize)]
pub struct ReconnectReport {
    pub cameras: usize,
    pub nodes: usize,
    pub connected: u64,
    pub streams_open: usize,
    pub seconds_to_all_connected: f64,
    pub ideal_seconds: f64,
    pub ratio_to_ideal: f64,
    pub responses_503: u64,
    pub viewer_p50_ms_idle: f64,
    pub viewer_p99_ms_idle: f64,
    pub viewer_p50_ms_storm: f64,
    pub viewer_p99_ms_storm: f64,
    pub viewer_p99_ratio: f64,
    /// Server memory per connected idle camera (own server only).
    pub kib_per_camera: Option<f64>,
    /// A bare tokio task holding an accepted socket, measured in this run.
    pub kib_per_bare_socket_task: f64,
    /// Open-file limit of the server process: one socket per camera.
    pub open_file_limit: Option<u64>,
}

impl ReconnectReport {
    pub fn table(&self) -> String {
        let memory = match (self.kib_per_camera, self.open_file_limit) {
            (Some(kib), Some(limit)) => format!(
                "  memory:   {kib:>8.1} KiB per connected idle camera (goal <= 16 KiB; a bare tokio socket task here: {:.1} KiB, {:.1}x)\n  \
                 capacity: one node holds at most ~{} cameras (its open-file limit is {limit}); at this rate that is {:.0} MiB\n",
                self.kib_per_bare_socket_task,
                kib / self.kib_per_bare_socket_task.max(0.001),
                limit.saturating_sub(256),
                kib * limit as f64 / 1024.0,
            ),
            _ => format!(
                "  memory:   not measured (nodes given with --server); a bare tokio socket task here: {:.1} KiB\n",
                self.kib_per_bare_socket_task
            ),
        };
        format!(
            "reconnect storm ({} cameras at once on {} node(s), each then holding its stream open)\n  \
             connected: {:>7} of {}, {} streams open, {} told to retry (503)\n  \
             all in:   {:>8.1} s   ideal at the admission limit: {:.1} s   ratio {:.2}x (goal <= 1.5x)\n  \
             viewers:  p50/p99 idle {:.0}/{:.0} ms, in the storm {:.0}/{:.0} ms   p99 ratio {:.2}x (goal <= 2x)\n{memory}",
            self.cameras,
            self.nodes,
            self.connected,
            self.cameras,
            self.streams_open,
            self.responses_503,
            self.seconds_to_all_connected,
            self.ideal_seconds,
            self.ratio_to_ideal,
            self.viewer_p50_ms_idle,
            self.viewer_p99_ms_idle,
            self.viewer_p50_ms_storm,
            self.viewer_p99_ms_storm,
            self.viewer_p99_ratio,
        )
    }
}

fn io(e: impl std::fmt::Display) -> StormError {
    StormError::Server(e.to_string())
}

/// A `closedcircuit serve` child on a temporary data directory and a fixed free port,
/// so it can be restarted where its clients expect it.
struct ServerProcess {
    child: Child,
    exe: PathBuf,
    listen: String,
    url: String,
    dir: tempfile::TempDir,
}

impl ServerProcess {
    fn start(exe: &Path) -> Result<Self, StormError> {
        let dir = tempfile::tempdir().map_err(io)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(io)?
            .port();
        let listen = format!("127.0.0.1:{port}");
        let (child, url) = Self::spawn(exe, &listen, dir.path())?;
        Ok(Self {
            child,
            exe: exe.to_owned(),
            listen,
            url,
            dir,
        })
    }

    fn spawn(exe: &Path, listen: &str, dir: &Path) -> Result<(Child, String), StormError> {
        let mut child = Command::new(exe)
            .args(["serve", "--listen", listen, "--data-dir"])
            .arg(dir.join("data"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io)?;
        let stdout = child.stdout.take().ok_or_else(|| io("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
        let line = lines
            .find(|l| l.contains("http://"))
            .ok_or_else(|| io("the server printed no address"))?;
        // Keep reading, so the server never writes to a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .ok_or_else(|| io("the server printed no address"))?
            .to_owned();
        Ok((child, url))
    }

    /// The outage: the process is killed and started again on the same data and port,
    /// so its memory is measured from a fresh start, as after a real outage.
    fn restart(&mut self) -> Result<(), StormError> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, url) = Self::spawn(&self.exe, &self.listen, self.dir.path())?;
        self.child = child;
        self.url = url;
        Ok(())
    }

    fn rss_kib(&self) -> Option<u64> {
        proc_status_kib(self.child.id(), "VmRSS:")
    }

    fn open_file_limit(&self) -> Option<u64> {
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", self.child.id())).ok()?;
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        line.split_whitespace().nth(3)?.parse().ok()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub async fn reconnect(options: ReconnectOptions) -> Result<ReconnectReport, StormError> {
    // First, while this process is fresh: the floor a connected socket costs here.
    let bare = bare_socket_task_kib(options.cameras.clamp(1, 4000)).await?;
    let mut own = match options.servers.is_empty() {
        true => Some(ServerProcess::start(&options.exe)?),
        false => None,
    };
    let nodes = match &own {
        Some(server) => vec![server.url.clone()],
        None => options.servers.clone(),
    };
    let http = Http::with_nodes(&nodes)?;
    let run_id = format!("{:x}", rand::random::<u32>());
    let households = set_up(&http, &run_id, options.cameras).await?;
    let cameras: usize = households.iter().map(|h| h.cameras.len()).sum();
    if let Some(server) = own.as_mut() {
        eprintln!("bench: restarting the server, as after an outage");
        server.restart()?;
    }

    let (idle, storm) = (
        Arc::new(Latencies::default()),
        Arc::new(Latencies::default()),
    );
    let (storming, stop) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let viewers = spawn_viewers(
        nodes.clone(),
        households.clone(),
        options.viewers.max(1),
        Phases {
            idle: idle.clone(),
            storm: storm.clone(),
            storming: storming.clone(),
            stop: stop.clone(),
        },
    );
    let idle_until = Instant::now() + Duration::from_secs(30);
    while idle.count() < options.viewers.max(1) * 40 && Instant::now() < idle_until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss_before = own.as_ref().and_then(ServerProcess::rss_kib);

    // Streams are held, not read: no request timeout may cut them.
    let streams_client = crate::http::client_builder().build()?;
    let counters = Arc::new(Counters::default());
    storming.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(cameras);
    let mut index = 0;
    for household in &households {
        for n in 0..household.cameras.len() {
            let (http, household, counters) =
                (http.pinned(index), household.clone(), counters.clone());
            let client = streams_client.clone();
            index += 1;
            tasks.push(tokio::spawn(async move {
                let camera = &household.cameras[n];
                camera::connect(&http, camera, &counters).await?;
                let connected_at = started.elapsed();
                counters.connected.fetch_add(1, Ordering::Relaxed);
                let stream = open_device_stream(&client, http.base(), &camera.token).await?;
                Ok::<_, StormError>((connected_at, stream.ok()))
            }));
        }
    }
    let mut streams = Vec::with_capacity(cameras);
    let mut all_in = Duration::ZERO;
    let mut failures = Vec::new();
    for task in tasks {
        match task.await {
            Ok(Ok((at, stream))) => {
                all_in = all_in.max(at);
                streams.extend(stream);
            }
            Ok(Err(e)) => failures.push(e.to_string()),
            Err(e) => failures.push(e.to_string()),
        }
    }
    storming.store(false, Ordering::Relaxed);
    tokio::time::sleep(SETTLE).await;
    let rss_after = own.as_ref().and_then(ServerProcess::rss_kib);
    stop.store(true, Ordering::Relaxed);
    tokio::task::spawn_blocking(move || viewers.join())
        .await
        .map_err(io)?
        .map_err(|_| io("the viewers' thread panicked"))??;
    if let Some(first) = failures.first() {
        return Err(io(format!(
            "{} cameras failed, first: {first}",
            failures.len()
        )));
    }
    let streams_open = streams.len();
    drop(streams);

    let ideal = cameras as f64 / f64::from(options.handshakes_per_second.max(1));
    let (idle_p50, idle_p99) = idle.percentiles();
    let (storm_p50, storm_p99) = storm.percentiles();
    let seconds = all_in.as_secs_f64();
    Ok(ReconnectReport {
        cameras,
        nodes: nodes.len(),
        connected: Counters::get(&counters.connected),
        streams_open,
        seconds_to_all_connected: seconds,
        ideal_seconds: ideal,
        ratio_to_ideal: seconds / ideal.max(0.001),
        responses_503: Counters::get(&counters.unavailable)
            + http.retried_503.load(Ordering::Relaxed),
        viewer_p50_ms_idle: idle_p50,
        viewer_p99_ms_idle: idle_p99,
        viewer_p50_ms_storm: storm_p50,
        viewer_p99_ms_storm: storm_p99,
        viewer_p99_ratio: storm_p99 / idle_p99.max(0.001),
        kib_per_camera: match (rss_before, rss_after) {
            (Some(b), Some(a)) => Some(a.saturating_sub(b) as f64 / cameras.max(1) as f64),
            _ => None,
        },
        kib_per_bare_socket_task: bare,
        open_file_limit: own.as_ref().and_then(ServerProcess::open_file_limit),
    })
}

/// Households of up to [`CAMERAS_PER_HOUSEHOLD`] cameras, `cameras` in all, set up 16
/// households at a time, with progress on stderr.
/// Where the viewers record their latencies, and when.
struct Phases {
    idle: Arc<Latencies>,
    storm: Arc<Latencies>,
    storming: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

/// Viewers that time their requests until `stop`, on a runtime and connections of their
/// own: they stand for people's phones, which do not wait in this process's task queue
/// behind thousands of simulated cameras. They still share the machine's cores.
fn spawn_viewers(
    nodes: Vec<String>,
    households: Vec<Arc<Household>>,
    count: usize,
    phases: Phases,
) -> std::thread::JoinHandle<Result<(), StormError>> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(io)?;
        runtime.block_on(async move {
            let http = Http::with_nodes(&nodes)?;
            let phases = Arc::new(phases);
            let mut viewers = Vec::new();
            for n in 0..count {
                let household = households[n % households.len()].clone();
                let (http, phases) = (http.pinned(n), phases.clone());
                viewers.push(tokio::spawn(async move {
                    let token = household.login(&http).await?;
                    let camera = household.cameras.first().map(|c| c.camera_id);
                    let path = camera.map_or("/v1/cameras".to_owned(), |c| {
                        format!("/v1/cameras/{c}/events")
                    });
                    while !phases.stop.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        http.send::<()>(Method::GET, &path, Some(&token), None)
                            .await?;
                        let phase = if phases.storming.load(Ordering::Relaxed) {
                            &phases.storm
                        } else {
                            &phases.idle
                        };
                        phase.record(started.elapsed());
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Ok::<_, StormError>(())
                }));
            }
            for viewer in viewers {
                viewer.await.map_err(io)??;
            }
            Ok(())
        })
    })
}

async fn set_up(http: &Http, run: &str, cameras: usize) -> Result<Vec<Arc<Household>>, StormError> {
    let counts: Vec<usize> = (0..cameras.max(1))
        .step_by(CAMERAS_PER_HOUSEHOLD)
        .map(|start| CAMERAS_PER_HOUSEHOLD.min(cameras.max(1) - start))
        .collect();
    let mut households = Vec::with_capacity(counts.len());
    for (batch, chunk) in counts.chunks(16).enumerate() {
        let made = join_all(
            chunk
                .iter()
                .enumerate()
                .map(|(i, &n)| Household::create(http, run, batch * 16 + i, n)),
        )
        .await;
        for household in made {
            households.push(Arc::new(household?));
        }
        eprintln!(
            "bench: {} of {} cameras paired",
            households.iter().map(|h| h.cameras.len()).sum::<usize>(),
            cameras
        );
    }
    Ok(households)
}

/// This process's memory per tokio task holding an accepted loopback socket, each
/// waiting to read, as the floor any server's connected camera costs here.
async fn bare_socket_task_kib(count: usize) -> Result<f64, StormError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(io)?;
    let addr = listener.local_addr().map_err(io)?;
    let before = proc_status_kib(std::process::id(), "VmRSS:").unwrap_or(0);
    let accepting = tokio::spawn(async move {
        let mut held = Vec::with_capacity(count);
        for _ in 0..count {
            let (mut socket, _) = listener.accept().await?;
            held.push(tokio::spawn(async move {
                let mut buf = [0u8; 64];
                let _ = socket.read(&mut buf).await;
            }));
        }
        Ok::<_, std::io::Error>(held)
    });
    let mut clients = Vec::with_capacity(count);
    for _ in 0..count {
        clients.push(tokio::net::TcpStream::connect(addr).await.map_err(io)?);
    }
    let held = accepting.await.map_err(io)?.map_err(io)?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = proc_status_kib(std::process::id(), "VmRSS:").unwrap_or(0);
    drop(clients);
    for task in held {
        let _ = task.await;
    }
    Ok(after.saturating_sub(before) as f64 / count.max(1) as f64)
}
