//! Drives the real `closedcircuit` binary: a server process on a loopback port with its
//! own data directory, and CLI users and camera agents with their own profiles.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

pub const MARKER: &[u8] = b"CLOSEDCIRCUIT-SYNTHETIC-MARKER";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_closedcircuit")
}

/// A `closedcircuit serve` process.
pub struct Server {
    pub url: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    child: Child,
}

impl Server {
    pub fn start(root: &Path) -> TestResult<Self> {
        Self::start_in(root, &root.join("data"))
    }

    pub fn start_in(root: &Path, data_dir: &Path) -> TestResult<Self> {
        Self::start_with(root, data_dir, &[])
    }

    /// A server with extra `serve` flags (services, a configuration file).
    pub fn start_with(root: &Path, data_dir: &Path, flags: &[&str]) -> TestResult<Self> {
        let log = root.join(format!("server-{}.log", std::process::id()));
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let mut child = Command::new(bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(flags)
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = rx.recv_timeout(Duration::from_secs(60))?;
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .ok_or_else(|| format!("no address in {line:?}"))?
            .to_owned();
        Ok(Self {
            url,
            data_dir: data_dir.canonicalize()?,
            log,
            child,
        })
    }

    /// SIGKILL: no shutdown hook, no flush, as a power cut would.
    pub fn kill(mut self) -> TestResult {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A local S3-compatible server with one empty bucket, stopped when dropped.
pub struct S3Server(cc_store::testing::TempS3);

impl S3Server {
    pub fn start() -> TestResult<Self> {
        Ok(Self(cc_store::testing::TempS3::start("closedcircuit-e2e")?))
    }

    /// `serve` flags that put blobs in this server's bucket.
    pub fn flags(&self) -> Vec<String> {
        let config = &self.0.config;
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        vec![
            "--blobs-url".into(),
            format!("s3://{}", config.bucket),
            "--s3-endpoint".into(),
            text(&config.endpoint),
            "--s3-allow-http".into(),
            config.allow_http.to_string(),
            "--s3-region".into(),
            text(&config.region),
            "--s3-access-key-id".into(),
            text(&config.access_key_id),
            "--s3-secret-access-key".into(),
            text(&config.secret_access_key),
        ]
    }
}

/// One person's CLI: their own profile directory and password.
pub struct User {
    pub email: String,
    pub profile: PathBuf,
    pub password: String,
    pub server: String,
    /// Extra environment for every command (`SSL_CERT_FILE`, say).
    pub env: Vec<(String, String)>,
}

impl User {
    pub fn new(root: &Path, server: &Server, email: &str) -> Self {
        Self {
            email: email.into(),
            profile: root.join(format!("profile-{email}")),
            password: format!("correct horse {email}"),
            server: server.url.clone(),
            env: Vec::new(),
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .env("CLOSEDCIRCUIT_SERVER", &self.server)
            .env("CLOSEDCIRCUIT_PROFILE", &self.profile)
            .env("CLOSEDCIRCUIT_PASSWORD", &self.password)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> TestResult<Output> {
        Ok(self.command(args).output()?)
    }

    /// Runs and insists on success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> TestResult<String> {
        let out = self.run(args)?;
        if !out.status.success() {
            return Err(format!(
                "closedcircuit {args:?} failed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    pub fn json(&self, args: &[&str]) -> TestResult<serde_json::Value> {
        let mut all = args.to_vec();
        all.push("--json");
        Ok(serde_json::from_str(&self.ok(&all)?)?)
    }

    pub fn signup(root: &Path, server: &Server, email: &str) -> TestResult<Self> {
        let user = Self::new(root, server, email);
        user.ok(&["account", "signup", "--email", email])?;
        Ok(user)
    }

    /// Claims a camera and runs its agent until it has pairs and uploaded `events`
    /// events; returns the camera ID and the acknowledged event IDs.
    pub fn pair_camera(
        &self,
        name: &str,
        state_dir: &Path,
        events: u32,
    ) -> TestResult<(String, Vec<String>)> {
        let mut claim = self
            .command(&["camera", "claim", "--name", name])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = claim.stdout.take().ok_or("no stdout")?;
        let mut code = None;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(c) = line.strip_prefix("Claim code: ") {
                code = Some(c.trim().to_owned());
                break;
            }
        }
        let code = code.ok_or("claim printed no code")?;
        let agent = self.agent(state_dir, Some(&code), events)?;
        claim.wait()?;
        Ok(agent)
    }

    /// A camera agent that stays connected (one event an hour), for tests that need a
    /// camera online; the caller spawns and stops it.
    pub fn running_agent(&self, state_dir: &Path) -> Command {
        self.command(&[
            "camera",
            "agent",
            "--state-dir",
            &state_dir.to_string_lossy(),
            "--events",
            "100",
            "--interval",
            "3600",
        ])
    }

    /// Runs a camera agent to completion; returns its camera ID and acknowledged events.
    pub fn agent(
        &self,
        state_dir: &Path,
        claim: Option<&str>,
        events: u32,
    ) -> TestResult<(String, Vec<String>)> {
        let state = state_dir.to_string_lossy().into_owned();
        let count = events.to_string();
        let mut args = vec![
            "camera",
            "agent",
            "--state-dir",
            &state,
            "--source",
            "synthetic",
            "--events",
            &count,
            "--interval",
            "0",
        ];
        if let Some(code) = claim {
            args.extend(["--claim", code]);
        }
        let out = self.ok(&args)?;
        Ok(parse_agent_output(&out))
    }
}

/// Camera ID and acknowledged event IDs from an agent's output.
pub fn parse_agent_output(out: &str) -> (String, Vec<String>) {
    let camera = out
        .lines()
        .find_map(|l| {
            l.split("camera ")
                .nth(1)
                .map(|rest| rest.split_whitespace().next().unwrap_or("").to_owned())
        })
        .unwrap_or_default();
    let acked = out
        .lines()
        .filter(|l| l.contains("acknowledged"))
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .collect();
    (camera, acked)
}

pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) -> TestResult {
    let start = Instant::now();
    while !f() {
        if start.elapsed() > Duration::from_secs(60) {
            return Err(format!("timed out waiting for {what}").into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
